//! Behaviour of the job layer at its edges: one queue per store, deliveries
//! that belong to another queue, ids and attempt counters at their ends,
//! restarts that are not failures; and the in-process queue's split
//! handles: the last sender's drop closes it, iterators end there.
#![cfg(not(sysblocks_loom))]

use std::time::Duration;

use sysblocks_task_queue::{
    Backoff, BuildError, MemoryStore, Outcome, RecordState, Store, StoreError, StoreOp,
    SubmitBatchError, SubmitError, Task, TaskId, TaskQueue, TaskRecord, Ticket,
};

fn builder(store: &MemoryStore) -> sysblocks_task_queue::TaskQueueBuilder {
    TaskQueue::builder()
        .store(store.clone())
        .backoff(Backoff::Fixed(Duration::ZERO))
        .max_attempts(2)
}

/// Two queues over clones of one store used to both hand out task-0, and
/// the second overwrote the first's acknowledged task. The second is now
/// refused; once the first is gone, the store serves a new queue again.
#[test]
fn a_store_serves_one_queue_at_a_time() {
    let store = MemoryStore::new();
    let a = builder(&store).build().unwrap();
    let err = builder(&store).build().unwrap_err();
    assert_eq!(err, BuildError::Store(StoreError::InUse));
    let ia = a.submit(Task::new("a")).unwrap();
    // A failed build does not keep the claim, and a clone of the queue
    // keeps it as long as it lives.
    let a2 = a.clone();
    drop(a);
    assert_eq!(
        builder(&store).build().unwrap_err(),
        BuildError::Store(StoreError::InUse)
    );
    drop(a2);
    let b = builder(&store).build().unwrap();
    let ib = b.submit(Task::new("b")).unwrap();
    assert_ne!(ia, ib);
    assert_eq!(b.len(), 2);
    assert_eq!(store.len(), 2);
}

/// Completing queue A's delivery on queue B used to delete B's task with
/// the same id, which was never leased.
#[test]
fn a_delivery_of_another_queue_changes_nothing() {
    let qa = TaskQueue::builder().build().unwrap();
    let qb = TaskQueue::builder().build().unwrap();
    let ia = qa.submit(Task::new("a")).unwrap();
    let ib = qb.submit(Task::new("b")).unwrap();
    assert_eq!(ia, ib, "both queues start at the same id");
    let from_a = qa.lease().unwrap();
    assert_eq!(qb.complete(&from_a, Ok(())), Outcome::Foreign);
    assert_eq!(qb.complete(&from_a, Err("x".into())), Outcome::Foreign);
    assert_eq!(qb.len(), 1);
    assert!(qb.leased().is_empty());
    assert_eq!(qb.stats().completed, 0);
    // B's own delivery of the same id still works, and so does A's.
    let from_b = qb.lease().unwrap();
    assert_eq!(from_b.payload(), b"b");
    assert_eq!(qa.complete(&from_b, Ok(())), Outcome::Foreign);
    assert_eq!(qb.complete(&from_b, Ok(())), Outcome::Completed);
    assert_eq!(qa.complete(&from_a, Ok(())), Outcome::Completed);
}

#[test]
fn a_ticket_never_issued_is_an_error_at_once() {
    let store = MemoryStore::new();
    let t = store.append(Vec::new()).unwrap();
    store.wait(t).unwrap();
    assert_eq!(
        store.wait(Ticket(1_000_000)),
        Err(StoreError::UnknownTicket { ticket: 1_000_000 })
    );
}

fn put(store: &MemoryStore, id: u64, attempts: u32, restarts: u32, state: RecordState) {
    let rec = TaskRecord {
        id: TaskId(id),
        task: Task::new(format!("t{id}")),
        attempts,
        restarts,
        state,
        written_at: 0,
    };
    let t = store.append(vec![StoreOp::Put(rec)]).unwrap();
    store.wait(t).unwrap();
}

/// Ids never wrap: `u64::MAX` is never handed out, and once the ids below
/// it are used up a submit is a typed error.
#[test]
fn ids_run_out_with_an_error_and_never_wrap() {
    let store = MemoryStore::new();
    put(
        &store,
        u64::MAX - 3,
        0,
        0,
        RecordState::Pending { run_at: 0 },
    );
    let q = builder(&store).capacity(10).build().unwrap();
    assert_eq!(q.submit(Task::new("x")).unwrap(), TaskId(u64::MAX - 2));
    // Two ids would be needed, one is left: none is taken.
    assert_eq!(
        q.submit_batch(vec![Task::new("y"), Task::new("z")]),
        Err(SubmitBatchError::Store(StoreError::IdsExhausted))
    );
    assert_eq!(q.submit(Task::new("y")).unwrap(), TaskId(u64::MAX - 1));
    assert_eq!(
        q.submit(Task::new("z")),
        Err(SubmitError::Store(StoreError::IdsExhausted))
    );
    assert!(matches!(
        q.submit_pending(Task::new("z")),
        Err(SubmitError::Store(StoreError::IdsExhausted))
    ));
    assert_eq!(q.len(), 3);
    drop(q);
    // A record at u64::MAX (only damage or a foreign writer can put one
    // there) leaves no id at all.
    let store = MemoryStore::new();
    put(&store, u64::MAX, 0, 0, RecordState::Pending { run_at: 0 });
    let q = builder(&store).build().unwrap();
    assert_eq!(
        q.submit(Task::new("x")),
        Err(SubmitError::Store(StoreError::IdsExhausted))
    );
}

/// A delivery count at `u32::MAX` cannot grow: the task is dead-lettered
/// instead of delivered with a wrapped count.
#[test]
fn attempt_counters_never_wrap() {
    let store = MemoryStore::new();
    put(&store, 1, u32::MAX, 0, RecordState::Pending { run_at: 0 });
    put(
        &store,
        2,
        u32::MAX - 1,
        u32::MAX - 1,
        RecordState::Pending { run_at: 0 },
    );
    let q = builder(&store).max_attempts(u32::MAX).build().unwrap();
    let d = q.lease().unwrap();
    assert_eq!((d.id(), d.attempt()), (TaskId(2), u32::MAX));
    assert!(q.lease().is_none());
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (TaskId(1), u32::MAX));
    assert_eq!(dead[0].error, "attempt counter exhausted");
    // Its one failure leaves the next delivery uncountable too.
    assert!(matches!(
        q.complete(&d, Err("x".into())),
        Outcome::Retry { .. }
    ));
    assert!(q.lease().is_none());
    assert_eq!(q.dead_letters().len(), 2);
}

/// A crash loop: the process dies again and again while the task is
/// leased. Those deliveries were cut short by restarts, not failed by the
/// task, so the task outlives many more restarts than it has attempts,
/// and its failures still count as before.
#[test]
fn a_crash_loop_does_not_dead_letter_a_healthy_task() {
    let store = MemoryStore::new();
    let id = builder(&store)
        .build()
        .unwrap()
        .submit(Task::new("healthy"))
        .unwrap();
    for restart in 0..10u32 {
        let q = builder(&store).build().unwrap();
        assert!(q.dead_letters().is_empty(), "dead after {restart} restarts");
        assert_eq!(q.stats().recovered_leases, u64::from(restart > 0));
        let d = q.lease().unwrap();
        assert_eq!((d.id(), d.attempt()), (id, restart + 1));
        // The process dies with the task leased.
    }
    let q = builder(&store).build().unwrap();
    // Handler failures still count: max_attempts is 2.
    let d = q.lease().unwrap();
    assert_eq!(d.attempt(), 11);
    assert!(matches!(
        q.complete(&d, Err("1".into())),
        Outcome::Retry { .. }
    ));
    let d = q.lease().unwrap();
    assert_eq!(q.complete(&d, Err("2".into())), Outcome::Dead);
    assert_eq!(q.dead_letters()[0].attempts, 12);
}

/// Restarts have their own limit: a task found leased at every start may be
/// what kills the process.
#[test]
fn restarts_have_their_own_limit() {
    let store = MemoryStore::new();
    let b = || builder(&store).max_restarts(3);
    b().build().unwrap().submit(Task::new("poison")).unwrap();
    for _ in 0..3 {
        let q = b().build().unwrap();
        assert!(q.dead_letters().is_empty());
        let _leased = q.lease().unwrap();
    }
    let q = b().build().unwrap();
    assert!(q.is_empty());
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "lease lost in 3 restarts (max_restarts)");
    assert_eq!(
        TaskQueue::builder().max_restarts(0).build().unwrap_err(),
        BuildError::Zero {
            setting: "max_restarts"
        }
    );
}

/// A consumer blocked on an empty queue wakes up and ends when the last
/// producer handle goes, after it drained what was left.
#[test]
fn dropping_the_last_sender_closes_the_queue_after_the_drain() {
    use sysblocks_task_queue::{BoundedQueue, PopError};
    let (tx, rx) = BoundedQueue::channel(4).unwrap();
    let tx2 = tx.clone();
    let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<u32>>());
    let producers: Vec<_> = [tx, tx2]
        .into_iter()
        .enumerate()
        .map(|(i, tx)| {
            std::thread::spawn(move || {
                for k in 0..100u32 {
                    tx.push(i as u32 * 1000 + k).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let mut got = consumer.join().unwrap();
    got.sort_unstable();
    let mut want: Vec<u32> = (0..100).chain(1000..1100).collect();
    want.sort_unstable();
    assert_eq!(got, want);

    // A `BoundedQueue` handle is a sender too: the queue stays open while
    // it lives, and closes with it.
    let q = BoundedQueue::new(2).unwrap();
    let rx = q.receiver();
    q.try_push(7).unwrap();
    assert!(!rx.is_closed());
    drop(q);
    assert!(rx.is_closed());
    assert_eq!(rx.pop(), Some(7));
    assert_eq!(rx.pop(), None);
    assert_eq!(rx.try_pop(), Err(PopError::Closed));
}

/// With every receiver gone a push fails at once and hands its item back.
#[test]
fn dropping_the_last_receiver_refuses_pushes() {
    use sysblocks_task_queue::{BoundedQueue, PushError};
    let (tx, rx) = BoundedQueue::channel(1).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    tx.try_push(1).unwrap();
    drop(rx2);
    assert!(tx.is_closed());
    assert_eq!(tx.push(2), Err(PushError::Closed(2)));
}

/// `drain` takes what is queued now without waiting; the owning and
/// borrowing iterators block until the queue is closed and drained.
#[test]
fn drain_and_iterators() {
    use sysblocks_task_queue::BoundedQueue;
    let q = BoundedQueue::new(8).unwrap();
    for i in 0..5 {
        q.try_push(i).unwrap();
    }
    assert_eq!(q.drain().take(2).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(q.drain().collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(q.drain().next(), None, "drain does not wait");
    assert!(!q.is_closed());

    let (tx, rx) = q.split();
    tx.try_push(10).unwrap();
    tx.try_push(11).unwrap();
    assert_eq!(rx.drain().count(), 2);
    tx.try_push(12).unwrap();
    drop(tx);
    let mut seen = Vec::new();
    for v in &rx {
        seen.push(v);
    }
    assert_eq!(seen, [12]);
    assert_eq!(rx.into_iter().next(), None);
}

/// A handler that runs for several leases keeps its task: the pool's
/// heartbeat extends the lease, so the task is delivered once.
#[test]
fn the_pool_heartbeat_keeps_a_long_task_leased() {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use sysblocks_task_queue::{Delivery, TaskError, WorkerPool};
    let q = TaskQueue::builder()
        .lease(Duration::from_millis(60))
        .build()
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&runs);
    let pool = WorkerPool::start(&q, 2, move |_: &Delivery| -> Result<(), TaskError> {
        r.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    })
    .unwrap();
    q.submit(Task::new("long")).unwrap();
    let start = std::time::Instant::now();
    while q.stats().completed < 1 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = pool.shutdown(Duration::from_secs(2));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "redelivered while running");
    assert_eq!(q.stats().expired_leases, 0);
    assert_eq!(report.busy_workers, 0);
}

/// A handler that overruns the pool's handler timeout fails its attempt:
/// the task is retried, then dead-lettered after the last attempt.
#[test]
fn a_handler_timeout_fails_the_attempt() {
    use sysblocks_task_queue::{Delivery, TaskError, WorkerPool};
    let q = TaskQueue::builder()
        .backoff(Backoff::Fixed(Duration::ZERO))
        .max_attempts(2)
        .build()
        .unwrap();
    let pool = WorkerPool::start_with_timeout(
        &q,
        1,
        Duration::from_millis(30),
        |_: &Delivery| -> Result<(), TaskError> {
            std::thread::sleep(Duration::from_millis(80));
            Err(TaskError::new("too late anyway"))
        },
    )
    .unwrap();
    q.submit(Task::new("slow")).unwrap();
    let start = std::time::Instant::now();
    while q.dead_letters().is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = pool.shutdown(Duration::from_secs(2));
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "handler timed out");
    assert_eq!(q.stats().failed_attempts, 2);
}

/// The handler timeout follows the queue's clock: with a manual clock, a
/// handler times out when the clock passes the timeout, not when real time
/// does (an hour here).
#[test]
fn the_handler_timeout_follows_the_queue_clock() {
    use std::sync::mpsc;
    use std::sync::Mutex;
    use sysblocks_task_queue::{Delivery, ManualClock, TaskError, WorkerPool};
    let clock = ManualClock::new();
    let q = TaskQueue::builder()
        .clock(clock.clone())
        .lease(Duration::from_secs(1_000_000))
        .max_attempts(1)
        .build()
        .unwrap();
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let release_rx = Mutex::new(release_rx);
    let pool = WorkerPool::start_with_timeout(
        &q,
        1,
        Duration::from_secs(3600),
        move |_: &Delivery| -> Result<(), TaskError> {
            started_tx.lock().unwrap().send(()).unwrap();
            let _ = release_rx.lock().unwrap().recv();
            Err(TaskError::new("released"))
        },
    )
    .unwrap();
    q.submit(Task::new("stuck")).unwrap();
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    // Real time passes, the clock does not: no timeout.
    std::thread::sleep(Duration::from_millis(150));
    assert!(q.dead_letters().is_empty());
    clock.advance(Duration::from_secs(3601));
    let start = std::time::Instant::now();
    while q.dead_letters().is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(2));
    }
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "handler timed out");
    release.send(()).unwrap();
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!(report.busy_workers, 0);
}
