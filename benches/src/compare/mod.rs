//! The cases of the comparison report, one module per crate.

pub mod consistent_hash;
pub mod mapreduce;
pub mod task_queue;

use crate::harness::Mode;
use crate::report::Report;

/// The crates the report covers, in report order.
pub const CRATES: &[&str] = &[
    "lru-ttl-cache",
    "consistent-hash",
    "rate-limiter",
    "task-queue",
    "lb",
    "mapreduce",
];

/// Runs every case of `krate` in `mode` and adds the results, charts and
/// missing items to `report`.
pub fn run_crate(krate: &str, mode: Mode, report: &mut Report) {
    match krate {
        "consistent-hash" => return consistent_hash::run(mode, report),
        "mapreduce" => return mapreduce::run(mode, report),
        "task-queue" => return task_queue::run(mode, report),
        _ => {}
    }
    let peers = match krate {
        "lru-ttl-cache" => "quick_cache, moka, mini_moka, Mutex<lru::LruCache>",
        "consistent-hash" => {
            "hashring, consistent_hash_ring, maglev, jump-consistent-hash, jumphash, anchorhash, hrw-hash"
        }
        "rate-limiter" => "governor, ratelimit",
        "task-queue" => "crossbeam-channel, flume, kanal",
        "lb" => "tower p2c",
        _ => "hand-written rayon fold + reduce",
    };
    report.missing.push((
        krate.to_owned(),
        format!(
            "cases against {peers} are not written yet (the crate's helper was still at work \
             on its criterion bench when the compare cases were written)"
        ),
    ));
}
