//! Behaviour of the concurrency limiter's async waiters: FIFO grants, a
//! large head not overtaken, no barging past waiters, and cancellation
//! that never leaks a unit. The loom model of the handoff is
//! `loom_concurrency.rs`.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use sysblocks_rate_limiter::{CheckError, ConcurrencyLimiter};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    pin!(f).poll(&mut Context::from_waker(&waker))
}

#[test]
fn waiters_are_served_in_order_and_a_large_head_is_not_overtaken() {
    let c = Arc::new(ConcurrencyLimiter::new(3).unwrap());
    let held = c.try_acquire_n(3).unwrap().unwrap();
    let mut big = c.acquire_owned_n(2).unwrap();
    let mut small = c.acquire_owned();
    assert!(poll(&mut big).is_pending());
    assert!(poll(&mut small).is_pending());
    assert_eq!(c.waiting(), 2);
    // Nobody barges past the queue.
    assert!(c.try_acquire().is_none());
    drop(held);
    // 3 free: the head takes 2, the next 1.
    let Poll::Ready(b) = poll(&mut big) else {
        panic!("head granted")
    };
    let Poll::Ready(s) = poll(&mut small) else {
        panic!("second granted")
    };
    assert_eq!((b.units(), s.units(), c.in_flight()), (2, 1, 3));
    assert_eq!(c.waiting(), 0);

    // 1 free after dropping `s`, but the head wants 2: the 1-unit waiter
    // behind it waits too.
    let mut big2 = c.acquire_owned_n(2).unwrap();
    let mut one = c.acquire_owned();
    drop(s);
    assert!(poll(&mut big2).is_pending());
    assert!(poll(&mut one).is_pending());
    drop(b);
    assert!(poll(&mut big2).is_ready());
    assert!(poll(&mut one).is_ready());
    assert_eq!(c.in_flight(), 0);
    assert_eq!(
        c.acquire_owned_n(4).err(),
        Some(CheckError::CostExceedsLimit { cost: 4, limit: 3 })
    );
}

#[test]
fn dropped_waiters_leak_nothing() {
    let c = Arc::new(ConcurrencyLimiter::new(1).unwrap());
    let held = c.try_acquire().unwrap();
    // Queued, then dropped: leaves the queue.
    let mut a = c.acquire_owned();
    assert!(poll(&mut a).is_pending());
    drop(a);
    assert_eq!(c.waiting(), 0);
    // Granted but never polled again, then dropped: the unit comes back
    // and goes to the next waiter.
    let mut b = c.acquire_owned();
    let mut next = c.acquire_owned();
    assert!(poll(&mut b).is_pending());
    assert!(poll(&mut next).is_pending());
    drop(held);
    assert_eq!(c.in_flight(), 1);
    drop(b);
    let Poll::Ready(p) = poll(&mut next) else {
        panic!("the unit moved on")
    };
    drop(p);
    assert_eq!((c.in_flight(), c.waiting()), (0, 0));
    assert!(c.try_acquire().is_some());
    // Never polled: nothing to undo.
    drop(c.acquire_owned());
    assert_eq!(c.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_never_exceed_the_limit() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let c = Arc::new(ConcurrencyLimiter::new(3).unwrap());
    let now = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (c, now, peak) = (c.clone(), now.clone(), peak.clone());
            tokio::spawn(async move {
                for _ in 0..20 {
                    let _p = c.acquire_owned().await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    now.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 3);
    assert_eq!((c.in_flight(), c.waiting()), (0, 0));
}
