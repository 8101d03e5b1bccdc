//! Expiry of an [`LruCache`](crate::LruCache) (one shard of a
//! [`Cache`](crate::Cache)): deadlines from the time to live and the time
//! to idle, and the order in which they fall due.
//!
//! Deadlines live in vectors parallel to the cache's slab, one per slot
//! (the time-to-idle one only with a TTI). Every entry with a deadline has
//! an entry in a min-heap of `(deadline, slot)`. Heap entries are never
//! updated in place: a heap entry is acted on only if its slot still holds
//! an entry whose current deadline has passed; if the slot's deadline moved
//! later (time to idle), it is pushed again. The invariant "every live
//! entry has a heap entry no later than its deadline" makes purging exact,
//! and the heap is rebuilt from the slots when stale entries outnumber live
//! ones, so it stays bounded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use sysblocks_clock::SharedClock;

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// Expiry state: present only when a TTL or TTI is configured or a per-entry
/// TTL was used.
pub(crate) struct Expiry {
    clock: SharedClock,
    /// Default time to live, nanoseconds.
    ttl: Option<u64>,
    /// Time to idle, nanoseconds.
    tti: Option<u64>,
    /// Per slot: absolute deadline from the time to live (`NEVER` if none).
    ttl_at: Vec<u64>,
    /// Per slot: absolute deadline from the time to idle (empty without TTI).
    idle_at: Vec<u64>,
    /// `(deadline, slot)`, lazily maintained (see the module docs).
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// The latest time seen: a clock that steps back means no time passed.
    last_now: u64,
}

impl Expiry {
    /// Expiry for `slots` slots that have no deadline yet.
    pub(crate) fn new(
        clock: SharedClock,
        ttl: Option<u64>,
        tti: Option<u64>,
        slots: usize,
    ) -> Self {
        Self {
            clock,
            ttl,
            tti,
            ttl_at: vec![NEVER; slots],
            idle_at: if tti.is_some() {
                vec![NEVER; slots]
            } else {
                Vec::new()
            },
            heap: BinaryHeap::new(),
            last_now: 0,
        }
    }

    /// The default time to live, nanoseconds.
    #[inline]
    pub(crate) fn ttl(&self) -> Option<u64> {
        self.ttl
    }

    /// The current time, never `NEVER` (so a saturated deadline is never
    /// reached, even by a saturated clock).
    #[inline]
    pub(crate) fn now(&mut self) -> u64 {
        let n = self.clock.now_nanos().min(NEVER - 1);
        if n > self.last_now {
            self.last_now = n;
        }
        self.last_now
    }

    /// [`now`](Self::now) without recording it.
    #[inline]
    pub(crate) fn peek_now(&self) -> u64 {
        self.clock.now_nanos().min(NEVER - 1).max(self.last_now)
    }

    /// Slot `i`'s deadline: the earlier of its TTL and TTI deadlines.
    #[inline]
    pub(crate) fn deadline(&self, i: usize) -> u64 {
        let d = self.ttl_at[i];
        if self.tti.is_some() {
            d.min(self.idle_at[i])
        } else {
            d
        }
    }

    /// Slot `i` was read at `now`: its idle deadline moves (the heap entry
    /// stays, and is pushed again when it falls due).
    #[inline]
    pub(crate) fn touch(&mut self, i: usize, now: u64) {
        if let Some(tti) = self.tti {
            self.idle_at[i] = now.saturating_add(tti);
        }
    }

    /// Slot `i` was written at `now`.
    pub(crate) fn set(&mut self, i: usize, ttl_at: u64, now: u64) {
        self.ttl_at[i] = ttl_at;
        if let Some(tti) = self.tti {
            self.idle_at[i] = now.saturating_add(tti);
        }
    }

    /// A new last slot, written at `now`.
    pub(crate) fn push_slot(&mut self, ttl_at: u64, now: u64) {
        self.ttl_at.push(ttl_at);
        if let Some(tti) = self.tti {
            self.idle_at.push(now.saturating_add(tti));
        }
    }

    /// Slot `i` is removed and the last slot moves into its place.
    pub(crate) fn swap_remove(&mut self, i: usize) {
        self.ttl_at.swap_remove(i);
        if self.tti.is_some() {
            self.idle_at.swap_remove(i);
        }
    }

    /// Records that slot `i` must be looked at no later than its deadline.
    /// `live`: the slots in use.
    pub(crate) fn schedule(&mut self, i: usize, live: usize) {
        let d = self.deadline(i);
        if d == NEVER {
            return;
        }
        self.heap.push(Reverse((d, i as u32)));
        if self.heap.len() > 2 * live + 64 {
            let v: Vec<_> = (0..live)
                .filter_map(|j| {
                    let d = self.deadline(j);
                    (d != NEVER).then_some(Reverse((d, j as u32)))
                })
                .collect();
            self.heap = BinaryHeap::from(v);
        }
    }

    /// Whether some heap entry falls due at or before `now` (a slot may
    /// have expired).
    #[inline]
    pub(crate) fn is_due(&self, now: u64) -> bool {
        matches!(self.heap.peek(), Some(&Reverse((d, _))) if d <= now)
    }

    /// A slot (of the first `live`) whose deadline is at or before `now`,
    /// dropping the stale heap entries in front of it and pushing again
    /// those whose deadline moved later. `None` when nothing more has
    /// expired.
    pub(crate) fn next_expired(&mut self, now: u64, live: usize) -> Option<usize> {
        loop {
            let i = match self.heap.peek() {
                Some(&Reverse((d, i))) if d <= now => i as usize,
                _ => return None,
            };
            self.heap.pop();
            if i >= live {
                continue;
            }
            if self.deadline(i) <= now {
                return Some(i);
            }
            self.schedule(i, live);
        }
    }

    /// Forgets every slot.
    pub(crate) fn clear(&mut self) {
        self.ttl_at.clear();
        self.idle_at.clear();
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{LruCache, ManualClock, RemovalCause};

    fn keys(c: &LruCache<u32, u32>) -> Vec<u32> {
        c.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn ttl_tti_and_overrides() {
        let clock = ManualClock::new();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let mut c = LruCache::builder()
            .max_capacity(10)
            .time_to_live(Duration::from_secs(10))
            .clock(clock.clone())
            .eviction_listener(move |k: u32, _v: u32, cause| seen2.lock().unwrap().push((k, cause)))
            .build()
            .unwrap();
        c.insert(1, 1);
        c.insert_with_ttl(2, 2, Duration::from_secs(1));
        c.insert_with_ttl(3, 3, Duration::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.peek(&2), None);
        assert_eq!(c.get(&2), None);
        assert_eq!(c.len(), 2);
        clock.advance(Duration::from_secs(9));
        assert!(!c.contains_key(&1));
        c.purge_expired();
        assert_eq!(keys(&c), [3]);
        assert_eq!(
            *seen.lock().unwrap(),
            [(2, RemovalCause::Expired), (1, RemovalCause::Expired)]
        );
        assert_eq!(c.stats().expirations(), 2);
        // A clock stepping back is "no time passed".
        clock.set(Duration::ZERO);
        assert_eq!(c.get(&3), Some(&3));
        c.insert_with_ttl(4, 4, Duration::ZERO);
        assert!(!c.contains_key(&4));

        let mut c = LruCache::builder()
            .max_capacity(10)
            .time_to_idle(Duration::from_secs(5))
            .clock(clock.clone())
            .build()
            .unwrap();
        c.insert(1u32, 1u32);
        c.insert(2, 2);
        for _ in 0..5 {
            clock.advance(Duration::from_secs(4));
            assert_eq!(c.get(&1), Some(&1));
        }
        assert_eq!(c.len(), 1);
    }
}
