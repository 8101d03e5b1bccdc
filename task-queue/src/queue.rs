//! `BoundedQueue`: a bounded multi-producer multi-consumer queue.
//!
//! The ring is Dmitry Vyukov's bounded MPMC queue: every slot carries a
//! stamp (a sequence number) that says whether the slot is ready for the
//! producer or the consumer of a given lap, and producers and consumers
//! claim positions with a compare-and-swap on `tail` and `head`. Stamps are
//! "lap | index" so that any capacity, 1 included, works (a lap is a power
//! of two larger than the capacity). The highest lap bit of `tail` is the
//! "closed" mark, so closing and pushing are ordered by the same word.
//!
//! The value of a slot sits in an `UnsafeCell<MaybeUninit<T>>`: the stamp
//! protocol gives one thread at a time the slot. This is the crate's only
//! `unsafe`, and it pays: the safe version (a never-contended
//! `Mutex<Option<T>>` per slot) lengthened the window between claiming a
//! position and publishing its stamp by two atomic read-modify-writes,
//! which showed in the `transfer, 2 producer(s) / 2 consumer(s), capacity
//! 1024` case of `compare --only task-queue`. The cell holds a
//! `MaybeUninit<T>` rather than an `Option<T>`: the stamp already says
//! whether the slot is full, and a slot of a `u64` stays 16 bytes (four per
//! cache line) instead of 24 (asserted below `Slot`), which showed in the
//! same case. The items still queued when the last handle goes are dropped
//! by `Shared`'s `Drop`. loom checks the cell accesses for data races in the
//! models; `tests/model.rs` checks every result, the order and the drops
//! against a `VecDeque`.
//!
//! Blocking operations spin briefly, then park on a condition variable. A
//! parked consumer first announces itself (`pop_waiters`, a `SeqCst`
//! increment), issues a `SeqCst` fence and retries; a producer claims its
//! position with a `SeqCst` CAS on `tail`, stores the slot and reads
//! `pop_waiters` with a `SeqCst` load. In the single total order of `SeqCst`
//! operations either the consumer's fence comes before the CAS, and then the
//! producer's later load sees the waiter and notifies it under the lock the
//! consumer holds until it sleeps, or the CAS comes first and the consumer's
//! retry sees the claimed position (and waits for the stamp): no wake-up is
//! lost. Producers waiting for room work the same way with `head`.

use std::collections::VecDeque;
use std::fmt;
use std::mem::MaybeUninit;
use std::task::Waker;

use crate::error::{BuildError, PopError, PushError};
use crate::sync::{fence, thread, Arc, AtomicUsize, Condvar, Mutex, Ordering, UnsafeCell};

/// Keeps `head` and `tail` on separate cache lines.
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

struct Slot<T> {
    stamp: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

// A slot of a `u64` is 16 bytes, four per 64-byte cache line. An
// `Option<u64>` alone is 16 bytes, so an `Option` cell would make the slot
// 24. (loom's cells and atomics carry bookkeeping of their own, and 32-bit
// targets have smaller stamps.)
#[cfg(all(target_pointer_width = "64", not(sysblocks_loom)))]
const _: () = {
    assert!(std::mem::size_of::<Slot<u64>>() == 16);
    assert!(std::mem::size_of::<Option<u64>>() == 16);
};

struct Shared<T> {
    head: Padded<AtomicUsize>,
    tail: Padded<AtomicUsize>,
    slots: Box<[Slot<T>]>,
    cap: usize,
    /// `tail & mark_bit` means closed; indices live below it.
    mark_bit: usize,
    /// Adding `one_lap` to a stamp moves it to the same index one lap on.
    one_lap: usize,
    /// Consumers that may need a wake-up: blocked `pop`s plus registered
    /// async pops. Producers look at it (`SeqCst`) before taking the lock.
    pop_waiters: AtomicUsize,
    /// The same for producers waiting for room.
    push_waiters: AtomicUsize,
    /// Guards the condition variables and the async waiter lists.
    lock: Mutex<Waiters>,
    not_empty: Condvar,
    not_full: Condvar,
    /// Live handles that can push ([`BoundedQueue`]s and [`Sender`]s):
    /// when the last one goes, the queue closes, so consumers drain what
    /// is left and then see it closed instead of waiting forever.
    senders: AtomicUsize,
    /// Live handles that can pop ([`BoundedQueue`]s and [`Receiver`]s):
    /// when the last one goes, the queue closes, so pushes fail instead of
    /// filling a queue nobody reads.
    receivers: AtomicUsize,
}

// SAFETY: a slot's value is only touched by the one thread that won the CAS
// for its position (a producer between the CAS on `tail` and the release
// store of `stamp = tail + 1`; a consumer between its acquire load of that
// stamp, the CAS on `head`, and the release store of the next lap's stamp).
// The acquire/release pair on `stamp` orders the producer's write before the
// consumer's read, so no two threads access a value at once and values of
// type `T: Send` only move between threads, never get shared.
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for Shared<T> {}
// SAFETY: `Shared<T>` owns its values; sending it sends them (`T: Send`).
#[allow(unsafe_code)]
unsafe impl<T: Send> Send for Shared<T> {}

impl<T> Shared<T> {
    /// The position after `pos` (`index` is its slot): the next slot, or
    /// slot 0 of the next lap after the last one.
    #[inline]
    fn next_pos(&self, pos: usize, index: usize) -> usize {
        if index + 1 < self.cap {
            pos + 1
        } else {
            (pos & !(self.one_lap - 1)).wrapping_add(self.one_lap)
        }
    }
}

impl<T> Drop for Shared<T> {
    /// Drops the items still queued: positions `head..tail` hold initialised
    /// values (every pop and push has finished: this is the last handle).
    fn drop(&mut self) {
        if !std::mem::needs_drop::<T>() {
            return;
        }
        let mut pos = self.head.0.load(Ordering::Relaxed);
        let tail = self.tail.0.load(Ordering::Relaxed) & !self.mark_bit;
        while pos != tail {
            let index = pos & (self.mark_bit - 1);
            // SAFETY: with `&mut self` no other thread can touch the ring,
            // and the slot at a position between `head` and `tail` was
            // written by a push that completed and not read by any pop.
            #[allow(unsafe_code)]
            self.slots[index]
                .value
                .with_mut(|p| unsafe { (*p).assume_init_drop() });
            pos = self.next_pos(pos, index);
        }
    }
}

/// A bounded multi-producer multi-consumer FIFO queue with back pressure.
///
/// The handle is cheap to clone (one `Arc`); all clones share the queue.
/// A full queue refuses an item by handing it back ([`PushError::Full`]);
/// nothing is ever dropped silently. [`BoundedQueue::close`] stops pushes at
/// once and lets consumers drain what is left. A handle can push and pop;
/// [`BoundedQueue::channel`] and [`BoundedQueue::split`] give a
/// [`Sender`] and a [`Receiver`] instead, and the queue closes when the
/// last handle that can push (or the last that can pop) is dropped.
///
/// # Examples
///
/// ```
/// use sysblocks_task_queue::{BoundedQueue, PushError};
///
/// let q = BoundedQueue::new(1).unwrap();
/// q.try_push("a").unwrap();
/// assert_eq!(q.try_push("b"), Err(PushError::Full("b")));
/// assert_eq!(q.pop(), Some("a"));
/// q.close();
/// assert_eq!(q.pop(), None);
/// ```
pub struct BoundedQueue<T> {
    shared: Arc<Shared<T>>,
    /// What this handle counts as: [`SEND`], [`RECV`] or both. A
    /// [`BoundedQueue`] is both; [`Sender`] and [`Receiver`] wrap one that
    /// is one of them.
    role: u8,
}

impl<T> Clone for BoundedQueue<T> {
    fn clone(&self) -> Self {
        self.with_role(self.role)
    }
}

impl<T> fmt::Debug for BoundedQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedQueue")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The async waiters, under [`Shared::lock`]. Blocked threads wait on the
/// condition variables instead; both kinds count in the waiter counters.
#[derive(Default)]
struct Waiters {
    pop: WaitList,
    push: WaitList,
}

/// Registered async operations, oldest first. A wake-up removes the entry
/// it wakes, so a future whose entry is gone knows it was woken.
#[derive(Default)]
struct WaitList {
    /// The id of the next registration (read by the async futures only).
    #[cfg_attr(not(any(feature = "async", sysblocks_loom)), allow(dead_code))]
    next_id: u64,
    entries: VecDeque<(u64, Waker)>,
}

impl WaitList {
    /// Wakes (removes) the oldest entry, if any; the caller wakes the
    /// returned waker once the lock is released.
    fn pop_front(&mut self) -> Option<Waker> {
        self.entries.pop_front().map(|(_, w)| w)
    }
}

/// Retries that busy-spin (1, then 2 spin hints) before a waiting operation
/// starts yielding its time slice. Few on purpose: a position held by a
/// producer or consumer that was preempted, or a full (empty) queue whose
/// consumers (producers) are not running, is released only once that thread
/// runs again, so on a machine with more runnable threads than cores a
/// spinning thread only burns the slice the other one needs, and where
/// every thread has a core `sched_yield` returns at once and acts as a
/// longer spin. 2 spins then 20 yields did better than 6 spins then 10
/// yields in the `transfer, 2 producer(s) / 2 consumer(s), capacity 1024`
/// case of `compare --only task-queue` on 2 cores.
const SPINS: u32 = 2;
/// Retries before parking: spins, then yields. Under loom the blocking
/// operations skip them and park at once (the retry loops are compiled
/// out), so models explore the parking protocol rather than spin loops.
#[cfg(not(sysblocks_loom))]
const TRIES: u32 = SPINS + 20;

/// loom models `SeqCst` loads as mere acquire loads (its README says so), which
/// would report wake-ups as lost that the real memory model cannot lose;
/// under loom a `SeqCst` fence stands in front of them. Without loom it is
/// nothing: the `SeqCst` CAS on `tail` (or `head`) that published the item
/// precedes the `SeqCst` load of the waiter count in the single total order,
/// and the waiter's `SeqCst` increment and fence precede its look at `tail`.
#[inline]
fn seqcst_load_fence() {
    if cfg!(sysblocks_loom) {
        fence(Ordering::SeqCst);
    }
}

/// Waits a little between retries: busy spins first, then yields the CPU.
fn backoff(step: u32) {
    if step < SPINS {
        for _ in 0..(1u32 << step) {
            crate::sync::spin_loop();
        }
    } else {
        thread::yield_now();
    }
}

impl<T> BoundedQueue<T> {
    /// The largest capacity [`BoundedQueue::new`] accepts for items of type
    /// `T`: the stamps need two spare bits (at most `usize::MAX / 4`), and
    /// the slot array, allocated at once, must fit in `isize::MAX` bytes
    /// (a slot is a stamp and a `T`: 16 bytes for a `u64` on 64-bit
    /// targets).
    #[must_use]
    pub fn max_capacity() -> usize {
        let by_bytes = isize::MAX as usize / std::mem::size_of::<Slot<T>>();
        by_bytes.min(usize::MAX / 4)
    }

    /// A queue holding at most `capacity` items. The slot array
    /// (`capacity` slots of a stamp and a `T` each) is allocated and
    /// initialised here, once.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `capacity` is zero,
    /// [`BuildError::TooLarge`] if it exceeds
    /// [`BoundedQueue::max_capacity`], and [`BuildError::OutOfMemory`] if
    /// the slot array cannot be allocated.
    pub fn new(capacity: usize) -> Result<Self, BuildError> {
        if capacity == 0 {
            return Err(BuildError::Zero {
                setting: "capacity",
            });
        }
        let max = Self::max_capacity();
        if capacity > max {
            return Err(BuildError::TooLarge {
                setting: "capacity",
                max: max as u64,
            });
        }
        let mark_bit = (capacity + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let mut slots = Vec::new();
        if slots.try_reserve_exact(capacity).is_err() {
            return Err(BuildError::OutOfMemory {
                setting: "capacity",
                bytes: (capacity * std::mem::size_of::<Slot<T>>()) as u64,
            });
        }
        slots.extend((0..capacity).map(|i| Slot {
            stamp: AtomicUsize::new(i),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }));
        let slots = slots.into_boxed_slice();
        Ok(Self {
            shared: Arc::new(Shared {
                head: Padded(AtomicUsize::new(0)),
                tail: Padded(AtomicUsize::new(0)),
                slots,
                cap: capacity,
                mark_bit,
                one_lap,
                pop_waiters: AtomicUsize::new(0),
                push_waiters: AtomicUsize::new(0),
                lock: Mutex::new(Waiters::default()),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                senders: AtomicUsize::new(1),
                receivers: AtomicUsize::new(1),
            }),
            role: SEND | RECV,
        })
    }

    /// The most items the queue holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.cap
    }

    /// How many items the queue holds now (a snapshot: other threads may
    /// change it at once).
    #[must_use]
    pub fn len(&self) -> usize {
        let s = &*self.shared;
        loop {
            let tail = s.tail.0.load(Ordering::SeqCst);
            let head = s.head.0.load(Ordering::SeqCst);
            // A consistent pair: tail did not move while head was read.
            if s.tail.0.load(Ordering::SeqCst) == tail {
                let tail = tail & !s.mark_bit;
                let hix = head & (s.mark_bit - 1);
                let tix = tail & (s.mark_bit - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    s.cap - hix + tix
                } else if tail == head {
                    0
                } else {
                    s.cap
                };
            }
        }
    }

    /// Whether the queue holds no item now.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is closed: [`BoundedQueue::close`] was called, or
    /// the last handle that can push (or pop) was dropped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.tail.0.load(Ordering::SeqCst) & self.shared.mark_bit != 0
    }

    /// Closes the queue: pushes fail with [`PushError::Closed`] from now on,
    /// pops drain what is left and then report the queue closed. Every
    /// blocked producer and consumer wakes up. Returns `true` if this call
    /// closed the queue, `false` if it was already closed.
    pub fn close(&self) -> bool {
        let s = &*self.shared;
        let prev = s.tail.0.fetch_or(s.mark_bit, Ordering::SeqCst);
        let mut guard = s.lock.lock();
        s.not_empty.notify_all();
        s.not_full.notify_all();
        let pops = std::mem::take(&mut guard.pop.entries);
        let pushes = std::mem::take(&mut guard.push.entries);
        s.pop_waiters.fetch_sub(pops.len(), Ordering::Relaxed);
        s.push_waiters.fetch_sub(pushes.len(), Ordering::Relaxed);
        drop(guard);
        for (_, w) in pops.into_iter().chain(pushes) {
            w.wake();
        }
        prev & s.mark_bit == 0
    }

    /// Pushes `value` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if the queue is full and [`PushError::Closed`] if
    /// it is closed; both hand `value` back.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        match self.push_inner(value) {
            Ok(()) => {
                self.wake_consumer();
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The lock-free part of a push. Does not wake anyone.
    fn push_inner(&self, value: T) -> Result<(), PushError<T>> {
        let s = &*self.shared;
        let mut tail = s.tail.0.load(Ordering::Relaxed);
        let mut step = 0;
        loop {
            if tail & s.mark_bit != 0 {
                return Err(PushError::Closed(value));
            }
            let index = tail & (s.mark_bit - 1);
            let slot = &s.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == tail {
                let next = s.next_pos(tail, index);
                match s.tail.0.compare_exchange_weak(
                    tail,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for position `tail`, whose
                        // stamp said "free for this lap", makes this thread
                        // the only one touching the slot until it stores the
                        // new stamp below (see `Shared`'s `Sync`).
                        #[allow(unsafe_code)]
                        slot.value.with_mut(|p| unsafe { (*p).write(value) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        backoff(step.min(SPINS - 1));
                        step += 1;
                    }
                }
            } else if stamp.wrapping_add(s.one_lap) == tail + 1 {
                // The slot still holds last lap's item: full, unless a
                // consumer has moved head on since. Every change of `head`
                // is a `SeqCst` CAS, so a `SeqCst` load sees the latest one
                // before it in the single total order: what a `SeqCst` fence
                // and a relaxed load give, without the fence instruction
                // (on x86 a `SeqCst` load is a plain load).
                seqcst_load_fence();
                let head = s.head.0.load(Ordering::SeqCst);
                if head.wrapping_add(s.one_lap) == tail {
                    return Err(PushError::Full(value));
                }
                backoff(step.min(SPINS - 1));
                step += 1;
                tail = s.tail.0.load(Ordering::Relaxed);
            } else {
                // Another producer claimed this position and has not yet
                // stored the stamp, or our `tail` is stale. That producer
                // may have been preempted: yield after a few spins.
                backoff(step);
                step += 1;
                tail = s.tail.0.load(Ordering::Relaxed);
            }
        }
    }

    /// Pops the oldest item if there is one, without blocking.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if the queue is empty and open, and
    /// [`PopError::Closed`] if it is empty and closed.
    pub fn try_pop(&self) -> Result<T, PopError> {
        match self.pop_inner() {
            Ok(v) => {
                self.wake_producer();
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }

    /// The lock-free part of a pop. Does not wake anyone.
    fn pop_inner(&self) -> Result<T, PopError> {
        let s = &*self.shared;
        let mut head = s.head.0.load(Ordering::Relaxed);
        let mut step = 0;
        loop {
            let index = head & (s.mark_bit - 1);
            let slot = &s.slots[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if stamp == head + 1 {
                let next = s.next_pos(head, index);
                match s.head.0.compare_exchange_weak(
                    head,
                    next,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the acquire load saw the producer's stamp,
                        // so its write is visible, and winning the CAS for
                        // `head` makes this thread the only reader until the
                        // store of the next lap's stamp below.
                        // The stamp `head + 1` is stored only after the
                        // producer's `write`, so the value is initialised;
                        // reading it moves it out, and the next lap's stamp
                        // stored below marks the slot as empty again.
                        #[allow(unsafe_code)]
                        let value = slot.value.with_mut(|p| unsafe { (*p).assume_init_read() });
                        slot.stamp
                            .store(head.wrapping_add(s.one_lap), Ordering::Release);
                        return Ok(value);
                    }
                    Err(h) => {
                        head = h;
                        backoff(step.min(SPINS - 1));
                        step += 1;
                    }
                }
            } else if stamp == head {
                // Nothing stored here yet this lap: empty, unless a producer
                // has claimed the position and is still writing.
                // A `SeqCst` load, as for `head` in `push_inner` (`tail`
                // changes by `SeqCst` CASes and `close`'s `SeqCst` `fetch_or`).
                seqcst_load_fence();
                let tail = s.tail.0.load(Ordering::SeqCst);
                if tail & !s.mark_bit == head {
                    return Err(if tail & s.mark_bit != 0 {
                        PopError::Closed
                    } else {
                        PopError::Empty
                    });
                }
                backoff(step);
                step += 1;
                head = s.head.0.load(Ordering::Relaxed);
            } else {
                // A consumer of an earlier lap has not stored its stamp yet,
                // or our `head` is stale.
                backoff(step);
                step += 1;
                head = s.head.0.load(Ordering::Relaxed);
            }
        }
    }
}

mod blocking;

mod channel;
pub use channel::{Drain, IntoIter, Iter, Receiver, Sender};
use channel::{RECV, SEND};

#[cfg(any(feature = "async", sysblocks_loom))]
mod future;
#[cfg(feature = "async")]
mod stream;
#[cfg(any(feature = "async", sysblocks_loom))]
pub use future::{PopFuture, PushFuture};
#[cfg(feature = "async")]
pub use stream::{RecvStream, SendSink};

#[cfg(all(test, not(sysblocks_loom)))]
mod tests;
