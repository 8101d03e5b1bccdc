//! `task-queue`: `BoundedQueue` throughput against crossbeam-channel, flume
//! and kanal (1/1 and 2/2 threads, capacity 1024 and 1), `try_push` on a
//! full queue, and durable task throughput (redb, group commit) against the
//! in-memory store with 4 producers.
//!
//! Run: `cargo bench -p benches --bench task_queue -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use benches::workloads::task_queue::{durable_run, transfer, Kind, StoreKind, Submit};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sysblocks_task_queue::BoundedQueue;

/// Items moved per measured run of the throughput bench.
const ITEMS: u64 = 40_000;

fn throughput(cr: &mut Criterion) {
    for (p, c) in [(1u64, 1u64), (2, 2)] {
        for cap in [1024usize, 1] {
            let mut g = cr.benchmark_group(format!("queue_throughput/{p}p{c}c/cap{cap}"));
            g.throughput(Throughput::Elements(ITEMS));
            g.sample_size(10);
            for kind in Kind::ALL {
                let name = match kind {
                    Kind::Ours => "task_queue::BoundedQueue",
                    Kind::Crossbeam => "crossbeam_channel",
                    other => other.name(),
                };
                g.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| {
                        (0..iters).map(|_| transfer(kind, p, c, cap, ITEMS)).sum()
                    });
                });
            }
            g.finish();
        }
    }
}

fn try_push_full(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("try_push_full");
    let q = BoundedQueue::new(1024).expect("capacity");
    while q.try_push(0u64).is_ok() {}
    g.bench_function("task_queue::BoundedQueue", |b| {
        b.iter(|| std::hint::black_box(q.try_push(std::hint::black_box(1u64))).is_err());
    });
    let (tx, _rx) = crossbeam_channel::bounded(1024);
    while tx.try_send(0u64).is_ok() {}
    g.bench_function("crossbeam_channel", |b| {
        b.iter(|| std::hint::black_box(tx.try_send(std::hint::black_box(1u64))).is_err());
    });
    let (tx, _rx) = flume::bounded(1024);
    while tx.try_send(0u64).is_ok() {}
    g.bench_function("flume", |b| {
        b.iter(|| std::hint::black_box(tx.try_send(std::hint::black_box(1u64))).is_err());
    });
    let (tx, _rx) = kanal::bounded(1024);
    while tx.try_send(0u64).ok() == Some(true) {}
    g.bench_function("kanal", |b| {
        b.iter(|| std::hint::black_box(tx.try_send(std::hint::black_box(1u64))).ok());
    });
    g.finish();
}

/// Tasks per measured run of the durable bench.
const TASKS: u64 = 4_000;
const PRODUCERS: u64 = 4;

/// 4 producers submit `TASKS` tasks (plain `submit`, `submit_pending` with
/// 16 in flight, or batches of 32), 2
/// workers complete them; the time runs until every task is completed and
/// the completions are durable (`workloads::task_queue::durable_run`).
fn durable(cr: &mut Criterion) {
    // Removed when dropped, also if a run panics.
    let dir = tempfile::Builder::new()
        .prefix("sysblocks-tq-bench-")
        .tempdir()
        .expect("temp dir");
    let mut g = cr.benchmark_group("durable_4_producers");
    g.throughput(Throughput::Elements(TASKS));
    g.sample_size(10);
    for (label, submit) in [
        ("plain", Submit::Plain),
        ("pending16", Submit::Pipelined(16)),
        ("batch32", Submit::Batch(32)),
    ] {
        for (name, store) in [("memory", StoreKind::Memory), ("redb", StoreKind::Redb)] {
            g.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| durable_run(store, dir.path(), TASKS, PRODUCERS, submit).elapsed)
                        .sum()
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, throughput, try_push_full, durable);
criterion_main!(benches);
