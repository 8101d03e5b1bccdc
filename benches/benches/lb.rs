//! `pick` + drop for every `lb` strategy at 10 and 100 backends, on one and
//! two threads.
//!
//! Run: `cargo bench -p benches --bench lb -- --warm-up-time 1 --measurement-time 3`
//!
//! tower's `p2c::Balance` is not compared here: it needs an async runtime and
//! `Service`s to drive, which the benches crate does not carry (yet).

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use lb::{
    Balancer, ConsistentHashing, Context, LeastConnections, PeakEwma, PowerOfTwoChoices, Random,
    RoundRobin, SmoothWeightedRoundRobin, Strategy,
};

const SIZES: [usize; 2] = [10, 100];

fn balancer<S: Strategy>(strategy: S, n: usize) -> Balancer<usize, S> {
    let mut b = Balancer::builder(strategy);
    for i in 0..n {
        // Unequal weights so the weighted strategies do real work.
        b = b.backend(i, 1 + (i % 3) as u32);
    }
    b.build().expect("valid balancer")
}

/// Helper for the two-thread case: both threads run `iters`
/// pick+drop pairs; the time is the wall time of the slower one, divided by
/// the iterations of one thread (so it reads as time per pick per thread).
fn two_threads<S: Strategy>(b: &Arc<Balancer<usize, S>>, iters: u64) -> Duration {
    let other = Arc::clone(b);
    let h = std::thread::spawn(move || {
        let ctx = Context::default();
        let t = Instant::now();
        for _ in 0..iters {
            drop(std::hint::black_box(other.pick(&ctx)));
        }
        t.elapsed()
    });
    let ctx = Context::default();
    let t = Instant::now();
    for _ in 0..iters {
        drop(std::hint::black_box(b.pick(&ctx)));
    }
    let mine = t.elapsed();
    let theirs = h.join().expect("bench thread");
    mine.max(theirs)
}

fn bench_strategy<S: Strategy>(c: &mut Criterion, name: &str, make: impl Fn() -> S) {
    let mut g = c.benchmark_group(format!("lb/pick_drop/{name}"));
    for n in SIZES {
        let b = balancer(make(), n);
        g.bench_function(BenchmarkId::new("1thread", n), |bench| {
            let mut k = 0u64;
            bench.iter(|| {
                // A fresh key per pick, for the consistent-hashing strategies.
                k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
                drop(std::hint::black_box(b.pick(&Context::with_key(k))));
            });
        });
        let b = Arc::new(balancer(make(), n));
        g.bench_function(BenchmarkId::new("2threads", n), |bench| {
            bench.iter_custom(|iters| two_threads(&b, iters));
        });
    }
    g.finish();
}

/// Least connections with every backend busy (one held pick each): the
/// early exit on an idle backend cannot fire, so this is the full scan.
fn bench_least_connections_busy(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb/pick_drop/least_connections_busy");
    for n in SIZES {
        let b = balancer(LeastConnections::new(), n);
        let ctx = Context::default();
        let held: Vec<_> = (0..n).filter_map(|_| b.pick(&ctx)).collect();
        g.bench_function(BenchmarkId::new("1thread", n), |bench| {
            bench.iter(|| drop(std::hint::black_box(b.pick(&ctx))));
        });
        drop(held);
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_strategy(c, "round_robin", RoundRobin::new);
    bench_strategy(c, "power_of_two_choices", || {
        PowerOfTwoChoices::with_seed(7)
    });
    bench_strategy(c, "least_connections", LeastConnections::new);
    bench_strategy(
        c,
        "smooth_weighted_round_robin",
        SmoothWeightedRoundRobin::new,
    );
    bench_strategy(c, "random_weighted", || Random::with_seed(7));
    bench_strategy(c, "peak_ewma", || PeakEwma::with_seed(7));
    bench_strategy(c, "consistent_hash_ring", ConsistentHashing::ring);
    bench_strategy(c, "consistent_hash_maglev", ConsistentHashing::maglev);
    bench_least_connections_busy(c);
}

criterion_group!(lb_benches, benches);
criterion_main!(lb_benches);
