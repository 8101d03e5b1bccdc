//! loom models of the async loaders' waiter path (run with
//! `--cfg sysblocks_loom` and `--features async`; otherwise this file is
//! empty): a waiter parks on its waker, the leader's end wakes it, and a
//! cancelled leader does not strand it.
#![cfg(all(sysblocks_loom, feature = "async"))]

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::sync::atomic::AtomicUsize;
use loom::sync::atomic::Ordering::SeqCst;
use loom::sync::Arc;
use loom::thread;
use sysblocks_lru_ttl_cache::Cache;

/// Wakes a parked loom thread.
struct Unpark(thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future on this loom thread, parking while it is pending: a
/// waiter whose waker is never called deadlocks the model.
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(std::sync::Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

fn cache() -> Cache<u8, u8> {
    Cache::builder().max_capacity(2).shards(1).build().unwrap()
}

/// Two futures load one key: the loader runs once, both get its value,
/// and the waiter (whichever it is) is woken, never stranded.
#[test]
fn loom_two_futures_share_one_load() {
    sysblocks_sync::model(|| {
        let c = cache();
        let runs = Arc::new(AtomicUsize::new(0));
        let (c1, r1) = (c.clone(), Arc::clone(&runs));
        let t = thread::spawn(move || {
            block_on(c1.get_with(1, async move {
                r1.fetch_add(1, SeqCst);
                10
            }))
        });
        let r2 = Arc::clone(&runs);
        let v = block_on(c.get_with(1, async move {
            r2.fetch_add(1, SeqCst);
            10
        }));
        assert_eq!((v, t.join().unwrap()), (10, 10));
        assert_eq!(runs.load(SeqCst), 1);
        assert_eq!(c.get(&1), Some(10));
    });
}

/// Pending on its first poll (and never woken: it is dropped).
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = u8;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<u8> {
        if self.0 {
            Poll::Ready(1)
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// A leader polled once and then dropped (cancelled) while another future
/// waits: the waiter is woken and loads the key itself.
#[test]
fn loom_cancelled_leader_wakes_the_waiter() {
    sysblocks_sync::model(|| {
        let c = cache();
        let c1 = c.clone();
        let t = thread::spawn(move || {
            let mut lead = Box::pin(c1.get_with(1, PendingOnce(false)));
            let mut cx = Context::from_waker(Waker::noop());
            let first = lead.as_mut().poll(&mut cx);
            drop(lead);
            first
        });
        let v = block_on(c.get_with(1, async { 20 }));
        let first = t.join().unwrap();
        // The first future either found 20 (stored already) or led and
        // was cancelled; the second always ends with its own value.
        assert!(matches!(first, Poll::Pending | Poll::Ready(20)));
        assert_eq!(v, 20);
        assert_eq!(c.get(&1), Some(20));
    });
}
