//! Queue workloads for `task-queue` and its peers (crossbeam-channel,
//! flume, kanal), shared by `compare`: moving items from producer threads to
//! consumer threads through one bounded queue, and `try_push` on a full one.

use std::time::{Duration, Instant};

use task_queue::BoundedQueue;

/// The queues under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `task_queue::BoundedQueue`.
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
