//! loom models of the concurrency limiter's waiter handoff: a release
//! racing a waiter's queueing never loses the wake-up, and a waiter
//! dropped while a release races it never leaks the unit. Run with
//! `--cfg sysblocks_loom`.
#![cfg(sysblocks_loom)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Wake, Waker};

use loom::thread;
use sysblocks_rate_limiter::ConcurrencyLimiter;

struct Noop;
impl Wake for Noop {
    fn wake(self: StdArc<Self>) {}
}

/// One unit held by a thread that drops it while the main thread waits:
/// the wait always ends (loom reports a lost wake-up as a deadlock).
#[test]
fn loom_release_wakes_the_waiter() {
    sysblocks_sync::model(|| {
        let c = StdArc::new(ConcurrencyLimiter::new(1).unwrap());
        let held = loom::future::block_on(c.acquire_owned());
        let t = thread::spawn(move || drop(held));
        let p = loom::future::block_on(c.acquire_owned());
        t.join().unwrap();
        assert_eq!(c.in_flight(), 1);
        drop(p);
        assert_eq!(c.in_flight(), 0);
    });
}

/// A waiter polled once and then dropped while another thread releases
/// the unit: the unit is free afterwards in every interleaving.
#[test]
fn loom_cancelled_waiter_leaks_nothing() {
    sysblocks_sync::model(|| {
        let c = StdArc::new(ConcurrencyLimiter::new(1).unwrap());
        let held = loom::future::block_on(c.acquire_owned());
        let t = thread::spawn(move || drop(held));
        {
            let waker = Waker::from(StdArc::new(Noop));
            let mut f = pin!(c.acquire_owned());
            let _ = f.as_mut().poll(&mut Context::from_waker(&waker));
        }
        t.join().unwrap();
        assert_eq!((c.in_flight(), c.waiting()), (0, 0));
        assert!(c.try_acquire().is_some());
    });
}
