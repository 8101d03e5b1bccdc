//! `dist-cache` against a bare lru-ttl-cache and the plain `redis` crate.
//! The Redis cases run on a private `redis-server` that `compare` starts
//! (`crate::workloads::rate_limiter_redis::Server`), or are skipped with a
//! line saying so; the resize cases need no server.
//!
//! - near-cache hit: `get` answered by the near cache, and `get_near`,
//!   against a bare lru-ttl-cache `Cache::get` on the same keys and values
//!   (`Cache<String, Bytes>`, same capacity and TTL);
//! - remote `get` on one node without a near cache against the `redis`
//!   crate's `GET` on a `MultiplexedConnection` to the same server, same
//!   keys: ns per get one at a time, and p50 / p99 latency;
//! - `get_many` of [`BATCH`] keys (one pipeline to the one node) against
//!   [`BATCH`] sequential `GET`s, a pipeline of [`BATCH`] `GET`s and one
//!   `MGET` through the `redis` crate: ns per key, and keys/s;
//! - the stale window: how long after another client calls `set` the
//!   near cache still answers the old value (p50, p99, max), both clients
//!   on one current-thread runtime;
//! - the share of a Zipf(1) workload still found right after adding a
//!   fifth node to four (ring, jump, Maglev, rendezvous against `hash %
//!   N`), and a chart of that share from N−1 to N nodes for N = 2..=10
//!   (the mean of 8 key sets).

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use sysblocks_consistent_hash::hash_key;
use sysblocks_dist_cache::resize::{kept_share, zipf_workload};
use sysblocks_dist_cache::{Bytes, DistCache, NearCache, Placement};
use sysblocks_lru_ttl_cache::Cache;

use crate::harness::{measured, run_timed, time_iters, Contender, Mode};
use crate::report::{LineChart, Report};
use crate::workloads::rate_limiter_redis::{quantiles_us, raw};

const KRATE: &str = "dist-cache";

/// Keys per `get_many` (and per peer pipeline or `MGET`).
pub const BATCH: usize = 64;

/// Bytes per value.
const VALUE_BYTES: usize = 100;

/// Longer than any run: nothing expires while it is measured.
const TTL: Duration = Duration::from_secs(3600);

/// Key sets the resize chart averages.
const KEY_SETS: usize = 8;

/// The prefix of the cache under test (the peers read the same keys).
const PREFIX: &str = "dc:";

/// Adds the dist-cache cases to `report`; the Redis ones only with a
/// server.
pub fn run(mode: Mode, report: &mut Report) {
    resize(mode, report);
    let Some(server) = super::redis_server_or_skip(KRATE, report) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = server.url();
    let n = mode.scale(10_000).max(2 * BATCH);
    let keys: Vec<String> = (0..n).map(|i| format!("user:{i}")).collect();
    let value = Bytes::from(vec![b'x'; VALUE_BYTES]);
    // Every key stored once, by a client without a near cache.
    let remote = {
        let _enter = rt.enter();
        DistCache::builder()
            .node(url.clone())
            .prefix(PREFIX)
            .ttl(TTL)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build")
    };
    rt.block_on(async {
        for k in &keys {
            remote.set(k, value.clone()).await.expect("set");
        }
    });
    if let Err(why) = near_hit(mode, report, &rt, &url, &keys, &value) {
        report
            .missing
            .push((format!("{KRATE}: near-cache hit"), why));
    }
    remote_get(mode, report, &rt, &url, &remote, &keys);
    get_many(mode, report, &rt, &url, &remote, &keys);
    if let Err(why) = stale_window(mode, report, &rt, &url) {
        report.missing.push((format!("{KRATE}: stale window"), why));
    }
}

/// A scattered but repeatable walk over `n` keys.
fn pick(i: u64, n: usize) -> usize {
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % n
}

/// Waits (driving `rt`) until `cond` holds, for at most 10 s.
fn wait(
    rt: &tokio::runtime::Runtime,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<(), String> {
    rt.block_on(async {
        let start = Instant::now();
        while !cond() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("{what} within 10 s"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    })
}

fn near_client(rt: &tokio::runtime::Runtime, url: &str, prefix: &str, capacity: u64) -> DistCache {
    let _enter = rt.enter();
    DistCache::builder()
        .node(url.to_owned())
        .prefix(prefix)
        .ttl(TTL)
        .timeout(Duration::from_secs(5))
        .near_cache(NearCache { capacity, ttl: TTL })
        .build()
        .expect("build")
}

fn near_hit(
    mode: Mode,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    url: &str,
    keys: &[String],
    value: &Bytes,
) -> Result<(), String> {
    let n = keys.len();
    // Room to spare in every shard: each key stays in both caches.
    let capacity = (8 * n as u64).max(8192);
    let cache = near_client(rt, url, PREFIX, capacity);
    wait(rt, "tracking did not come up", || cache.near_ready())?;
    // Read every key until the near cache holds it (a fill that raced an
    // invalidation, such as the echo of the stores above, is refused).
    rt.block_on(async {
        let start = Instant::now();
        loop {
            let mut missing = 0;
            for k in keys {
                if cache.get_near(k).is_none() {
                    missing += 1;
                    cache.get(k).await.expect("get");
                }
            }
            if missing == 0 {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(format!("{missing} keys never kept near within 10 s"));
            }
            tokio::task::yield_now().await;
        }
    })?;
    let bare: Cache<String, Bytes> = Cache::builder()
        .max_capacity(capacity)
        .time_to_live(TTL)
        .build()
        .expect("bare cache");
    for k in keys {
        bare.insert(k.clone(), value.clone());
    }
    if keys.iter().any(|k| bare.get(k).is_none()) {
        return Err("the bare cache did not keep every key".to_owned());
    }
    let key = |i: u64| keys[pick(i, n)].as_str();
    let before = cache.stats();
    let cache = &cache;
    report.results.push(run_timed(
        KRATE,
        &format!("near-cache hit, {n} keys, {VALUE_BYTES}-byte values, 1 thread (ns per get)"),
        mode,
        vec![
            Contender::ours("ours get (near hit)", |iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        black_box(cache.get(key(i)).await.expect("get").expect("hit"));
                    }
                    t.elapsed()
                })
            }),
            Contender::ours("ours get (near hit), polled once", |iters| {
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                time_iters(iters, |i| {
                    let f = std::pin::pin!(cache.get(key(i)));
                    match f.poll(&mut cx) {
                        std::task::Poll::Ready(v) => {
                            black_box(v.expect("get").expect("hit"));
                        }
                        std::task::Poll::Pending => panic!("a near hit must be ready"),
                    }
                })
            }),
            Contender::ours("ours get_near", |iters| {
                time_iters(iters, |i| {
                    black_box(cache.get_near(key(i)).expect("hit"));
                })
            }),
            Contender::peer("lru-ttl-cache Cache::get (bare)", |iters| {
                time_iters(iters, |i| {
                    black_box(bare.get(key(i)).expect("hit"));
                })
            }),
        ],
    ));
    let after = cache.stats();
    if after.remote_hits != before.remote_hits || after.misses != before.misses {
        report.missing.push((
            format!("{KRATE}: near-cache hit"),
            format!(
                "{} reads left the near cache while timed",
                after.remote_hits + after.misses - before.remote_hits - before.misses
            ),
        ));
    }
    Ok(())
}

fn remote_get(
    mode: Mode,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    url: &str,
    cache: &DistCache,
    keys: &[String],
) {
    let n = keys.len();
    let rkeys: Vec<String> = keys.iter().map(|k| format!("{PREFIX}{k}")).collect();
    let conn = raw(rt, url);
    let key = |i: u64| keys[pick(i, n)].as_str();
    let rkey = |i: u64| rkeys[pick(i, n)].as_str();
    async fn plain_get(c: &mut redis::aio::MultiplexedConnection, k: &str) -> Option<Vec<u8>> {
        redis::cmd("GET").arg(k).query_async(c).await.expect("GET")
    }
    report.results.push(run_timed(
        KRATE,
        "remote get, 1 node, no near cache, one at a time (ns per get)",
        mode,
        vec![
            Contender::ours("ours get", |iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        black_box(cache.get(key(i)).await.expect("get").expect("hit"));
                    }
                    t.elapsed()
                })
            }),
            Contender::peer("redis crate GET (MultiplexedConnection)", |iters| {
                let mut c = conn.clone();
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        black_box(plain_get(&mut c, rkey(i)).await.expect("hit"));
                    }
                    t.elapsed()
                })
            }),
        ],
    ));

    // Latency of single gets, ours and the peer's alternating.
    let samples: u64 = match mode {
        Mode::Smoke => 200,
        Mode::Quick => 10_000,
        Mode::Full => 40_000,
    };
    let (ours, peer) = rt.block_on(async {
        let mut c = conn.clone();
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for i in 0..samples {
            let t = Instant::now();
            black_box(cache.get(key(i)).await.expect("get"));
            ours.push(t.elapsed());
            let t = Instant::now();
            black_box(plain_get(&mut c, rkey(i)).await);
            peer.push(t.elapsed());
        }
        (quantiles_us(ours), quantiles_us(peer))
    });
    for (q, pick) in [("p50", false), ("p99", true)] {
        let v = |l: (f64, f64)| vec![if pick { l.1 } else { l.0 }];
        report.results.push(measured(
            KRATE,
            &format!("remote get latency {q}, 1 node, no near cache"),
            "µs",
            true,
            vec![
                ("ours get", true, v(ours)),
                ("redis crate GET (MultiplexedConnection)", false, v(peer)),
            ],
        ));
    }
}

fn get_many(
    mode: Mode,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    url: &str,
    cache: &DistCache,
    keys: &[String],
) {
    let n = keys.len();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let rkeys: Vec<String> = keys.iter().map(|k| format!("{PREFIX}{k}")).collect();
    let conn = raw(rt, url);
    let start = |i: u64| pick(i, n - BATCH);
    // Timed per batch (so calibration sees real time), reported per key.
    let mut case = run_timed(
        KRATE,
        &format!("get_many of {BATCH} keys, 1 node, no near cache (ns per key)"),
        mode,
        vec![
            Contender::ours("ours get_many (one pipeline)", |iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        let s = start(i);
                        black_box(cache.get_many(&refs[s..s + BATCH]).await.expect("get_many"));
                    }
                    t.elapsed()
                })
            }),
            Contender::peer(format!("redis crate {BATCH} sequential GETs"), |iters| {
                let mut c = conn.clone();
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        let s = start(i);
                        for k in &rkeys[s..s + BATCH] {
                            let v: Option<Vec<u8>> = redis::cmd("GET")
                                .arg(k)
                                .query_async(&mut c)
                                .await
                                .expect("GET");
                            black_box(v);
                        }
                    }
                    t.elapsed()
                })
            }),
            Contender::peer(format!("redis crate pipeline of {BATCH} GETs"), |iters| {
                let mut c = conn.clone();
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        let s = start(i);
                        let mut p = redis::pipe();
                        for k in &rkeys[s..s + BATCH] {
                            p.cmd("GET").arg(k);
                        }
                        let v: Vec<Option<Vec<u8>>> =
                            p.query_async(&mut c).await.expect("pipeline");
                        black_box(v);
                    }
                    t.elapsed()
                })
            }),
            Contender::peer(format!("redis crate MGET of {BATCH}"), |iters| {
                let mut c = conn.clone();
                rt.block_on(async {
                    let t = Instant::now();
                    for i in 0..iters {
                        let s = start(i);
                        let v: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                            .arg(&rkeys[s..s + BATCH])
                            .query_async(&mut c)
                            .await
                            .expect("MGET");
                        black_box(v);
                    }
                    t.elapsed()
                })
            }),
        ],
    );
    for s in &mut case.series {
        for v in &mut s.samples {
            *v /= BATCH as f64;
        }
    }
    let rates: Vec<(String, bool, Vec<f64>)> = case
        .series
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                s.ours,
                vec![1e9 / s.median().max(f64::MIN_POSITIVE)],
            )
        })
        .collect();
    report.results.push(case);
    report.results.push(measured(
        KRATE,
        &format!("get_many of {BATCH} keys, 1 node, 1 connection"),
        "keys/s",
        false,
        rates
            .iter()
            .map(|(name, ours, v)| (name.as_str(), *ours, v.clone()))
            .collect(),
    ));
}

/// How long a near copy outlives another client's write: `b` (no near
/// cache) writes a key `a` holds near; the time from `b` calling `set`
/// until `a`'s near cache stops answering the old value. Counted from
/// the call, since on one runtime the push is usually applied before the
/// write's reply is read: this is the most a stale read can last after
/// the write reached Redis, one server push over loopback.
fn stale_window(
    mode: Mode,
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    url: &str,
) -> Result<(), String> {
    let prefix = "st:";
    let a = near_client(rt, url, prefix, 16);
    let b = {
        let _enter = rt.enter();
        DistCache::builder()
            .node(url.to_owned())
            .prefix(prefix)
            .ttl(TTL)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("build")
    };
    wait(rt, "tracking did not come up", || a.near_ready())?;
    let samples: usize = match mode {
        Mode::Smoke => 20,
        Mode::Quick => 500,
        Mode::Full => 2_000,
    };
    let windows = rt.block_on(async {
        let mut windows = Vec::with_capacity(samples);
        let mut prev = Bytes::from("v0");
        b.set("k", prev.clone()).await.expect("set");
        for i in 1..=samples {
            // `a` holds the current value near.
            let start = Instant::now();
            while a.get_near("k").as_ref() != Some(&prev) {
                if start.elapsed() > Duration::from_secs(10) {
                    return Err("a value never kept near within 10 s".to_owned());
                }
                a.get("k").await.expect("get");
                tokio::task::yield_now().await;
            }
            let next = Bytes::from(format!("v{i}"));
            let t = Instant::now();
            b.set("k", next.clone()).await.expect("set");
            while a.get_near("k").as_ref() == Some(&prev) {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err("an invalidation never arrived within 10 s".to_owned());
                }
                tokio::task::yield_now().await;
            }
            windows.push(t.elapsed());
            prev = next;
        }
        Ok(windows)
    })?;
    let max = windows.iter().max().copied().unwrap_or_default();
    let (p50, p99) = quantiles_us(windows);
    let us = |d: f64| vec![d];
    for (q, v) in [("p50", p50), ("p99", p99), ("max", max.as_secs_f64() * 1e6)] {
        report.results.push(measured(
            KRATE,
            &format!("stale near read, from another client's set call, {q}, 1 node, loopback"),
            "µs",
            true,
            vec![("ours (until the invalidation lands)", true, us(v))],
        ));
    }
    Ok(())
}

/// The share still found right after a resize: deterministic, no server.
fn resize(mode: Mode, report: &mut Report) {
    let keys = mode.scale(10_000).max(100);
    let workload = zipf_workload(keys, 1.0);
    let names: Vec<String> = (1..=10)
        .map(|i| format!("redis://10.0.0.{i}:6379/"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let placements = [
        ("ring (160 vnodes)", true, Placement::default()),
        ("jump", true, Placement::Jump),
        ("Maglev", true, Placement::Maglev),
        ("rendezvous", true, Placement::Rendezvous),
        ("modulo (hash % N)", false, Placement::Modulo),
    ];
    let share = |p, from: usize| {
        kept_share(p, &names[..from], &names[..=from], &workload).expect("placement")
    };
    report.results.push(measured(
        KRATE,
        &format!(
            "share of keys still found after adding a 5th node to 4, Zipf(1) over {keys} keys"
        ),
        "share",
        false,
        placements
            .iter()
            .map(|&(name, ours, p)| (name, ours, vec![share(p, 4)]))
            .collect(),
    ));
    // The chart averages KEY_SETS key sets (the table's first): with
    // Zipf weights a few hot keys decide one set's share, so a single set
    // jumps from one N to the next.
    let sets: Vec<Vec<(u64, f64)>> = (0..KEY_SETS)
        .map(|s| {
            if s == 0 {
                return workload.clone();
            }
            workload
                .iter()
                .enumerate()
                .map(|(r, &(_, w))| (hash_key(format!("set{s}:key:{}", r + 1).as_str()), w))
                .collect()
        })
        .collect();
    let mean_share = |p, from: usize| {
        sets.iter()
            .map(|w| kept_share(p, &names[..from], &names[..=from], w).expect("placement"))
            .sum::<f64>()
            / sets.len() as f64
    };
    let mut series: Vec<(String, Vec<(f64, f64)>)> = placements
        .iter()
        .map(|&(name, _, p)| {
            let pts = (1..names.len())
                .map(|from| ((from + 1) as f64, mean_share(p, from)))
                .collect();
            (name.to_owned(), pts)
        })
        .collect();
    series.push((
        "ideal (N−1)/N".to_owned(),
        (2..=names.len())
            .map(|n| (n as f64, (n - 1) as f64 / n as f64))
            .collect(),
    ));
    report.charts.push(LineChart {
        krate: KRATE.to_owned(),
        title: format!(
            "dist-cache: share of a Zipf(1) workload over {keys} keys still found right after \
             adding the N-th node (mean of {KEY_SETS} key sets)"
        ),
        x_label: "nodes after the change (N)".to_owned(),
        y_label: "share still found".to_owned(),
        log_x: false,
        series,
    });
}
