//! Memory of the keyed store under key rotation: offers N distinct keys once
//! each (an attacker rotating IPv6 addresses) to `Keyed<u64, Gcra>` with a
//! `max_keys` cap, then to governor's keyed limiter, and prints the keys
//! held and the process's peak resident set size after each.
//!
//! Run (release; the default is 10,000,000 keys and a cap of 1,000,000):
//! `cargo run --release -p sysblocks-rate-limiter --example keyed_memory -- [keys] [max_keys] [governor|ours]`

use std::num::NonZeroU32;

use sysblocks_rate_limiter::{Gcra, Keyed, Quota};

/// (VmRSS, VmHWM) in MiB from /proc/self/status, if readable.
fn rss_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let keys: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let max_keys: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let which = args.get(3).map_or("ours", String::as_str);
    // A per-client quota that keeps every key live for the whole run:
    // one request per minute, so no state becomes fresh-equivalent and
    // only the cap bounds the store.
    let (rss0, _) = rss_mib();
    println!("baseline: RSS {rss0:.1} MiB");
    if which == "ours" {
        let keyed = Keyed::builder(Gcra::new(Quota::per_minute(1)).expect("valid quota"))
            .max_keys(max_keys)
            .build()
            .expect("valid settings");
        let mut admitted = 0u64;
        for k in 0..keys {
            admitted += u64::from(keyed.check_key(&k).is_allowed());
        }
        let (rss, hwm) = rss_mib();
        println!(
            "ours: {keys} distinct keys offered, {admitted} admitted, {} held (cap {}), \
             {} evicted; RSS {rss:.1} MiB, peak {hwm:.1} MiB",
            keyed.len(),
            keyed.capacity(),
            keyed.evictions()
        );
    } else {
        let gov = governor::RateLimiter::dashmap(governor::Quota::per_minute(
            NonZeroU32::new(1).expect("nonzero"),
        ));
        let mut admitted = 0u64;
        for k in 0..keys {
            admitted += u64::from(gov.check_key(&k).is_ok());
        }
        let (rss, hwm) = rss_mib();
        println!(
            "governor dashmap: {keys} distinct keys offered, {admitted} admitted, {} held \
             (no cap; retain_recent not called); RSS {rss:.1} MiB, peak {hwm:.1} MiB",
            gov.len()
        );
    }
}
