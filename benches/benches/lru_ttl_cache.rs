//! `lru-ttl-cache` against its peers, same process, same keys
//! (workloads and contenders in `benches::workloads::lru_ttl_cache`):
//!
//! - (a) `get` only on a full cache of 100,000 entries, keys Zipf(0.99) over
//!   1,000,000 (so some gets miss); (b) 90% `get` (a miss inserts) and 10%
//!   `insert`; each on 1 and 2 threads, `u64` keys and values. Peers:
//!   `quick_cache::sync::Cache`, `moka::sync::Cache` (TinyLFU default and
//!   `EvictionPolicy::lru()`), `Mutex<lru::LruCache>`, `mini_moka::sync::Cache`.
//!   The cache is filled least popular key first (a warmed LRU's state).
//! - `LRU_TTL_CACHE_MEMORY=1`: bytes per entry for 1,000,000 `u64 -> u64`
//!   entries, counted by `benches::alloc`, ours and each peer.
//! - `LRU_TTL_CACHE_HIT_RATIOS=1`: hit-ratio curves on the ARC OLTP trace at
//!   five capacities, ours and each peer (`=all` adds P12, which is large).
//! - `LRU_TTL_CACHE_ONLY=ours,quick_cache`: only these contenders.
//!
//! Run: `cargo bench -p benches --bench lru_ttl_cache -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use benches::workloads::lru_ttl_cache::{
    arc_trace, filled, key, replay, timed, zipf_keys, AnyCache, Kind, Mix, CAPACITY, OLTP_CAPS,
    P12_CAPS, SAMPLES,
};
use criterion::{BenchmarkId, Criterion, Throughput};

#[global_allocator]
static ALLOC: benches::alloc::Counting = benches::alloc::Counting;

/// `LRU_TTL_CACHE_ONLY=ours,quick_cache` skips the others (and their slow setup).
fn selected(name: &str) -> bool {
    std::env::var("LRU_TTL_CACHE_ONLY").map_or(true, |only| {
        let first = name.split(' ').next().unwrap_or(name);
        only.split(',').any(|o| o == first)
    })
}

fn throughput(c: &mut Criterion) {
    let keys = zipf_keys(SAMPLES);
    for kind in Kind::ALL {
        if !selected(kind.name()) {
            continue;
        }
        for mix in [Mix::GetOnly, Mix::GetInsert] {
            let cache = filled(kind, CAPACITY);
            let mut g = c.benchmark_group(format!("lru_ttl_cache/{}", mix.name()));
            g.throughput(Throughput::Elements(1));
            for threads in [1usize, 2] {
                let mut pos = 0usize;
                g.bench_function(
                    BenchmarkId::new(kind.name(), format!("{threads}thread")),
                    |b| b.iter_custom(|iters| timed(&cache, &keys, iters, threads, mix, &mut pos)),
                );
            }
            g.finish();
        }
    }
}

fn bytes_per_entry(name: &str, make: impl Fn(u64) -> AnyCache) {
    const N: u64 = 1_000_000;
    let (c, bytes) = benches::alloc::heap_of(|| {
        let c = make(N);
        for k in 0..N {
            c.insert(key(k as usize));
        }
        c.settle();
        c
    });
    let mut present = 0u64;
    for k in (0..N).step_by(97) {
        present += u64::from(c.get(key(k as usize)));
    }
    println!(
        "memory {name:<14} {:>6.1} bytes/entry ({} of {} sampled keys present)",
        bytes as f64 / N as f64,
        present,
        N.div_ceil(97)
    );
}

fn memory() {
    if !benches::alloc::installed() {
        println!("memory: the counting allocator is not installed");
        return;
    }
    for kind in Kind::ALL {
        bytes_per_entry(kind.name(), |n| kind.make(n));
        if kind == Kind::Ours {
            bytes_per_entry("ours+ttl", |n| {
                AnyCache::Ours(
                    sysblocks_lru_ttl_cache::Cache::builder()
                        .max_capacity(n)
                        .time_to_live(Duration::from_secs(3600))
                        .build()
                        .expect("valid"),
                )
            });
        }
    }
}

fn curve(kind: Kind, label: &str, caps: &[u64], keys: &[u64]) {
    if !selected(kind.name()) {
        return;
    }
    let cells: Vec<String> = caps
        .iter()
        .map(|&cap| format!("{:6.2}%", 100.0 * replay(&kind.make(cap), keys)))
        .collect();
    println!("| {label:<16} | {} |", cells.join(" | "));
}

fn hit_ratios(with_p12: bool) {
    let mut traces = vec![("OLTP", OLTP_CAPS)];
    if with_p12 {
        traces.push(("P12", P12_CAPS));
    }
    for (trace, caps) in traces {
        let Some(keys) = arc_trace(trace) else {
            println!("skipped: ../shared/data not found");
            return;
        };
        println!(
            "\nhit ratio on {trace} ({} requests), replay: get, insert on miss",
            keys.len()
        );
        let head: Vec<String> = caps.iter().map(|c| format!("{c:>7}")).collect();
        println!("| {:<16} | {} |", "cache", head.join(" | "));
        curve(Kind::OursOneShard, "ours shards(1)", &caps, &keys);
        curve(Kind::Ours, "ours default", &caps, &keys);
        for kind in Kind::ALL.into_iter().skip(1) {
            curve(kind, kind.name(), &caps, &keys);
        }
    }
}

fn main() {
    if std::env::var_os("LRU_TTL_CACHE_MEMORY").is_some() {
        memory();
    }
    if let Some(v) = std::env::var_os("LRU_TTL_CACHE_HIT_RATIOS") {
        hit_ratios(v == "all");
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
