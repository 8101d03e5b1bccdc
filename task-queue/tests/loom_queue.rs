//! loom models of `BoundedQueue` (blocking, timed and non-blocking
//! operations, `close`, and the drop of queued items with the last handle)
//! and of the lease/ack state machine. They run only under
//! `RUSTFLAGS="--cfg sysblocks_loom"`.
#![cfg(sysblocks_loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use sysblocks_task_queue::{
    Backoff, BoundedQueue, Delivery, ManualClock, Outcome, PopError, PushError, Task, TaskQueue,
};

use sysblocks_sync::model;

/// Two producers push one item each into a queue of capacity 1 with
/// blocking `push`; one consumer pops twice with blocking `pop`. Every item
/// arrives exactly once and nobody sleeps forever (loom reports a deadlock
/// if a wake-up is lost).
#[test]
fn loom_two_producers_one_consumer_capacity_1() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let producers: Vec<_> = (0..2u8)
            .map(|i| {
                let q = q.clone();
                thread::spawn(move || q.push(i).unwrap())
            })
            .collect();
        let mut got = [q.pop().unwrap(), q.pop().unwrap()];
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

/// Capacity 2, two producers with `try_push`, a consumer with `try_pop`
/// racing them: nothing is lost or duplicated, and the leftovers drain.
#[test]
fn loom_try_ops_capacity_2() {
    model(|| {
        let q = BoundedQueue::new(2).unwrap();
        let producers: Vec<_> = (0..2u8)
            .map(|i| {
                let q = q.clone();
                thread::spawn(move || {
                    let a = q.try_push(i * 2).is_ok();
                    let b = q.try_push(i * 2 + 1).is_ok();
                    u8::from(a) + u8::from(b)
                })
            })
            .collect();
        let mut got = Vec::new();
        if let Ok(v) = q.try_pop() {
            got.push(v);
        }
        let pushed: u8 = producers.into_iter().map(|p| p.join().unwrap()).sum();
        while let Ok(v) = q.try_pop() {
            got.push(v);
        }
        assert_eq!(got.len(), usize::from(pushed));
        let mut sorted = got.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "an item came out twice");
        // Per producer, FIFO order holds.
        for i in 0..2u8 {
            let mine: Vec<u8> = got.iter().copied().filter(|v| v / 2 == i).collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]));
        }
    });
}

/// `close` wakes a consumer blocked on an empty queue and a producer
/// blocked on a full one; both report the queue closed.
#[test]
fn loom_close_wakes_every_waiter() {
    model(|| {
        let empty = BoundedQueue::<u8>::new(1).unwrap();
        let full = BoundedQueue::new(1).unwrap();
        full.try_push(0u8).unwrap();
        let e2 = empty.clone();
        let consumer = thread::spawn(move || e2.pop());
        let f2 = full.clone();
        let producer = thread::spawn(move || f2.push(1));
        empty.close();
        full.close();
        assert_eq!(consumer.join().unwrap(), None);
        assert_eq!(producer.join().unwrap(), Err(PushError::Closed(1)));
        // What was in the closed queue still drains.
        assert_eq!(full.try_pop(), Ok(0));
        assert_eq!(full.try_pop(), Err(PopError::Closed));
    });
}

/// A push racing `close`: either the push fails with `Closed` or its item
/// is still delivered to the consumer; never accepted then lost.
#[test]
fn loom_push_racing_close_is_never_lost() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let q2 = q.clone();
        let producer = thread::spawn(move || q2.try_push(7u8).is_ok());
        let q3 = q.clone();
        let closer = thread::spawn(move || {
            q3.close();
        });
        closer.join().unwrap();
        let pushed = producer.join().unwrap();
        let popped = q.pop();
        assert_eq!(popped.is_some(), pushed);
        assert_eq!(q.pop(), None);
    });
}

/// The lease/ack race: a worker completes a delivery while another thread
/// finds its lease expired and takes a redelivery. Whatever the order, the
/// task completes exactly once in the counters, the redelivery is either
/// stale or the completion, and the queue ends empty.
#[test]
fn loom_ack_racing_lease_expiry() {
    model(|| {
        let clock = ManualClock::new();
        let q = TaskQueue::builder()
            .clock(clock.clone())
            .lease(Duration::from_secs(1))
            .backoff(Backoff::Fixed(Duration::ZERO))
            .seed(3)
            .build()
            .unwrap();
        q.submit(Task::new("x")).unwrap();
        let first = q.lease().unwrap();
        clock.advance(Duration::from_secs(2));
        let q2 = q.clone();
        let redeliverer = thread::spawn(move || {
            let d: Option<Delivery> = q2.lease();
            d.map(|d| q2.complete(&d, Ok(())))
        });
        let first_outcome = q.complete(&first, Ok(()));
        let second = redeliverer.join().unwrap();
        // Exactly one of the two completions completes the task; the other
        // (if the redelivery happened) is a counted duplicate.
        match second {
            None => assert_eq!(first_outcome, Outcome::Completed),
            Some(Outcome::Completed) => assert_eq!(first_outcome, Outcome::Stale),
            Some(Outcome::Stale) => assert_eq!(first_outcome, Outcome::Completed),
            other => panic!("{other:?}"),
        }
        let s = q.stats();
        assert_eq!(s.completed, 1);
        assert_eq!(s.duplicate_completions, u64::from(second.is_some()));
        assert!(q.is_empty());
        let _ = Arc::new(());
    });
}

/// loom models no time: a timed wait is a plain wait there, and a zero
/// timeout never waits. These two models take the zero timeout, which runs
/// the path where the deadline has passed (one last try after leaving the
/// waiter count) against a racing operation on the other end.
#[test]
fn loom_timed_pop_racing_push() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let q2 = q.clone();
        let producer = thread::spawn(move || q2.push_timeout(7u8, Duration::ZERO));
        let popped = q.pop_timeout(Duration::ZERO);
        // There was room all along: the push cannot fail.
        assert_eq!(producer.join().unwrap(), Ok(()));
        match popped {
            Ok(v) => {
                assert_eq!(v, 7);
                assert_eq!(q.try_pop(), Err(PopError::Empty));
            }
            // Timed out before the push: the item waits in the queue.
            Err(PopError::Empty) => assert_eq!(q.try_pop(), Ok(7)),
            Err(e) => panic!("{e:?}"),
        }
    });
}

/// A timed push into a full queue racing a timed pop: the push either
/// lands (and is popped later) or hands its item back; never both, never
/// neither.
#[test]
fn loom_timed_push_on_full_racing_pop() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        q.try_push(0u8).unwrap();
        let q2 = q.clone();
        let producer = thread::spawn(move || q2.push_timeout(1, Duration::ZERO));
        assert_eq!(q.pop_timeout(Duration::ZERO), Ok(0));
        match producer.join().unwrap() {
            Ok(()) => assert_eq!(q.try_pop(), Ok(1)),
            Err(PushError::Full(1)) => {}
            Err(e) => panic!("{e:?}"),
        }
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

/// Timed waits that must be woken (the deadline is an hour away, so in
/// loom they are plain waits): a producer waits for room in a full queue
/// while the consumer's second timed pop waits for its item. A lost
/// wake-up is a deadlock, which loom reports.
#[test]
fn loom_timed_waits_are_woken() {
    model(|| {
        let hour = Duration::from_secs(3600);
        let q = BoundedQueue::new(1).unwrap();
        q.try_push(0u8).unwrap();
        let q2 = q.clone();
        let producer = thread::spawn(move || q2.push_timeout(1, hour));
        assert_eq!(q.pop_timeout(hour), Ok(0));
        assert_eq!(q.pop_timeout(hour), Ok(1));
        assert_eq!(producer.join().unwrap(), Ok(()));
    });
}

/// Records each drop of an item as a bit; a second drop of the same item
/// fails the model.
struct Tracked(u8, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        let bit = 1 << self.0;
        let before = self.1.fetch_or(bit, Ordering::AcqRel);
        assert_eq!(before & bit, 0, "item {} dropped twice", self.0);
    }
}

/// The items still queued are dropped exactly once, by whichever handle
/// goes last, while another thread pops one of them and drops its handle.
#[test]
fn loom_drop_with_items_racing_pop() {
    model(|| {
        let dropped = Arc::new(AtomicUsize::new(0));
        let q = BoundedQueue::new(2).unwrap();
        for i in 0..2 {
            assert!(q.try_push(Tracked(i, Arc::clone(&dropped))).is_ok());
        }
        let q2 = q.clone();
        let consumer = thread::spawn(move || {
            let got = q2.try_pop().map(|t| t.0);
            drop(q2);
            got
        });
        drop(q);
        // The consumer's pop ran before the last handle could go.
        assert_eq!(consumer.join().unwrap(), Ok(0));
        assert_eq!(dropped.load(Ordering::Acquire), 0b11);
    });
}

/// Two senders each push one item and drop their handle; a receiver blocked
/// in `pop` gets both items and then `None`: the last sender's drop closes
/// the queue, and its wake-up reaches the parked consumer (loom reports a
/// deadlock if it does not).
#[test]
fn loom_last_sender_drop_closes_for_a_blocked_consumer() {
    model(|| {
        let (tx, rx) = BoundedQueue::channel(1).unwrap();
        let producers: Vec<_> = [tx.clone(), tx]
            .into_iter()
            .enumerate()
            .map(|(i, tx)| thread::spawn(move || tx.push(i as u8).unwrap()))
            .collect();
        let mut got = [rx.pop().unwrap(), rx.pop().unwrap()];
        assert_eq!(rx.pop(), None);
        for p in producers {
            p.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

/// A sender pushes and drops while the receiver iterates: the iterator
/// yields the item and ends, whichever runs first; a clone of the receiver
/// dropped meanwhile does not close the queue.
#[test]
fn loom_iterator_ends_after_the_last_sender_goes() {
    model(|| {
        let (tx, rx) = BoundedQueue::channel(1).unwrap();
        let rx2 = rx.clone();
        let p = thread::spawn(move || {
            tx.push(3u8).unwrap();
            drop(tx);
        });
        let d = thread::spawn(move || drop(rx2));
        let got: Vec<u8> = rx.iter().collect();
        assert_eq!(got, [3]);
        p.join().unwrap();
        d.join().unwrap();
    });
}
