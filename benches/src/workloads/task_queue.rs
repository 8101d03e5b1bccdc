//! Queue workloads for `task-queue` and its peers (crossbeam-channel,
//! flume, kanal), shared by `compare` and the criterion bench: moving items
//! from producer threads to consumer threads through one bounded queue,
//! `try_push` on a full one, and durable task throughput (redb store against
//! the in-memory store).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sysblocks_task_queue::{
    BoundedQueue, Delivery, MemoryStore, RedbStore, Task, TaskId, TaskQueue, WorkerPool,
};

/// The queues under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sysblocks_task_queue::BoundedQueue`.
    Ours,
    /// `crossbeam_channel::bounded`.
    Crossbeam,
    /// `flume::bounded`.
    Flume,
    /// `kanal::bounded`.
    Kanal,
}

impl Kind {
    /// Every kind, ours first.
    pub const ALL: [Self; 4] = [Self::Ours, Self::Crossbeam, Self::Flume, Self::Kanal];

    /// Display name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Crossbeam => "crossbeam-channel",
            Self::Flume => "flume",
            Self::Kanal => "kanal",
        }
    }
}

type Send = Box<dyn Fn(u64) + std::marker::Send>;
type Recv = Box<dyn Fn() -> u64 + std::marker::Send>;
/// Makes one sender (or receiver) per thread.
type Maker<T> = Box<dyn Fn() -> T>;

/// Makes a sender and a receiver maker for a fresh queue of `cap`.
fn make(kind: Kind, cap: usize) -> (Maker<Send>, Maker<Recv>) {
    macro_rules! chan {
        ($tx:expr, $rx:expr, $send:ident, $recv:ident) => {{
            let (tx, rx) = ($tx, $rx);
            (
                Box::new(move || {
                    let tx = tx.clone();
                    Box::new(move |v| tx.$send(v).expect("open")) as Send
                }),
                Box::new(move || {
                    let rx = rx.clone();
                    Box::new(move || rx.$recv().expect("open")) as Recv
                }),
            )
        }};
    }
    match kind {
        Kind::Ours => {
            let q = BoundedQueue::new(cap).expect("capacity > 0");
            chan!(q.clone(), q, push, pop)
        }
        Kind::Crossbeam => {
            let (tx, rx) = crossbeam_channel::bounded(cap);
            chan!(tx, rx, send, recv)
        }
        Kind::Flume => {
            let (tx, rx) = flume::bounded(cap);
            chan!(tx, rx, send, recv)
        }
        Kind::Kanal => {
            let (tx, rx) = kanal::bounded(cap);
            chan!(tx, rx, send, recv)
        }
    }
}

/// Moves `items` (rounded up to a multiple of `c`) from `p` producers to
/// `c` consumers through a fresh queue of `cap`; returns the wall time from
/// the first spawn to the last item received.
///
/// # Panics
///
/// The consumers' sums disagree with what was sent (a lost or duplicated
/// item), or a thread panics.
#[must_use]
pub fn transfer(kind: Kind, p: u64, c: u64, cap: usize, items: u64) -> Duration {
    let items = items.max(c).div_ceil(c) * c;
    let (senders, receivers) = make(kind, cap);
    let start = Instant::now();
    std::thread::scope(|s| {
        for i in 0..p {
            let send = senders();
            s.spawn(move || {
                for k in (i..items).step_by(p as usize) {
                    send(k);
                }
            });
        }
        let handles: Vec<_> = (0..c)
            .map(|_| {
                let recv = receivers();
                s.spawn(move || {
                    let mut sum = 0u64;
                    for _ in 0..items / c {
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
        assert_eq!(total, items * (items - 1) / 2, "lost or duplicated items");
    });
    start.elapsed()
}

/// A full queue of capacity 1024 and a `try_push` on it, which must fail.
#[must_use]
pub fn full_try_push(kind: Kind) -> Box<dyn FnMut() -> bool> {
    const CAP: usize = 1024;
    match kind {
        Kind::Ours => {
            let q = BoundedQueue::new(CAP).expect("capacity > 0");
            while q.try_push(0u64).is_ok() {}
            Box::new(move || q.try_push(std::hint::black_box(1)).is_err())
        }
        Kind::Crossbeam => {
            let (tx, rx) = crossbeam_channel::bounded(CAP);
            while tx.try_send(0u64).is_ok() {}
            Box::new(move || {
                let _keep = &rx;
                tx.try_send(std::hint::black_box(1)).is_err()
            })
        }
        Kind::Flume => {
            let (tx, rx) = flume::bounded(CAP);
            while tx.try_send(0u64).is_ok() {}
            Box::new(move || {
                let _keep = &rx;
                tx.try_send(std::hint::black_box(1)).is_err()
            })
        }
        Kind::Kanal => {
            let (tx, rx) = kanal::bounded(CAP);
            while tx.try_send(0u64).ok() == Some(true) {}
            Box::new(move || {
                let _keep = &rx;
                tx.try_send(std::hint::black_box(1)).ok() != Some(true)
            })
        }
    }
}

/// The store of a durable run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `sysblocks_task_queue::RedbStore`: every accepted task fsync'd (group commit).
    Redb,
    /// `sysblocks_task_queue::MemoryStore`: the same job layer with nothing on disk.
    Memory,
}

impl StoreKind {
    /// Display name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Redb => "redb store",
            Self::Memory => "memory store",
        }
    }
}

/// How producers hand tasks to the queue in a durable run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submit {
    /// `submit`, one task at a time: each producer waits for its own commit.
    Plain,
    /// `submit_batch` of this many tasks.
    Batch(usize),
    /// `submit_pending`, one task at a time, with up to this many pending
    /// per producer (it waits for the oldest when it has that many).
    Pipelined(usize),
}

/// What one durable run measured.
#[derive(Debug, Clone, Copy)]
pub struct DurableRun {
    /// From the first submit to the last completion being durable.
    pub elapsed: Duration,
    /// Tasks submitted and completed.
    pub tasks: u64,
    /// fsync'd write transactions of the redb store during the run
    /// (submits, leases and completions share them); 0 for memory.
    pub commits: u64,
}

impl DurableRun {
    /// Tasks accepted durably and completed per second.
    #[must_use]
    pub fn tasks_per_sec(&self) -> f64 {
        self.tasks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Tasks per fsync'd commit (`None` without commits).
    #[must_use]
    pub fn tasks_per_commit(&self) -> Option<f64> {
        (self.commits > 0).then(|| self.tasks as f64 / self.commits as f64)
    }
}

/// `producers` threads submit `tasks` tasks (rounded down to a multiple of
/// `producers`) as `submit` says while 2 workers complete them; the time
/// runs until every task is completed and the completions are durable too.
/// A redb store lives in a fresh file under `dir`, removed afterwards.
///
/// # Panics
///
/// A submit is refused, the store cannot be opened, or tasks are left
/// over at the end.
#[must_use]
pub fn durable_run(
    store: StoreKind,
    dir: &Path,
    tasks: u64,
    producers: u64,
    submit: Submit,
) -> DurableRun {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let per = (tasks / producers).max(1);
    let tasks = per * producers;
    let path = dir.join(format!(
        "durable-{}.redb",
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let builder = TaskQueue::builder().capacity(tasks as usize);
    let (queue, redb) = match store {
        StoreKind::Redb => {
            let _ = std::fs::remove_file(&path);
            let s = RedbStore::open(&path).expect("redb store");
            let q = builder.store(s.clone()).build().expect("queue");
            (q, Some(s))
        }
        StoreKind::Memory => (
            builder.store(MemoryStore::new()).build().expect("queue"),
            None,
        ),
    };
    let commits_before = redb.as_ref().map_or(0, RedbStore::commits);
    let pool = WorkerPool::start(&queue, 2, |_: &Delivery| Ok(())).expect("workers");
    let start = Instant::now();
    std::thread::scope(|s| {
        for p in 0..producers {
            let queue = &queue;
            s.spawn(move || {
                let mut left = per;
                let mut pending = std::collections::VecDeque::new();
                while left > 0 {
                    let payload = |i: u64| Task::new((p << 32 | (left - i)).to_le_bytes());
                    let n = match submit {
                        Submit::Plain => {
                            let _: TaskId = queue.submit(payload(0)).expect("accepted");
                            1
                        }
                        Submit::Batch(b) => {
                            let n = (b as u64).min(left);
                            let batch = (0..n).map(payload).collect();
                            queue.submit_batch(batch).expect("accepted");
                            n
                        }
                        Submit::Pipelined(depth) => {
                            if pending.len() >= depth.max(1) {
                                let oldest: sysblocks_task_queue::PendingSubmit =
                                    pending.pop_front().expect("non-empty");
                                oldest.wait().expect("durable");
                            }
                            pending.push_back(queue.submit_pending(payload(0)).expect("accepted"));
                            1
                        }
                    };
                    left -= n;
                }
                for p in pending {
                    p.wait().expect("durable");
                }
            });
        }
    });
    while queue.stats().completed < tasks {
        std::thread::sleep(Duration::from_micros(100));
    }
    queue.flush().expect("durable");
    let elapsed = start.elapsed();
    let commits = redb.as_ref().map_or(0, RedbStore::commits) - commits_before;
    let report = pool.shutdown(Duration::from_secs(5));
    assert!(
        report.in_flight.is_empty() && report.pending == 0,
        "tasks left over"
    );
    drop(queue);
    drop(redb);
    let _ = std::fs::remove_file(&path);
    DurableRun {
        elapsed,
        tasks,
        commits,
    }
}
