//! A shard's read buffer: the hits that W-TinyLFU has yet to see.
//!
//! Caffeine's design ("Design of a Modern Cache", its `BoundedBuffer`):
//! a hit takes only the shard's read lock and records the entry in a
//! small fixed ring; whoever next holds the write lock replays the ring
//! into the policy, oldest first. A reader that fills the ring tries the
//! write lock to drain it, and every write drains it before it changes
//! the shard, so the policy sees a hit before any eviction that follows
//! it. The buffer is lossy, as Caffeine's is: a hit that finds the ring
//! full (its drain lost the race for the write lock) or whose ticket a
//! drain has already passed is not replayed. The policy then counts one
//! use fewer, which only matters under contention; the hit statistics do
//! not depend on the buffer.
//!
//! A record is the key's hash, not the entry's slot: the slab moves an
//! entry when another is removed, so a replay finds each entry again by
//! its hash and skips the ones that have gone. 0 marks an empty slot.
//!
//! Layout: `tail` is a ticket counter that every hit increments (so it is
//! also the exact count of read-path hits) and `head` the first ticket the
//! next drain replays; only a drain, under the write lock, moves `head`.
//! Ticket `t` may write slot `t % SLOTS` only while `head <= t < head +
//! SLOTS`, so the tickets that write are never more than `SLOTS` apart and
//! two of them never share a slot between drains.

use crate::sync::{AtomicU64, Ordering};

/// Records per ring; a drain replays at most this many. Small enough that a
/// drain is short, large enough that the write lock is taken once per
/// `SLOTS` hits. Under loom, 2, so that a model of a few hits fills it.
#[cfg(not(sysblocks_loom))]
pub(crate) const SLOTS: usize = 16;
#[cfg(sysblocks_loom)]
pub(crate) const SLOTS: usize = 2;

/// A shard's ring of recorded hits.
pub(crate) struct ReadBuffer {
    /// The next ticket: hits counted since the shard was built.
    tail: AtomicU64,
    /// The first ticket the next drain replays (written only by drains).
    head: AtomicU64,
    slots: [AtomicU64; SLOTS],
}

impl ReadBuffer {
    pub(crate) fn new() -> Self {
        Self {
            tail: AtomicU64::new(0),
            head: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts a hit and keeps its record (nonzero) if the ring has room.
    /// Returns whether the ring is full, so that the caller should try to
    /// drain it.
    #[inline]
    pub(crate) fn record(&self, record: u64) -> bool {
        debug_assert_ne!(record, 0, "0 marks an empty slot");
        // Relaxed: the ticket orders nothing; the slot carries the record.
        let t = self.tail.fetch_add(1, Ordering::Relaxed);
        // Acquire: the drain that moved `head` here emptied the slots below
        // it first, so the store below comes after that emptying.
        let head = self.head.load(Ordering::Acquire);
        let used = t.wrapping_sub(head);
        if used >= SLOTS as u64 {
            // Full: dropped. `used` wraps when a drain has passed this
            // ticket already (`t < head`): dropped too, and no drain due.
            return t >= head;
        }
        // Release: a drain that takes the record sees it whole.
        self.slots[t as usize % SLOTS].store(record, Ordering::Release);
        used + 1 == SLOTS as u64
    }

    /// Hits counted by [`record`](Self::record), recorded or not.
    pub(crate) fn hits(&self) -> u64 {
        self.tail.load(Ordering::Relaxed)
    }

    /// Whether a drain has something to replay (or a ticket to pass).
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        self.tail.load(Ordering::Relaxed) != self.head.load(Ordering::Relaxed)
    }

    /// Moves the records, oldest first, into `out` and empties the
    /// ring; returns how many it moved. The caller holds the shard's write
    /// lock, so there is one drain at a time. A ticket taken but not yet
    /// written is passed over: its record is lost, or taken by a later
    /// drain if its slot is not overwritten first.
    pub(crate) fn drain_into(&self, out: &mut [u64; SLOTS]) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let end = tail.min(head.wrapping_add(SLOTS as u64));
        let mut n = 0;
        let mut t = head;
        while t < end {
            // Acquire: pairs with the Release store of the record.
            let h = self.slots[t as usize % SLOTS].swap(0, Ordering::Acquire);
            if h != 0 {
                out[n] = h;
                n += 1;
            }
            t += 1;
        }
        // Release: a reader that sees this head sees the slots emptied.
        self.head.store(tail, Ordering::Release);
        n
    }

    /// [`drain_into`](Self::drain_into), one record at a time.
    #[cfg(test)]
    pub(crate) fn drain(&self, mut apply: impl FnMut(u64)) -> usize {
        let mut out = [0; SLOTS];
        let n = self.drain_into(&mut out);
        out[..n].iter().for_each(|&h| apply(h));
        n
    }
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests {
    use super::*;

    #[test]
    fn records_in_order_and_drops_when_full() {
        let b = ReadBuffer::new();
        for h in 1..SLOTS as u64 {
            assert!(!b.record(h));
        }
        assert!(b.record(SLOTS as u64), "the last slot fills the ring");
        assert!(b.record(99), "full: dropped, and a drain is due");
        let mut seen = Vec::new();
        assert_eq!(b.drain(|h| seen.push(h)), SLOTS);
        assert_eq!(seen, (1..=SLOTS as u64).collect::<Vec<_>>());
        assert_eq!(b.hits(), SLOTS as u64 + 1, "every hit counts");
        assert!(!b.is_pending());
        assert_eq!(b.drain(|_| unreachable!()), 0);
    }

    #[test]
    fn drains_wrap_around_the_ring() {
        let b = ReadBuffer::new();
        let mut next = 1u64;
        let mut seen = Vec::new();
        for round in 0..10 {
            for _ in 0..(round % SLOTS) + 1 {
                b.record(next);
                next += 1;
            }
            b.drain(|h| seen.push(h));
        }
        assert_eq!(seen, (1..next).collect::<Vec<_>>());
    }
}

/// loom models of the ring alone (run with `--cfg sysblocks_loom`); the
/// models through `Cache` are in `tests/loom_read_path.rs`. A drain runs
/// under the shard's write lock, so a model has one draining thread.
#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{thread, Arc};

    /// Two readers record two hits each into a ring of two: every hit is
    /// counted, exactly two are kept (the ring never holds more), each
    /// once, and the ring works again after the drain.
    #[test]
    fn loom_full_ring_keeps_its_capacity() {
        sysblocks_sync::model(|| {
            let b = Arc::new(ReadBuffer::new());
            let b1 = Arc::clone(&b);
            let t = thread::spawn(move || [b1.record(1), b1.record(2)]);
            let mine = [b.record(3), b.record(4)];
            let theirs = t.join().unwrap();
            assert!(mine.iter().chain(&theirs).any(|&full| full));
            assert_eq!(b.hits(), 4);
            let mut seen = Vec::new();
            assert_eq!(b.drain(|h| seen.push(h)), SLOTS);
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), SLOTS);
            assert!(seen.iter().all(|h| (1..=4).contains(h)));
            assert!(!b.record(9));
            b.drain(|h| assert_eq!(h, 9));
        });
    }

    /// Readers record while a drain runs: nothing is replayed twice or
    /// invented, a drain replays at most the ring's size, every hit is
    /// counted, and a record after the last drain is replayed.
    #[test]
    fn loom_drain_races_with_records() {
        sysblocks_sync::model(|| {
            let b = Arc::new(ReadBuffer::new());
            let (b1, b2) = (Arc::clone(&b), Arc::clone(&b));
            let t1 = thread::spawn(move || {
                b1.record(1);
                b1.record(2);
            });
            let t2 = thread::spawn(move || b2.record(3));
            let mut seen = Vec::new();
            assert!(b.drain(|h| seen.push(h)) <= SLOTS);
            t1.join().unwrap();
            t2.join().unwrap();
            assert!(b.drain(|h| seen.push(h)) <= SLOTS);
            assert_eq!(b.hits(), 3);
            let n = seen.len();
            seen.sort_unstable();
            seen.dedup();
            assert_eq!(seen.len(), n, "a record replayed twice");
            assert!(seen.iter().all(|h| (1..=3).contains(h)));
            b.record(9);
            let mut last = Vec::new();
            b.drain(|h| last.push(h));
            assert!(last.contains(&9));
        });
    }
}
