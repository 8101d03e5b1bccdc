//! `task-queue`: `BoundedQueue` throughput against crossbeam-channel, flume
//! and kanal (1/1 and 2/2 threads, capacity 1024 and 1), `try_push` on a
//! full queue, and durable task throughput (redb, group commit) against the
//! in-memory store with 4 producers.
//!
//! Run: `cargo bench -p benches --bench task_queue -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use task_queue::{BoundedQueue, Delivery, MemoryStore, RedbStore, Task, TaskQueue, WorkerPool};

/// Items moved per measured run of the throughput bench.
const ITEMS: u64 = 40_000;

type Sender = Box<dyn Fn(u64) + Send>;
type Receiver = Box<dyn Fn() -> u64 + Send>;
/// Makes one sender (or receiver) per thread.
type Factory<T> = Box<dyn Fn() -> T>;
type Run = fn(u64, u64, usize) -> Duration;

/// One channel under test: a way to make a sender and a receiver per thread.
trait Channel {
    fn make(cap: usize) -> (Factory<Sender>, Factory<Receiver>);
}

struct Ours;
impl Channel for Ours {
    fn make(cap: usize) -> (Factory<Sender>, Factory<Receiver>) {
        let q = BoundedQueue::new(cap).expect("capacity > 0");
        let q2 = q.clone();
        (
            Box::new(move || {
                let q = q.clone();
                Box::new(move |v| q.push(v).expect("open"))
            }),
            Box::new(move || {
                let q = q2.clone();
                Box::new(move || q.pop().expect("open"))
            }),
        )
    }
}

struct Crossbeam;
impl Channel for Crossbeam {
    fn make(cap: usize) -> (Factory<Sender>, Factory<Receiver>) {
        let (tx, rx) = crossbeam_channel::bounded(cap);
        (
            Box::new(move || {
                let tx = tx.clone();
                Box::new(move |v| tx.send(v).expect("open"))
            }),
            Box::new(move || {
                let rx = rx.clone();
                Box::new(move || rx.recv().expect("open"))
            }),
        )
    }
}

struct Flume;
impl Channel for Flume {
    fn make(cap: usize) -> (Factory<Sender>, Factory<Receiver>) {
        let (tx, rx) = flume::bounded(cap);
        (
            Box::new(move || {
                let tx = tx.clone();
                Box::new(move |v| tx.send(v).expect("open"))
            }),
            Box::new(move || {
                let rx = rx.clone();
                Box::new(move || rx.recv().expect("open"))
            }),
        )
    }
}

struct Kanal;
impl Channel for Kanal {
    fn make(cap: usize) -> (Factory<Sender>, Factory<Receiver>) {
        let (tx, rx) = kanal::bounded(cap);
        (
            Box::new(move || {
                let tx = tx.clone();
                Box::new(move |v| tx.send(v).expect("open"))
            }),
            Box::new(move || {
                let rx = rx.clone();
                Box::new(move || rx.recv().expect("open"))
            }),
        )
    }
}

/// Moves `ITEMS` items from `p` producer threads to `c` consumer threads
/// through a fresh channel; returns the wall time from start to the last
/// item received. Every consumer checks the sum of what it got.
fn run<C: Channel>(p: u64, c: u64, cap: usize) -> Duration {
    let (senders, receivers) = C::make(cap);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..p {
            let send = senders();
            s.spawn(move || {
                for k in (i..ITEMS).step_by(p as usize) {
                    send(k);
                }
            });
        }
        let handles: Vec<_> = (0..c)
            .map(|_| {
                let recv = receivers();
                s.spawn(move || {
                    let mut sum = 0u64;
                    for _ in 0..ITEMS / c {
                        sum = sum.wrapping_add(recv());
                    }
                    sum
                })
            })
            .collect();
        let total: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("consumer"))
            .sum();
        assert_eq!(total, ITEMS * (ITEMS - 1) / 2);
    });
    start.elapsed()
}

fn throughput(cr: &mut Criterion) {
    for (p, c) in [(1u64, 1u64), (2, 2)] {
        for cap in [1024usize, 1] {
            let mut g = cr.benchmark_group(format!("queue_throughput/{p}p{c}c/cap{cap}"));
            g.throughput(Throughput::Elements(ITEMS));
            g.sample_size(10);
            let cases: [(&str, Run); 4] = [
                ("task_queue::BoundedQueue", run::<Ours>),
                ("crossbeam_channel", run::<Crossbeam>),
                ("flume", run::<Flume>),
                ("kanal", run::<Kanal>),
            ];
            for (name, f) in cases {
                g.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter_custom(|iters| (0..iters).map(|_| f(p, c, cap)).sum());
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

/// 4 producers submit `TASKS` tasks (in batches of `batch`; 1 = plain
/// `submit`), 2 workers complete them; the time runs until every task is
/// completed and the completions are durable too.
fn durable_run(queue: &TaskQueue, batch: usize) -> Duration {
    let pool = WorkerPool::start(queue, 2, |_: &Delivery| Ok(())).expect("workers");
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..PRODUCERS {
            s.spawn(|| {
                let per = TASKS / PRODUCERS;
                let mut left = per as usize;
                while left > 0 {
                    let n = batch.min(left);
                    if batch == 1 {
                        queue
                            .submit(Task::new(left.to_le_bytes()))
                            .expect("accepted");
                    } else {
                        let tasks = (0..n).map(|i| Task::new(i.to_le_bytes())).collect();
                        queue.submit_batch(tasks).expect("accepted");
                    }
                    left -= n;
                }
            });
        }
    });
    while queue.stats().completed < TASKS {
        std::thread::sleep(Duration::from_micros(200));
    }
    queue.flush().expect("durable");
    let elapsed = start.elapsed();
    let report = pool.shutdown(Duration::from_secs(5));
    assert!(report.in_flight.is_empty() && report.pending == 0);
    elapsed
}

fn durable(cr: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("sysblocks-tq-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut g = cr.benchmark_group("durable_4_producers");
    g.throughput(Throughput::Elements(TASKS));
    g.sample_size(10);
    for batch in [1usize, 32] {
        g.bench_function(BenchmarkId::new("memory", format!("batch{batch}")), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let q = TaskQueue::builder()
                            .capacity(TASKS as usize)
                            .store(MemoryStore::new())
                            .build()
                            .expect("queue");
                        durable_run(&q, batch)
                    })
                    .sum()
            });
        });
        let mut run = 0u64;
        g.bench_function(BenchmarkId::new("redb", format!("batch{batch}")), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        run += 1;
                        let path = dir.join(format!("run-{run}.redb"));
                        let q = TaskQueue::builder()
                            .capacity(TASKS as usize)
                            .store(RedbStore::open(&path).expect("store"))
                            .build()
                            .expect("queue");
                        let t = durable_run(&q, batch);
                        drop(q);
                        let _ = std::fs::remove_file(&path);
                        t
                    })
                    .sum()
            });
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, throughput, try_push_full, durable);
criterion_main!(benches);
