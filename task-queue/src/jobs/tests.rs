use std::time::Duration;

use sysblocks_clock::{Clock, ManualClock};

use super::*;
use crate::{BuildError, MemoryStore, Priority, SubmitBatchError, SubmitError, WorkerPool};

const SEC: Duration = Duration::from_secs(1);

fn queue(clock: &ManualClock) -> TaskQueueBuilder {
    TaskQueue::builder()
        .clock(clock.clone())
        .seed(1)
        .lease(10 * SEC)
        .backoff(Backoff::Fixed(5 * SEC))
        .max_attempts(3)
}

#[test]
fn bad_settings_are_typed_errors() {
    let zero = |r: Result<TaskQueue, BuildError>, s: &'static str| {
        assert_eq!(r.unwrap_err(), BuildError::Zero { setting: s });
    };
    zero(TaskQueue::builder().capacity(0).build(), "capacity");
    zero(TaskQueue::builder().max_attempts(0).build(), "max_attempts");
    zero(TaskQueue::builder().lease(Duration::ZERO).build(), "lease");
    let q = TaskQueue::builder().build().unwrap();
    let err = WorkerPool::start(&q, 0, |_: &Delivery| Ok(())).unwrap_err();
    assert_eq!(err, BuildError::Zero { setting: "workers" });
}

#[test]
fn full_queue_hands_the_task_back_at_once() {
    let clock = ManualClock::new();
    let q = queue(&clock).capacity(2).build().unwrap();
    q.submit(Task::new("a")).unwrap();
    q.submit_after(Task::new("b"), SEC).unwrap();
    assert_eq!(
        q.submit(Task::new("c")),
        Err(SubmitError::Full(Task::new("c")))
    );
    let d = q.lease().unwrap();
    // A leased task still counts against the capacity.
    assert!(matches!(
        q.submit(Task::new("c")),
        Err(SubmitError::Full(_))
    ));
    assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
    q.submit(Task::new("c")).unwrap();
    q.close();
    assert_eq!(
        q.submit(Task::new("d")),
        Err(SubmitError::Closed(Task::new("d")))
    );
    assert!(matches!(
        q.submit_batch(vec![Task::new("e")]),
        Err(SubmitBatchError::Closed(_))
    ));
}

#[test]
fn priorities_then_fifo() {
    let clock = ManualClock::new();
    let q = queue(&clock).build().unwrap();
    let low = q
        .submit(Task::new("l").with_priority(Priority::Low))
        .unwrap();
    let n1 = q.submit(Task::new("n1")).unwrap();
    let high = q
        .submit(Task::new("h").with_priority(Priority::High))
        .unwrap();
    let n2 = q.submit(Task::new("n2")).unwrap();
    let order: Vec<TaskId> = std::iter::from_fn(|| q.lease().map(|d| d.id())).collect();
    assert_eq!(order, [high, n1, n2, low]);
}

#[test]
fn delayed_tasks_wait_for_the_clock() {
    let clock = ManualClock::new();
    let q = queue(&clock).build().unwrap();
    let id = q.submit_after(Task::new("later"), 3 * SEC).unwrap();
    assert!(q.lease().is_none());
    clock.advance(2 * SEC);
    assert!(q.lease().is_none());
    clock.advance(SEC);
    assert_eq!(q.lease().unwrap().id(), id);
}

#[test]
fn retries_back_off_then_dead_letter_requeue_and_purge() {
    let clock = ManualClock::new();
    let q = queue(&clock).build().unwrap();
    let id = q.submit(Task::new("flaky")).unwrap();
    for attempt in 1..=3 {
        let d = q.lease().unwrap();
        assert_eq!((d.id(), d.attempt()), (id, attempt));
        let out = q.complete(&d, Err("boom".into()));
        if attempt < 3 {
            assert_eq!(
                out,
                Outcome::Retry {
                    at: clock.now_nanos() + 5_000_000_000
                }
            );
            clock.advance(4 * SEC);
            assert!(q.lease().is_none(), "backoff not respected");
            clock.advance(SEC);
        } else {
            assert_eq!(out, Outcome::Dead);
        }
    }
    assert!(q.lease().is_none());
    let dead = q.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 3));
    assert_eq!(dead[0].error, "boom");
    assert!(q.requeue_dead(id).unwrap());
    assert!(!q.requeue_dead(id).unwrap());
    for attempt in 1..=3 {
        let d = q.lease().unwrap();
        assert_eq!(d.attempt(), attempt);
        let _ = q.complete(&d, Err("again".into()));
        clock.advance(5 * SEC);
    }
    assert_eq!(q.dead_letters().len(), 1);
    assert_eq!(q.purge_dead().unwrap(), 1);
    assert!(q.dead_letters().is_empty());
    let s = q.stats();
    assert_eq!(s.dead_lettered, 2);
    assert_eq!(s.completed, 0);
}

#[test]
fn expired_lease_redelivers_and_duplicates_are_counted() {
    let clock = ManualClock::new();
    let q = queue(&clock)
        .backoff(Backoff::Fixed(Duration::ZERO))
        .build()
        .unwrap();
    let id = q.submit(Task::new("slow")).unwrap();
    let first = q.lease().unwrap();
    clock.advance(11 * SEC);
    let second = q.lease().unwrap();
    assert_eq!((second.id(), second.attempt()), (id, 2));
    assert_eq!(q.stats().expired_leases, 1);
    // The first, late, worker finishes: the task is done.
    assert_eq!(q.complete(&first, Ok(())), Outcome::Completed);
    // The redelivery finishes too: a duplicate.
    assert_eq!(q.complete(&second, Ok(())), Outcome::Stale);
    let s = q.stats();
    assert_eq!((s.completed, s.duplicate_completions), (1, 1));
    assert!(q.is_empty());
}

#[test]
fn a_failure_on_a_lost_lease_does_not_count_twice() {
    let clock = ManualClock::new();
    let q = queue(&clock)
        .backoff(Backoff::Fixed(Duration::ZERO))
        .build()
        .unwrap();
    q.submit(Task::new("x")).unwrap();
    let first = q.lease().unwrap();
    clock.advance(11 * SEC);
    let second = q.lease().unwrap();
    assert_eq!(q.complete(&first, Err("late".into())), Outcome::Stale);
    assert_eq!(q.complete(&second, Ok(())), Outcome::Completed);
    assert_eq!(q.stats().failed_attempts, 1);
}

#[test]
fn recovery_from_the_store() {
    let clock = ManualClock::starting_at(100 * SEC);
    let store = MemoryStore::new();
    let (a, b, c) = {
        let q = queue(&clock)
            .store(store.clone())
            .max_attempts(1)
            .build()
            .unwrap();
        let a = q.submit(Task::new("a")).unwrap();
        let b = q.submit_after(Task::new("b"), 30 * SEC).unwrap();
        let c = q.submit(Task::new("c")).unwrap();
        let d = q.lease().unwrap();
        assert_eq!(d.id(), a);
        let d = q.lease().unwrap();
        assert_eq!(q.complete(&d, Err("x".into())), Outcome::Dead);
        q.submit(Task::new("d")).unwrap();
        let d = q.lease().unwrap();
        assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
        (a, b, c)
    };
    // A new process: its clock starts again from zero.
    let clock = ManualClock::new();
    let q = queue(&clock).store(store.clone()).build().unwrap();
    assert_eq!(q.stats().recovered_leases, 1);
    assert_eq!(
        q.dead_letters().iter().map(|d| d.id).collect::<Vec<_>>(),
        [c]
    );
    // a was leased when the process died: delivered again, attempt 2.
    let d = q.lease().unwrap();
    assert_eq!((d.id(), d.attempt()), (a, 2));
    assert!(q.lease().is_none());
    // b keeps its 30 s delay, measured from when it was written.
    clock.advance(30 * SEC);
    assert_eq!(q.lease().unwrap().id(), b);
    // Ids are never reused.
    assert!(q.submit(Task::new("e")).unwrap().0 > c.0 + 1);
}

#[test]
fn panicking_handler_fails_the_attempt_and_the_worker_survives() {
    let q = TaskQueue::builder()
        .backoff(Backoff::Fixed(Duration::ZERO))
        .max_attempts(2)
        .build()
        .unwrap();
    let pool = WorkerPool::start(&q, 1, |d: &Delivery| {
        if d.payload() == b"bad" {
            panic!("handler bug");
        }
        Ok(())
    })
    .unwrap();
    q.submit(Task::new("bad")).unwrap();
    q.submit(Task::new("good")).unwrap();
    let start = std::time::Instant::now();
    while q.stats().completed < 1 || q.dead_letters().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "{:?}", q.stats());
        std::thread::sleep(Duration::from_millis(1));
    }
    let dead = q.dead_letters();
    assert!(dead[0].error.contains("handler bug"), "{}", dead[0].error);
    assert_eq!(q.stats().failed_attempts, 2);
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!(report.stopped_workers, 1);
    assert_eq!(report.dead_letters, 1);
}

#[test]
fn shutdown_reports_what_is_left() {
    let q = TaskQueue::builder().build().unwrap();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let started_tx = std::sync::Mutex::new(started_tx);
    let pool = WorkerPool::start(&q, 1, move |d: &Delivery| {
        started_tx.lock().unwrap().send(d.id()).unwrap();
        let _ = release_rx.lock().unwrap().recv();
        Ok(())
    })
    .unwrap();
    let running = q.submit(Task::new("long")).unwrap();
    assert_eq!(started_rx.recv().unwrap(), running);
    q.submit(Task::new("waiting")).unwrap();
    let report = pool.shutdown(Duration::from_millis(50));
    assert_eq!(report.busy_workers, 1);
    assert_eq!(report.in_flight, [running]);
    assert_eq!(report.pending, 1);
    assert!(matches!(
        q.submit(Task::new("x")),
        Err(SubmitError::Closed(_))
    ));
    release_tx.send(()).unwrap();
}

/// Each pool has its own stop flag: shutting one pool down leaves another
/// pool on the same queue running (it drains the tasks that come due).
#[test]
fn two_pools_on_one_queue_stop_independently() {
    use std::sync::atomic::{AtomicUsize, Ordering as O};
    use std::sync::Arc as StdArc;
    let clock = ManualClock::new();
    let q = queue(&clock).build().unwrap();
    for i in 0..20 {
        q.submit_after(Task::new(format!("t{i}")), SEC).unwrap();
    }
    let counter = |c: &StdArc<AtomicUsize>| {
        let c = StdArc::clone(c);
        move |_: &Delivery| -> Result<(), TaskError> {
            c.fetch_add(1, O::Relaxed);
            Ok(())
        }
    };
    let (a, b) = (StdArc::default(), StdArc::default());
    let pool_a = WorkerPool::start(&q, 2, counter(&a)).unwrap();
    let pool_b = WorkerPool::start(&q, 2, counter(&b)).unwrap();
    let report = pool_a.shutdown(Duration::from_secs(5));
    assert_eq!(report.busy_workers, 0);
    assert_eq!(report.pending, 20);
    clock.advance(2 * SEC);
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while q.stats().completed < 20 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(q.stats().completed, 20, "pool B stopped with pool A");
    assert_eq!(a.load(O::Relaxed), 0);
    assert_eq!(b.load(O::Relaxed), 20);
    let report = pool_b.shutdown(Duration::from_secs(5));
    assert_eq!(report.stopped_workers, 2);
    assert_eq!(report.pending, 0);
}
