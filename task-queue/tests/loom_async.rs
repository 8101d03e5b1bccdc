//! loom models of the async waiter registration of `BoundedQueue`
//! (`push_async` / `pop_async`, compiled under the loom cfg whatever the
//! features): no lost wake-up between async and blocking waiters, and a
//! woken-then-dropped future passes its wake-up on. They run only under
//! `RUSTFLAGS="--cfg sysblocks_loom"`; loom reports a deadlock when a
//! waiter sleeps forever.
#![cfg(sysblocks_loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::thread;
use sysblocks_task_queue::BoundedQueue;

use sysblocks_sync::model;

/// A blocking producer pushes two items through a queue of capacity 1; an
/// async consumer pops both.
#[test]
fn loom_blocking_push_async_pop() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(1u8).unwrap();
                q.push(2).unwrap();
            })
        };
        assert_eq!(block_on(q.pop_async()), Some(1));
        assert_eq!(block_on(q.pop_async()), Some(2));
        p.join().unwrap();
    });
}

/// An async producer pushes two items through a queue of capacity 1; a
/// blocking consumer pops both.
#[test]
fn loom_async_push_blocking_pop() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let c = {
            let q = q.clone();
            thread::spawn(move || [q.pop(), q.pop()])
        };
        block_on(q.push_async(1u8)).unwrap();
        block_on(q.push_async(2)).unwrap();
        assert_eq!(c.join().unwrap(), [Some(1), Some(2)]);
    });
}

/// Two async pops wait; one is polled once and then dropped (cancelled),
/// possibly after the push woke it. The other still gets the item, and the
/// dropped one took nothing.
#[test]
fn loom_cancelled_pop_passes_the_wakeup_on() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        let other = {
            let q = q.clone();
            thread::spawn(move || block_on(q.pop_async()))
        };
        let producer = {
            let q = q.clone();
            thread::spawn(move || q.push(7u8).unwrap())
        };
        let got = {
            let mut f = pin!(q.pop_async());
            match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(v) => v,
                Poll::Pending => None,
            }
            // dropped here, maybe after being woken
        };
        producer.join().unwrap();
        if got.is_some() {
            q.close();
            assert_eq!(other.join().unwrap(), None);
        } else {
            assert_eq!(other.join().unwrap(), Some(7));
        }
    });
}

/// A push into a full queue is polled once and dropped (cancelled) while a
/// consumer makes room and another async push waits. The cancelled item is
/// never delivered and the waiting push gets in.
#[test]
fn loom_cancelled_push_never_delivers() {
    model(|| {
        let q = BoundedQueue::new(1).unwrap();
        q.try_push(0u8).unwrap();
        let other = {
            let q = q.clone();
            thread::spawn(move || block_on(q.push_async(2)).unwrap())
        };
        let consumer = {
            let q = q.clone();
            thread::spawn(move || q.pop())
        };
        let went_in = {
            let mut f = pin!(q.push_async(1));
            matches!(
                f.as_mut().poll(&mut Context::from_waker(Waker::noop())),
                Poll::Ready(Ok(()))
            )
        };
        assert_eq!(consumer.join().unwrap(), Some(0));
        if went_in {
            // Item 1 went in during its only poll: it is there, and item 2
            // follows once it is taken.
            assert_eq!(q.pop(), Some(1));
        }
        other.join().unwrap();
        assert_eq!(q.try_pop(), Ok(2));
        assert!(q.try_pop().is_err());
    });
}

/// `close` wakes an async pop waiting on an empty queue.
#[test]
fn loom_close_wakes_async_pop() {
    model(|| {
        let q = BoundedQueue::<u8>::new(1).unwrap();
        let c = {
            let q = q.clone();
            thread::spawn(move || block_on(q.pop_async()))
        };
        q.close();
        assert_eq!(c.join().unwrap(), None);
    });
}

/// An async consumer waiting on an empty queue is woken when the last
/// sender is dropped on another thread, and sees the queue closed.
#[test]
fn loom_last_sender_drop_wakes_an_async_pop() {
    model(|| {
        let (tx, rx) = BoundedQueue::<u8>::channel(1).unwrap();
        let p = thread::spawn(move || drop(tx));
        assert_eq!(block_on(rx.pop_async()), None);
        p.join().unwrap();
    });
}
