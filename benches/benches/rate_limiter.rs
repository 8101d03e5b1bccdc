//! `rate-limiter` against `governor` and `ratelimit`, same process, same
//! quota, same key sequence.
//!
//! - `direct/admit`: checks that are admitted (a quota of 10^9 per second,
//!   burst 1000), so each check writes its state: ours for every algorithm,
//!   `governor`'s direct limiter, `ratelimit::Ratelimiter::try_wait`;
//! - `direct/deny`: checks that are denied (1 per hour): GCRA vs governor
//!   and ratelimit;
//! - `direct2/*`: the same with two threads on one limiter (time per pair
//!   of concurrent checks);
//! - `keyed/{uniform,zipf}`: 100,000 `u64` keys (Zipf exponent 1.0), all
//!   present before timing, quota 100 per second burst 50; ours (`Keyed`
//!   with each algorithm) vs governor's `DashMapStateStore`; `keyed2/*` with
//!   two threads.
//!
//! Each limiter reads its crate's default real clock (ours: `QuantaClock`;
//! governor: its `quanta` clock; ratelimit: `clocksource`), as its users
//! would. Bytes per key of the keyed stores are printed once at start
//! (heap bytes counted by `benches::alloc`). The setups are
//! `benches::workloads::rate_limiter`, shared with the `compare` report.
//!
//! Run: `cargo bench -p benches --bench rate_limiter -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use benches::alloc::heap_of;
use benches::workloads::rate_limiter::{
    admit_quota, gov_admitting, gov_denying, gov_keyed, gov_keyed_filled, key_at, keyed_quota,
    on_threads, ours_direct, ours_gcra_denying, ours_keyed, ours_keyed_filled, ratelimit_admitting,
    ratelimit_denying, uniform_keys, zipf_keys, KEYS, SAMPLES,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use sysblocks_rate_limiter::{
    FixedWindow, Gcra, LeakyBucket, RateLimiter, SlidingWindowCounter, SlidingWindowLog,
    TokenBucket,
};

/// Counts heap bytes for the bytes-per-key report (idle outside it).
#[global_allocator]
static ALLOC: benches::alloc::Counting = benches::alloc::Counting;

fn bench_direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct/admit");
    g.throughput(Throughput::Elements(1));
    // Ours through the concrete type (no dyn call) for GCRA.
    let gcra = Gcra::new(admit_quota()).unwrap();
    g.bench_function("ours_gcra_concrete", |b| b.iter(|| black_box(gcra.check())));
    for (name, l) in ours_direct(admit_quota()) {
        g.bench_function(format!("ours_{name}"), |b| b.iter(|| black_box(l.check())));
    }
    let gov = gov_admitting();
    g.bench_function("governor", |b| b.iter(|| black_box(gov.check())));
    let rl = ratelimit_admitting();
    g.bench_function("ratelimit", |b| b.iter(|| black_box(rl.try_wait())));
    g.finish();

    let mut g = c.benchmark_group("direct/deny");
    g.throughput(Throughput::Elements(1));
    let ours = ours_gcra_denying();
    g.bench_function("ours_gcra", |b| b.iter(|| black_box(ours.check())));
    let gov_deny = gov_denying();
    g.bench_function("governor", |b| b.iter(|| black_box(gov_deny.check())));
    let rl_deny = ratelimit_denying();
    g.bench_function("ratelimit", |b| b.iter(|| black_box(rl_deny.try_wait())));
    g.finish();

    let mut g = c.benchmark_group("direct2/admit");
    g.throughput(Throughput::Elements(2));
    let tb = TokenBucket::new(admit_quota()).unwrap();
    g.bench_function("ours_gcra", |b| {
        b.iter_custom(|n| {
            on_threads(2, n, |_, _| {
                black_box(gcra.check());
            })
        })
    });
    g.bench_function("ours_token_bucket", |b| {
        b.iter_custom(|n| {
            on_threads(2, n, |_, _| {
                black_box(tb.check());
            })
        })
    });
    g.bench_function("governor", |b| {
        b.iter_custom(|n| {
            on_threads(2, n, |_, _| {
                let _ = black_box(gov.check());
            })
        })
    });
    g.bench_function("ratelimit", |b| {
        b.iter_custom(|n| {
            on_threads(2, n, |_, _| {
                let _ = black_box(rl.try_wait());
            })
        })
    });
    g.finish();
}

fn bench_keyed(c: &mut Criterion) {
    let q = keyed_quota();
    for (dist, keys) in [("uniform", uniform_keys(KEYS)), ("zipf", zipf_keys(KEYS))] {
        let keys = &keys;
        let mask = SAMPLES - 1;
        let mut g = c.benchmark_group(format!("keyed/{dist}"));
        g.throughput(Throughput::Elements(1));
        macro_rules! ours {
            ($name:expr, $alg:expr) => {{
                let k = ours_keyed($alg, KEYS, keys);
                let mut i = 0usize;
                g.bench_function($name, |b| {
                    b.iter(|| {
                        i = (i + 1) & mask;
                        black_box(k.check_key(&keys[i]))
                    })
                });
            }};
        }
        ours!("ours_gcra", Gcra::new(q).unwrap());
        ours!("ours_token_bucket", TokenBucket::new(q).unwrap());
        ours!("ours_leaky_bucket", LeakyBucket::new(q).unwrap());
        ours!("ours_fixed_window", FixedWindow::new(q).unwrap());
        ours!("ours_sliding_log", SlidingWindowLog::new(q).unwrap());
        ours!(
            "ours_sliding_counter",
            SlidingWindowCounter::new(q).unwrap()
        );
        let gov = gov_keyed(KEYS, keys);
        let mut i = 0usize;
        g.bench_function("governor_dashmap", |b| {
            b.iter(|| {
                i = (i + 1) & mask;
                black_box(gov.check_key(&keys[i]))
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("keyed2/{dist}"));
        g.throughput(Throughput::Elements(2));
        let ours = ours_keyed(Gcra::new(q).unwrap(), KEYS, keys);
        g.bench_function(BenchmarkId::new("ours_gcra", dist), |b| {
            b.iter_custom(|n| {
                on_threads(2, n, |t, i| {
                    black_box(ours.check_key(key_at(keys, 2, t, i)));
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor_dashmap", dist), |b| {
            b.iter_custom(|n| {
                on_threads(2, n, |t, i| {
                    black_box(gov.check_key(key_at(keys, 2, t, i)).is_ok());
                })
            })
        });
        g.finish();
    }
}

fn memory_report() {
    let n = KEYS;
    let (ours, ours_bytes) = heap_of(|| ours_keyed_filled(n));
    drop(ours);
    let (gov, gov_bytes) = heap_of(|| gov_keyed_filled(n));
    drop(gov);
    let (ours, gov) = (ours_bytes as f64 / n as f64, gov_bytes as f64 / n as f64);
    println!(
        "keyed bytes per key at {n} u64 keys (GCRA): ours {ours:.1}, governor dashmap {gov:.1} \
         (ratio {:.2})",
        ours / gov
    );
}

fn main() {
    memory_report();
    let mut c = Criterion::default().configure_from_args();
    bench_direct(&mut c);
    bench_keyed(&mut c);
    c.final_summary();
}
