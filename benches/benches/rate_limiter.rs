//! `rate-limiter` against `governor` and `ratelimit`, same process, same
//! quota, same key sequence.
//!
//! - `direct/admit`: checks that are admitted (a quota of 10^9 per second,
//!   burst 1000), so each check writes its state: ours for every algorithm,
//!   `governor`'s direct limiter, `ratelimit::Ratelimiter::try_wait`;
//! - `direct/deny`: checks that are denied (1 per hour): GCRA vs governor;
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
//! (heap bytes counted by a global allocator).
//!
//! Run: `cargo bench -p benches --bench rate_limiter -- --warm-up-time 1 --measurement-time 3`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rate_limiter::{
    Algorithm, FixedWindow, Gcra, Keyed, LeakyBucket, Quota, RateLimiter, SlidingWindowCounter,
    SlidingWindowLog, TokenBucket,
};

// ----- counting allocator (bytes-per-key report only) -----------------------

/// Counts live heap bytes while `COUNTING` is set; otherwise forwards only.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; `ptr` came from `alloc` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes held by what `build` returns, divided by `keys`.
fn bytes_per_key<T>(keys: u64, build: impl FnOnce() -> T) -> f64 {
    LIVE.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let held = build();
    let live = LIVE.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::Relaxed);
    drop(black_box(held));
    live as f64 / keys as f64
}

// ----- workloads ------------------------------------------------------------

const KEYS: u64 = 100_000;
const SAMPLES: usize = 1 << 18;

fn uniform_keys() -> Vec<u64> {
    let mut rng = SmallRng::seed_from_u64(1);
    (0..SAMPLES).map(|_| rng.gen_range(0..KEYS)).collect()
}

/// Zipf(1.0) over `KEYS` ranks by inverse CDF, ranks scattered over the
/// key space so hot keys do not share a shard by construction.
fn zipf_keys() -> Vec<u64> {
    let mut cdf = Vec::with_capacity(KEYS as usize);
    let mut sum = 0.0;
    for k in 1..=KEYS {
        sum += 1.0 / k as f64;
        cdf.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(2);
    (0..SAMPLES)
        .map(|_| {
            let u = rng.gen::<f64>() * sum;
            let rank = cdf.partition_point(|&c| c < u) as u64;
            rank.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS
        })
        .collect()
}

fn keyed_quota() -> Quota {
    Quota::per_second(100).burst(50)
}

fn gov_keyed_quota() -> governor::Quota {
    governor::Quota::per_second(NonZeroU32::new(100).unwrap())
        .allow_burst(NonZeroU32::new(50).unwrap())
}

/// Runs `op(i)` for `iters` iterations on each of two threads at once and
/// returns the wall time.
fn two_threads(iters: u64, op: impl Fn(u64, u64) + Sync) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (barrier, op) = (&barrier, &op);
            s.spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    op(t, i);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn ours_direct(quota: Quota) -> Vec<(&'static str, Box<dyn RateLimiter>)> {
    vec![
        ("ours_gcra", Box::new(Gcra::new(quota).unwrap())),
        (
            "ours_token_bucket",
            Box::new(TokenBucket::new(quota).unwrap()),
        ),
        (
            "ours_leaky_bucket",
            Box::new(LeakyBucket::new(quota).unwrap()),
        ),
        (
            "ours_fixed_window",
            Box::new(FixedWindow::new(quota).unwrap()),
        ),
        (
            "ours_sliding_log",
            Box::new(SlidingWindowLog::new(quota).unwrap()),
        ),
        (
            "ours_sliding_counter",
            Box::new(SlidingWindowCounter::new(quota).unwrap()),
        ),
    ]
}

fn bench_direct(c: &mut Criterion) {
    let admit = Quota::per_second(1_000_000_000).burst(1000);
    let gov_admit = governor::Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap())
        .allow_burst(NonZeroU32::new(1000).unwrap());
    let mut g = c.benchmark_group("direct/admit");
    g.throughput(Throughput::Elements(1));
    // Ours through the concrete type (no dyn call) for GCRA.
    let gcra = Gcra::new(admit).unwrap();
    g.bench_function("ours_gcra_concrete", |b| b.iter(|| black_box(gcra.check())));
    for (name, l) in ours_direct(admit) {
        g.bench_function(name, |b| b.iter(|| black_box(l.check())));
    }
    let gov = governor::RateLimiter::direct(gov_admit);
    g.bench_function("governor", |b| b.iter(|| black_box(gov.check())));
    let rl = ratelimit::Ratelimiter::builder(1000, Duration::from_micros(1))
        .max_tokens(1000)
        .initial_available(1000)
        .build()
        .unwrap();
    g.bench_function("ratelimit", |b| b.iter(|| black_box(rl.try_wait())));
    g.finish();

    let mut g = c.benchmark_group("direct/deny");
    g.throughput(Throughput::Elements(1));
    let gcra = Gcra::new(Quota::per_hour(1)).unwrap();
    let _ = gcra.check();
    g.bench_function("ours_gcra", |b| b.iter(|| black_box(gcra.check())));
    let gov = governor::RateLimiter::direct(governor::Quota::per_hour(NonZeroU32::new(1).unwrap()));
    let _ = gov.check();
    g.bench_function("governor", |b| b.iter(|| black_box(gov.check())));
    g.finish();

    let mut g = c.benchmark_group("direct2/admit");
    g.throughput(Throughput::Elements(2));
    let gcra = Gcra::new(admit).unwrap();
    g.bench_function("ours_gcra", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_, _| {
                black_box(gcra.check());
            })
        })
    });
    let tb = TokenBucket::new(admit).unwrap();
    g.bench_function("ours_token_bucket", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_, _| {
                black_box(tb.check());
            })
        })
    });
    let gov = governor::RateLimiter::direct(gov_admit);
    g.bench_function("governor", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_, _| {
                let _ = black_box(gov.check());
            })
        })
    });
    g.bench_function("ratelimit", |b| {
        b.iter_custom(|n| {
            two_threads(n, |_, _| {
                let _ = black_box(rl.try_wait());
            })
        })
    });
    g.finish();
}

fn keyed_ours<A: Algorithm>(template: A, keys: &[u64]) -> Keyed<u64, A> {
    let k = Keyed::builder(template).max_keys(1 << 20).build().unwrap();
    for key in 0..KEYS {
        let _ = k.check_key(&key);
    }
    for key in keys.iter().take(1 << 16) {
        let _ = k.check_key(key);
    }
    k
}

fn bench_keyed(c: &mut Criterion) {
    let q = keyed_quota();
    for (dist, keys) in [("uniform", uniform_keys()), ("zipf", zipf_keys())] {
        let keys = &keys;
        let mask = SAMPLES - 1;
        let mut g = c.benchmark_group(format!("keyed/{dist}"));
        g.throughput(Throughput::Elements(1));
        macro_rules! ours {
            ($name:expr, $alg:expr) => {{
                let k = keyed_ours($alg, keys);
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
        let gov = governor::RateLimiter::dashmap(gov_keyed_quota());
        for key in 0..KEYS {
            let _ = gov.check_key(&key);
        }
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
        let ours = keyed_ours(Gcra::new(q).unwrap(), keys);
        g.bench_function(BenchmarkId::new("ours_gcra", dist), |b| {
            b.iter_custom(|n| {
                two_threads(n, |t, i| {
                    let j = (i as usize * 2 + t as usize) & mask;
                    black_box(ours.check_key(&keys[j]));
                })
            })
        });
        g.bench_function(BenchmarkId::new("governor_dashmap", dist), |b| {
            b.iter_custom(|n| {
                two_threads(n, |t, i| {
                    let j = (i as usize * 2 + t as usize) & mask;
                    black_box(gov.check_key(&keys[j]).is_ok());
                })
            })
        });
        g.finish();
    }
}

fn memory_report() {
    let n = KEYS;
    let ours = bytes_per_key(n, || {
        let k = Keyed::builder(Gcra::new(keyed_quota()).unwrap())
            .max_keys(1 << 20)
            .build()
            .unwrap();
        for key in 0..n {
            let _ = k.check_key(&key);
        }
        k
    });
    let gov = bytes_per_key(n, || {
        let g = governor::RateLimiter::dashmap(gov_keyed_quota());
        for key in 0..n {
            let _ = g.check_key(&key);
        }
        g
    });
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
