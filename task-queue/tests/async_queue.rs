//! `BoundedQueue::push_async` / `pop_async` (feature `async`): delivery
//! exactly once across async and blocking producers and consumers, and
//! cancel safety (cancelled pushes never deliver, cancelled pops never lose
//! an item or a wake-up).
#![cfg(all(feature = "async", not(sysblocks_loom)))]

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use sysblocks_task_queue::{BoundedQueue, PushError};
use tokio::time::timeout;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<CountingWaker>, Waker) {
    let c = Arc::new(CountingWaker::default());
    (Arc::clone(&c), Waker::from(c))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Every item from 3 async producers reaches one of 3 async consumers
/// exactly once through a queue of capacity 2.
#[test]
fn async_producers_and_consumers_deliver_exactly_once() {
    runtime().block_on(async {
        let q = BoundedQueue::new(2).unwrap();
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for i in 0..3000u64 {
                        q.push_async(p * 1_000_000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Some(v) = q.pop_async().await {
                        got.push(v);
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            p.await.unwrap();
        }
        q.close();
        let mut all = Vec::new();
        for c in consumers {
            all.extend(c.await.unwrap());
        }
        all.sort_unstable();
        let want: Vec<u64> = (0..3u64)
            .flat_map(|p| (0..3000).map(move |i| p * 1_000_000 + i))
            .collect();
        assert_eq!(all, want);
    });
}

/// Blocking producers feed async consumers and async producers feed
/// blocking consumers over one small queue; nothing is lost or doubled and
/// nobody sleeps forever (a lost wake-up between the two kinds of waiter
/// would hang the test until the timeout fails it).
#[test]
fn blocking_and_async_waiters_mix_without_lost_wakeups() {
    let rt = runtime();
    let q = BoundedQueue::new(1).unwrap();
    let n = 4000u64;
    // Blocking producers (threads), async producers (tasks).
    let threads: Vec<_> = (0..2u64)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    q.push(p * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (2..4u64)
        .map(|p| {
            let q = q.clone();
            rt.spawn(async move {
                for i in 0..n {
                    q.push_async(p * 1_000_000 + i).await.unwrap();
                }
            })
        })
        .collect();
    // Blocking consumer (thread) and async consumers (tasks).
    let blocking_consumer = {
        let q = q.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(v) = q.pop() {
                got.push(v);
            }
            got
        })
    };
    let async_consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            rt.spawn(async move {
                let mut got = Vec::new();
                while let Some(v) = q.pop_async().await {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    rt.block_on(async {
        for t in tasks {
            timeout(Duration::from_secs(60), t)
                .await
                .expect("async producer hung")
                .unwrap();
        }
    });
    q.close();
    let mut all = blocking_consumer.join().unwrap();
    rt.block_on(async {
        for c in async_consumers {
            all.extend(
                timeout(Duration::from_secs(60), c)
                    .await
                    .expect("async consumer hung")
                    .unwrap(),
            );
        }
    });
    all.sort_unstable();
    let want: Vec<u64> = (0..4u64)
        .flat_map(|p| (0..n).map(move |i| p * 1_000_000 + i))
        .collect();
    assert_eq!(all, want);
}

/// An item that counts its drops.
struct Tracked(u32, Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// A push cancelled by a timeout never delivers its item, and the item is
/// dropped with the future (not leaked, not queued later when room comes).
#[test]
fn cancelled_push_never_delivers_and_drops_its_item() {
    runtime().block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let q = BoundedQueue::new(1).unwrap();
        q.push_async(Tracked(1, Arc::clone(&drops))).await.unwrap();
        let r = timeout(
            Duration::from_millis(20),
            q.push_async(Tracked(2, Arc::clone(&drops))),
        )
        .await;
        assert!(r.is_err(), "the push should have waited for room");
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "item 2 dropped with its future"
        );
        // Room appears after the cancellation: item 2 must not show up.
        assert_eq!(q.pop_async().await.map(|t| t.0), Some(1));
        q.close();
        assert!(q.pop_async().await.is_none());
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

/// A push woken for room and then dropped hands the wake-up to the next
/// waiting push, which then gets in (polled by hand, no runtime).
#[test]
fn a_dropped_woken_push_passes_the_wakeup_on() {
    let q = BoundedQueue::new(1).unwrap();
    q.try_push(0u8).unwrap();
    let (c1, w1) = counting();
    let (c2, w2) = counting();
    let mut f1 = Box::pin(q.push_async(1));
    let mut f2 = Box::pin(q.push_async(2));
    assert!(f1.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
    assert!(f2.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
    assert_eq!(q.try_pop(), Ok(0));
    assert_eq!(c1.0.load(Ordering::SeqCst), 1, "the oldest push is woken");
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    drop(f1);
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "the wake-up moved on");
    assert!(matches!(
        f2.as_mut().poll(&mut Context::from_waker(&w2)),
        Poll::Ready(Ok(()))
    ));
    assert_eq!(q.try_pop(), Ok(2));
    assert!(q.is_empty());
}

/// A pop woken for an item and then dropped hands the wake-up to the next
/// waiting pop, which then takes the item (polled by hand, no runtime).
#[test]
fn a_dropped_woken_pop_passes_the_wakeup_on() {
    let q = BoundedQueue::new(2).unwrap();
    let (c1, w1) = counting();
    let (c2, w2) = counting();
    let mut f1 = Box::pin(q.pop_async());
    let mut f2 = Box::pin(q.pop_async());
    assert!(f1.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
    assert!(f2.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
    q.try_push(7u8).unwrap();
    assert_eq!(c1.0.load(Ordering::SeqCst), 1, "the oldest pop is woken");
    assert_eq!(c2.0.load(Ordering::SeqCst), 0);
    assert_eq!(q.len(), 1, "waking takes nothing");
    drop(f1);
    assert_eq!(q.len(), 1, "dropping takes nothing");
    assert_eq!(c2.0.load(Ordering::SeqCst), 1, "the wake-up moved on");
    assert_eq!(
        f2.as_mut().poll(&mut Context::from_waker(&w2)),
        Poll::Ready(Some(7))
    );
    // Dropping an unwoken registered pop just leaves the list.
    let mut f3 = Box::pin(q.pop_async());
    assert!(f3.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
    drop(f3);
    q.try_push(8).unwrap();
    assert_eq!(c1.0.load(Ordering::SeqCst), 1, "nobody left to wake");
    assert_eq!(q.try_pop(), Ok(8));
}

/// Runs `f` until it has been pending once and the task is polled again
/// (`yield_now` is ready on its second poll); `None` means `f` was dropped
/// unfinished. `select!` picks the branch order at random, so a future that
/// was just woken is often dropped before it is polled: the case where a
/// wake-up must be passed on.
async fn briefly<F: Future>(f: F) -> Option<F::Output> {
    tokio::select! {
        v = f => Some(v),
        () = tokio::task::yield_now() => None,
    }
}

/// Stress: every push and every pop races a `yield_now` (see [`briefly`]),
/// so many are cancelled, some right after being woken; producers retry
/// what was cancelled. Every item arrives exactly once: cancelled pops lose
/// nothing, cancelled pushes deliver nothing, and the run finishes (no
/// stranded wake-up).
#[test]
fn cancellation_storm_loses_and_duplicates_nothing() {
    runtime().block_on(async {
        let q = BoundedQueue::new(2).unwrap();
        let n = 5000u64;
        let cancelled_pushes = Arc::new(AtomicUsize::new(0));
        let cancelled_pops = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                let cancelled = Arc::clone(&cancelled_pushes);
                tokio::spawn(async move {
                    for i in 0..n {
                        let v = p * 1_000_000 + i;
                        while briefly(q.push_async(v)).await.is_none() {
                            cancelled.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                let cancelled = Arc::clone(&cancelled_pops);
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    loop {
                        match briefly(q.pop_async()).await {
                            Some(Some(v)) => got.push(v),
                            Some(None) => break,
                            None => {
                                cancelled.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        for p in producers {
            timeout(Duration::from_secs(120), p)
                .await
                .expect("producer hung")
                .unwrap();
        }
        q.close();
        let mut all = Vec::new();
        for c in consumers {
            all.extend(
                timeout(Duration::from_secs(60), c)
                    .await
                    .expect("consumer hung")
                    .unwrap(),
            );
        }
        let total = all.len();
        let set: BTreeSet<u64> = all.into_iter().collect();
        assert_eq!(total, set.len(), "an item was delivered twice");
        let want: BTreeSet<u64> = (0..2u64)
            .flat_map(|p| (0..n).map(move |i| p * 1_000_000 + i))
            .collect();
        assert_eq!(set, want);
        let (pushes, pops) = (
            cancelled_pushes.load(Ordering::Relaxed),
            cancelled_pops.load(Ordering::Relaxed),
        );
        println!("cancelled pushes: {pushes}, cancelled pops: {pops}");
        assert!(pushes + pops > 0, "the storm cancelled nothing");
    });
}

/// A cancelled blocking-style wait on a runtime: `select!` against a timer
/// drops pops that wait on an empty queue; an item pushed afterwards goes
/// to the one pop still waiting.
#[test]
fn pops_cancelled_by_a_timer_leave_the_item_for_the_next() {
    runtime().block_on(async {
        let q = BoundedQueue::new(1).unwrap();
        for _ in 0..3 {
            tokio::select! {
                _ = q.pop_async() => panic!("nothing was pushed"),
                () = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move { q.pop_async().await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        q.push_async(42u32).await.unwrap();
        let got = timeout(Duration::from_secs(10), waiter).await;
        assert_eq!(got.expect("wake-up lost").unwrap(), Some(42));
    });
}

/// `close` wakes async pops and pushes; they resolve to `None` and
/// `Closed` (with the item).
#[test]
fn close_wakes_async_waiters() {
    let rt = runtime();
    let empty = BoundedQueue::<u8>::new(1).unwrap();
    let full = BoundedQueue::new(1).unwrap();
    full.try_push(0u8).unwrap();
    let pop = {
        let q = empty.clone();
        rt.spawn(async move { q.pop_async().await })
    };
    let push = {
        let q = full.clone();
        rt.spawn(async move { q.push_async(9).await })
    };
    std::thread::sleep(Duration::from_millis(20));
    empty.close();
    full.close();
    rt.block_on(async {
        let popped = timeout(Duration::from_secs(10), pop).await;
        assert_eq!(popped.expect("pop not woken by close").unwrap(), None);
        let pushed = timeout(Duration::from_secs(10), push).await;
        assert_eq!(
            pushed.expect("push not woken by close").unwrap(),
            Err(PushError::Closed(9))
        );
    });
}

/// The futures are plain `Future`s: a hand-rolled poll loop drives them.
#[test]
fn futures_need_no_particular_runtime() {
    let q = BoundedQueue::new(1).unwrap();
    let (_, w) = counting();
    let mut cx = Context::from_waker(&w);
    let mut push = pin!(q.push_async(5u8));
    assert_eq!(push.as_mut().poll(&mut cx), Poll::Ready(Ok(())));
    let mut pop = pin!(q.pop_async());
    assert_eq!(pop.as_mut().poll(&mut cx), Poll::Ready(Some(5)));
}

/// The `Stream` adapter yields every item and ends when the last sender is
/// gone; the `Sink` adapter waits for room, and its `close` drops the
/// sender, which ends the stream.
#[test]
fn stream_and_sink_adapters_carry_everything_and_end() {
    use futures_core::Stream;
    use futures_sink::Sink;
    use std::pin::Pin;

    runtime().block_on(async {
        let (tx, rx) = BoundedQueue::channel(2).unwrap();
        let consumer = tokio::spawn(async move {
            let mut stream = rx.into_stream();
            let mut got = Vec::new();
            while let Some(v) = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await
            {
                got.push(v);
            }
            got
        });
        let mut sink = tx.into_sink();
        for i in 0..50u32 {
            std::future::poll_fn(|cx| Pin::new(&mut sink).poll_ready(cx))
                .await
                .unwrap();
            Pin::new(&mut sink).start_send(i).unwrap();
        }
        std::future::poll_fn(|cx| Pin::new(&mut sink).poll_close(cx))
            .await
            .unwrap();
        // After close the sink hands items back.
        match Pin::new(&mut sink).start_send(99) {
            Err(PushError::Closed(99)) => {}
            other => panic!("expected Closed(99), got {other:?}"),
        }
        assert_eq!(consumer.await.unwrap(), (0..50).collect::<Vec<_>>());
    });
}

/// A sink whose receivers are gone reports the item it could not push.
#[test]
fn a_sink_without_receivers_hands_the_item_back() {
    use futures_sink::Sink;
    use std::pin::Pin;

    runtime().block_on(async {
        let (tx, rx) = BoundedQueue::channel(1).unwrap();
        let mut sink = tx.into_sink();
        drop(rx);
        std::future::poll_fn(|cx| Pin::new(&mut sink).poll_ready(cx))
            .await
            .unwrap();
        Pin::new(&mut sink).start_send(5u8).unwrap();
        let flushed = std::future::poll_fn(|cx| Pin::new(&mut sink).poll_flush(cx)).await;
        assert!(matches!(flushed, Err(PushError::Closed(5))));
    });
}
