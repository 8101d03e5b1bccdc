//! The cases of the comparison report, one module per crate.

pub mod consistent_hash;
pub mod dist_cache;
pub mod lb;
pub mod lru_ttl_cache;
pub mod mapreduce;
pub mod rate_limiter;
pub mod rate_limiter_redis;
pub mod task_queue;
pub mod task_queue_redis;

use crate::harness::Mode;
use crate::report::Report;
use crate::workloads::rate_limiter_redis::Server;

/// The crates the report covers, in report order.
pub const CRATES: &[&str] = &[
    "lru-ttl-cache",
    "consistent-hash",
    "rate-limiter",
    "task-queue",
    "task-queue-redis",
    "lb",
    "mapreduce",
    "dist-cache",
];

/// Runs every case of `krate` in `mode` and adds the results, charts and
/// missing items to `report`.
pub fn run_crate(krate: &str, mode: Mode, report: &mut Report) {
    match krate {
        "lru-ttl-cache" => lru_ttl_cache::run(mode, report),
        "consistent-hash" => consistent_hash::run(mode, report),
        "rate-limiter" => rate_limiter::run(mode, report),
        "task-queue" => task_queue::run(mode, report),
        "task-queue-redis" => task_queue_redis::run(mode, report),
        "lb" => lb::run(mode, report),
        "mapreduce" => mapreduce::run(mode, report),
        "dist-cache" => dist_cache::run(mode, report),
        other => report
            .missing
            .push((other.to_owned(), "no cases for this crate".to_owned())),
    }
}

/// Starts a private redis-server for `krate`'s Redis cases, or says on
/// stderr and in the report's missing items why they were skipped.
pub(crate) fn redis_server_or_skip(krate: &str, report: &mut Report) -> Option<Server> {
    match Server::start() {
        Ok(server) => Some(server),
        Err(why) => {
            eprintln!("{krate}: the Redis cases were skipped: {why}");
            report
                .missing
                .push((format!("{krate}: Redis cases"), format!("skipped: {why}")));
            None
        }
    }
}
