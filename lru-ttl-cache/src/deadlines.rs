//! Expiry of an [`LruCache`](crate::LruCache) (one shard of a
//! [`Cache`](crate::Cache)): deadlines from the time to live, the time
//! to idle and an [`Expiry`](crate::Expiry) policy, and the order in which
//! they fall due.
//!
//! Deadlines live in vectors parallel to the cache's slab, one per slot
//! (the time-to-idle one only with a TTI, the policy's only with a policy).
//! An entry's deadline is the earliest of them. Every entry with a deadline has
//! an entry in a min-heap of `(deadline, slot)`. Heap entries are never
//! updated in place: a heap entry is acted on only if its slot still holds
//! an entry whose current deadline has passed; if the slot's deadline moved
//! later (time to idle), it is pushed again. The invariant "every live
//! entry has a heap entry no later than its deadline" makes purging exact,
//! and the heap is rebuilt from the slots when stale entries outnumber live
//! ones, so it stays bounded.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::time::Duration;

use sysblocks_clock::{saturating_nanos, SharedClock};

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// The deadline `d` after `now` (`None`, or too far to represent: `NEVER`).
#[inline]
pub(crate) fn deadline_after(d: Option<Duration>, now: u64) -> u64 {
    d.map_or(NEVER, |d| now.saturating_add(saturating_nanos(d)))
}

/// The time from `now` to the deadline `at` (`None` for `NEVER`; zero for
/// a deadline already passed).
#[inline]
pub(crate) fn time_left(at: u64, now: u64) -> Option<Duration> {
    (at != NEVER).then(|| Duration::from_nanos(at.saturating_sub(now)))
}

/// Expiry state: present only when a TTL or TTI is configured or a per-entry
/// TTL was used.
pub(crate) struct Deadlines {
    clock: SharedClock,
    /// Default time to live, nanoseconds.
    ttl: Option<u64>,
    /// Time to idle, nanoseconds.
    tti: Option<u64>,
    /// Per slot: absolute deadline from the time to live (`NEVER` if none).
    ttl_at: Vec<u64>,
    /// Per slot: absolute deadline from the time to idle (empty without TTI).
    idle_at: Vec<u64>,
    /// Per slot: absolute deadline an [`Expiry`](crate::Expiry) policy set
    /// (empty without one).
    var_at: Vec<u64>,
    /// Whether `var_at` is in use.
    variable: bool,
    /// `(deadline, slot)`, lazily maintained (see the module docs).
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// The latest time seen: a clock that steps back means no time passed.
    last_now: u64,
}

impl Deadlines {
    /// Expiry for `slots` slots that have no deadline yet.
    pub(crate) fn new(
        clock: SharedClock,
        ttl: Option<u64>,
        tti: Option<u64>,
        variable: bool,
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
            var_at: if variable {
                vec![NEVER; slots]
            } else {
                Vec::new()
            },
            variable,
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

    /// Slot `i`'s deadline: the earliest of its TTL, TTI and policy
    /// deadlines.
    #[inline]
    pub(crate) fn deadline(&self, i: usize) -> u64 {
        let mut d = self.ttl_at[i];
        if self.tti.is_some() {
            d = d.min(self.idle_at[i]);
        }
        if self.variable {
            d = d.min(self.var_at[i]);
        }
        d
    }

    /// Slot `i`'s deadline from the [`Expiry`](crate::Expiry) policy
    /// (`NEVER` without one).
    #[inline]
    pub(crate) fn policy_deadline(&self, i: usize) -> u64 {
        if self.variable {
            self.var_at[i]
        } else {
            NEVER
        }
    }

    /// Sets slot `i`'s policy deadline, to be scheduled by the caller.
    #[inline]
    pub(crate) fn set_policy(&mut self, i: usize, at: u64) {
        if self.variable {
            self.var_at[i] = at;
        }
    }

    /// The policy set slot `i`'s deadline to `at` (`live`: the slots in
    /// use). An earlier deadline is scheduled now; a later one is found
    /// when the heap entry for the earlier falls due.
    pub(crate) fn set_policy_deadline(&mut self, i: usize, at: u64, live: usize) {
        if !self.variable {
            return;
        }
        let before = self.deadline(i);
        self.var_at[i] = at;
        if self.deadline(i) < before {
            self.schedule(i, live);
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

    /// A new last slot, written at `now` (its policy deadline is set
    /// apart, with [`set_policy_deadline`](Self::set_policy_deadline)).
    pub(crate) fn push_slot(&mut self, ttl_at: u64, now: u64) {
        self.ttl_at.push(ttl_at);
        if self.variable {
            self.var_at.push(NEVER);
        }
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
        if self.variable {
            self.var_at.swap_remove(i);
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
        self.var_at.clear();
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
