//! `pick` + drop for every `lb` strategy at 10 and 100 backends, on one and
//! two threads, and tower's `p2c::Balance` (`PendingRequests` load, always
//! ready services) at the same sizes on one thread. The setups are
//! `benches::workloads::lb`, shared with `compare`.
//!
//! Run: `cargo bench -p benches --bench lb -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::sync::Arc;

use benches::workloads::lb::{
    balancer, pick_drop, pick_drop_two_threads, tower_p2c_pick_drop, SIZES,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sysblocks_lb::{
    ConsistentHashing, Context, LeastConnections, PeakEwma, PowerOfTwoChoices, Random, RoundRobin,
    SmoothWeightedRoundRobin, Strategy,
};

fn bench_strategy<S: Strategy>(c: &mut Criterion, name: &str, make: impl Fn() -> S) {
    let mut g = c.benchmark_group(format!("lb/pick_drop/{name}"));
    for n in SIZES {
        let b = balancer(make(), n);
        g.bench_function(BenchmarkId::new("1thread", n), |bench| {
            bench.iter_custom(|iters| pick_drop(&b, iters));
        });
        let b = Arc::new(balancer(make(), n));
        g.bench_function(BenchmarkId::new("2threads", n), |bench| {
            bench.iter_custom(|iters| pick_drop_two_threads(&b, iters));
        });
    }
    g.finish();
}

/// tower's p2c: `poll_ready` + `call` + drop of the response future.
fn bench_tower_p2c(c: &mut Criterion) {
    let mut g = c.benchmark_group("lb/pick_drop/tower_p2c_pending_requests");
    for n in SIZES {
        let mut routine = tower_p2c_pick_drop(n);
        g.bench_function(BenchmarkId::new("1thread", n), |bench| {
            bench.iter_custom(&mut routine);
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
            bench.iter_custom(|iters| pick_drop(&b, iters));
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
    bench_tower_p2c(c);
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
