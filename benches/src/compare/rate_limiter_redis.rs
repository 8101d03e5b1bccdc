//! `rate-limiter`'s Redis cases (`crate::workloads::rate_limiter_redis`),
//! on a private `redis-server` that `compare` starts, or skipped with a
//! line saying so: per connection, checks of our Redis GCRA and sliding
//! counter one at a time and pipelined (`check_many`), against a naive
//! `INCR` + `EXPIRE` fixed window and against the round-trip ceiling, a
//! trivial `EVALSHA` (from our client, and `redis-benchmark -c 1`); p50 and
//! p99 latency of single checks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::harness::{measured, run_timed, Contender, Mode};
use crate::report::Report;
use crate::workloads::rate_limiter_redis::{
    keys, load_trivial, naive_batch, naive_check, ours, quantiles_us, raw, redis_benchmark,
    trivial, BATCH, KEYS,
};

const KRATE: &str = "rate-limiter";

/// Adds the Redis cases to `report`, or notes why they were skipped.
pub fn run(mode: Mode, report: &mut Report) {
    let Some(server) = super::redis_server_or_skip(KRATE, report) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let url = server.url();
    let keys = keys();
    let keys = &keys;
    let gcra = ours(&rt, &url, true, "g:");
    let swc = ours(&rt, &url, false, "s:");
    let conn = raw(&rt, &url);
    let sha = rt.block_on(load_trivial(&mut conn.clone()));
    // Load both scripts before timing.
    rt.block_on(async {
        gcra.check("warm").await.expect("check");
        swc.check("warm").await.expect("check");
    });
    let rt = &rt;
    let key = |i: u64| &keys[(i as usize) % KEYS];

    let single = run_timed(
        KRATE,
        "Redis check, 1 connection, one at a time (ns per check)",
        mode,
        vec![
            Contender::ours("ours GCRA", |iters| {
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(gcra.check(key(i)).await.expect("check"));
                    }
                });
                t.elapsed()
            }),
            Contender::ours("ours sliding counter", |iters| {
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(swc.check(key(i)).await.expect("check"));
                    }
                });
                t.elapsed()
            }),
            Contender::peer("naive INCR+EXPIRE window", |iters| {
                let mut c = conn.clone();
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(naive_check(&mut c, key(i), 1_000_000).await);
                    }
                });
                t.elapsed()
            }),
            Contender::peer("EVALSHA return 1 (round-trip ceiling)", |iters| {
                let mut c = conn.clone();
                let t = Instant::now();
                rt.block_on(async {
                    for _ in 0..iters {
                        black_box(trivial(&mut c, &sha).await);
                    }
                });
                t.elapsed()
            }),
        ],
    );

    let batch = |i: u64| {
        let s = (i as usize * BATCH) % (KEYS - BATCH);
        &keys[s..s + BATCH]
    };
    let per_check = |d: Duration| d / BATCH as u32;
    let pipelined = run_timed(
        KRATE,
        &format!("Redis check, 1 connection, pipelined by {BATCH} (ns per check)"),
        mode,
        vec![
            Contender::ours("ours GCRA check_many", |iters| {
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(gcra.check_many(batch(i), 1).await);
                    }
                });
                per_check(t.elapsed())
            }),
            Contender::ours("ours sliding counter check_many", |iters| {
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(swc.check_many(batch(i), 1).await);
                    }
                });
                per_check(t.elapsed())
            }),
            Contender::peer("naive INCR+EXPIRE window", |iters| {
                let mut c = conn.clone();
                let t = Instant::now();
                rt.block_on(async {
                    for i in 0..iters {
                        black_box(naive_batch(&mut c, batch(i)).await);
                    }
                });
                per_check(t.elapsed())
            }),
        ],
    );

    // Checks per second per connection, against redis-benchmark's rate.
    let n = match mode {
        Mode::Smoke => 2_000,
        Mode::Quick => 50_000,
        Mode::Full => 200_000,
    };
    let rate = |r: &crate::harness::CaseResult, name: &str| {
        r.series
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| 1e9 / s.median())
    };
    let mut series = vec![
        ("ours GCRA", true, vec![rate(&single, "ours GCRA")]),
        (
            "ours sliding counter",
            false,
            vec![rate(&single, "ours sliding counter")],
        ),
        (
            "naive INCR+EXPIRE window",
            false,
            vec![rate(&single, "naive INCR+EXPIRE window")],
        ),
    ];
    let ceiling = redis_benchmark(server.port(), &sha, 1, 1, n);
    match ceiling {
        Some(c) => series.push(("redis-benchmark -c 1 EVALSHA return 1", false, vec![c])),
        None => report.missing.push((
            format!("{KRATE}: redis-benchmark ceiling"),
            "redis-benchmark not installed or its output not understood".to_owned(),
        )),
    }
    let pipelined_rates = [
        ("ours GCRA check_many", true),
        ("ours sliding counter check_many", false),
        ("naive INCR+EXPIRE window", false),
    ]
    .map(|(name, o)| (name, o, vec![rate(&pipelined, name)]));
    if let Some(c) = ceiling {
        eprintln!(
            "rate-limiter: Redis GCRA check {:.0}/s, redis-benchmark EVALSHA {c:.0}/s: {:.2}x",
            series[0].2[0],
            series[0].2[0] / c
        );
    }
    report.results.push(single);
    report.results.push(pipelined);
    report.results.push(measured(
        KRATE,
        "Redis checks/s, 1 connection, one at a time",
        "checks/s",
        false,
        series,
    ));
    let mut pipelined_series: Vec<_> = pipelined_rates.into_iter().collect();
    if let Some(c) = redis_benchmark(server.port(), &sha, 1, BATCH as u32, n * 4) {
        pipelined_series.push((
            "redis-benchmark -c 1 -P 64 EVALSHA return 1",
            false,
            vec![c],
        ));
    }
    report.results.push(measured(
        KRATE,
        &format!("Redis checks/s, 1 connection, pipelined by {BATCH}"),
        "checks/s",
        false,
        pipelined_series,
    ));

    // Latency of single checks.
    let samples = match mode {
        Mode::Smoke => 200,
        Mode::Quick => 5_000,
        Mode::Full => 20_000,
    };
    let lat = |f: &dyn Fn(u64)| {
        let v: Vec<Duration> = (0..samples)
            .map(|i| {
                let t = Instant::now();
                f(i);
                t.elapsed()
            })
            .collect();
        quantiles_us(v)
    };
    let ours_lat = lat(&|i| {
        rt.block_on(gcra.check(key(i))).expect("check");
    });
    let mut c = conn.clone();
    let c = std::cell::RefCell::new(&mut c);
    let naive_lat = lat(&|i| {
        rt.block_on(naive_check(&mut c.borrow_mut(), key(i), 1_000_000));
    });
    let mut c2 = conn.clone();
    let c2 = std::cell::RefCell::new(&mut c2);
    let trivial_lat = lat(&|_| {
        rt.block_on(trivial(&mut c2.borrow_mut(), &sha));
    });
    for (q, pick) in [("p50", 0usize), ("p99", 1)] {
        let v = |l: (f64, f64)| vec![if pick == 0 { l.0 } else { l.1 }];
        report.results.push(measured(
            KRATE,
            &format!("Redis check latency {q}, 1 connection"),
            "µs",
            true,
            vec![
                ("ours GCRA", true, v(ours_lat)),
                ("naive INCR+EXPIRE window", false, v(naive_lat)),
                ("EVALSHA return 1", false, v(trivial_lat)),
            ],
        ));
    }
}
