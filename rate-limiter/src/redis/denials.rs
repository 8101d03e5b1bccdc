//! The local cache of denials: a key Redis denied until some instant is
//! denied locally until then, without a round trip.
//!
//! Sound because a denial changes no state in either script, and other
//! processes' checks only move a key's admitting instant later: a request
//! of cost `n` denied with `retry_after = r` stays denied for `r`, and so
//! does any request of cost `n` or more (a smaller cost may pass earlier,
//! so it goes to Redis). The deadline is measured on the local clock from
//! the instant the request was *sent*, so the round trip's own time makes
//! the local deadline earlier than Redis', never later.

use std::collections::HashMap;

use crate::sync::Mutex;

/// What the cache remembers of one denial.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Denied {
    /// Local clock instant until which the key is denied.
    pub(crate) until: u64,
    /// The local instant the denial was measured from.
    pub(crate) at: u64,
    /// The smallest cost known to be denied until `until`.
    pub(crate) cost: u32,
    /// The denial's slack (as the script replied) and `reset_after`.
    pub(crate) slack: u64,
    pub(crate) reset_ns: u64,
}

struct Map {
    entries: HashMap<Box<[u8]>, Denied>,
    /// No entry expires before this instant: a full map is swept only once
    /// the earliest deadline has passed.
    earliest: u64,
}

/// A bounded map from key to [`Denied`]. At `capacity` entries, a new
/// denial first sweeps out the expired ones (at most once per earliest
/// deadline) and is not cached if the map is still full: memory stays
/// bounded and the worst case is a round trip.
pub(crate) struct DenialCache {
    map: Mutex<Map>,
    capacity: usize,
}

impl DenialCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            map: Mutex::new(Map {
                entries: HashMap::new(),
                earliest: u64::MAX,
            }),
            capacity,
        }
    }

    /// The cached denial of `key` at `now` for `cost`, if it still holds.
    pub(crate) fn get(&self, key: &[u8], cost: u32, now: u64) -> Option<Denied> {
        let map = self.map.lock();
        map.entries
            .get(key)
            .filter(|d| now < d.until && cost >= d.cost)
            .copied()
    }

    /// Remembers a denial (replacing an older one of the key).
    pub(crate) fn insert(&self, key: &[u8], d: Denied) {
        let mut map = self.map.lock();
        if let Some(old) = map.entries.get_mut(key) {
            *old = d;
            map.earliest = map.earliest.min(d.until);
            return;
        }
        if map.entries.len() >= self.capacity {
            if d.at < map.earliest {
                return;
            }
            let now = d.at;
            map.entries.retain(|_, e| e.until > now);
            map.earliest = map
                .entries
                .values()
                .map(|e| e.until)
                .min()
                .unwrap_or(u64::MAX);
            if map.entries.len() >= self.capacity {
                return;
            }
        }
        map.earliest = map.earliest.min(d.until);
        map.entries.insert(key.into(), d);
    }

    /// Forgets `key` (after Redis admitted it).
    pub(crate) fn remove(&self, key: &[u8]) {
        let mut map = self.map.lock();
        if !map.entries.is_empty() {
            map.entries.remove(key);
        }
    }

    /// Entries held (expired ones included until swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(at: u64, until: u64) -> Denied {
        Denied {
            until,
            at,
            cost: 1,
            slack: 0,
            reset_ns: 0,
        }
    }

    #[test]
    fn holds_until_the_deadline_and_for_larger_costs_only() {
        let c = DenialCache::new(4);
        c.insert(
            b"k",
            Denied {
                cost: 2,
                ..denied(0, 100)
            },
        );
        assert!(c.get(b"k", 2, 99).is_some());
        assert!(c.get(b"k", 3, 99).is_some());
        assert!(c.get(b"k", 1, 99).is_none());
        assert!(c.get(b"k", 2, 100).is_none());
        assert!(c.get(b"other", 2, 0).is_none());
        c.remove(b"k");
        assert!(c.get(b"k", 2, 0).is_none());
    }

    #[test]
    fn stays_bounded_and_sweeps_expired_entries() {
        let c = DenialCache::new(2);
        c.insert(b"a", denied(0, 10));
        c.insert(b"b", denied(0, 20));
        // Full of live entries: not cached.
        c.insert(b"c", denied(5, 30));
        assert_eq!(c.len(), 2);
        assert!(c.get(b"c", 1, 5).is_none());
        // `a` has expired: swept, `c` takes its place.
        c.insert(b"c", denied(10, 30));
        assert_eq!(c.len(), 2);
        assert!(c.get(b"c", 1, 11).is_some());
        assert!(c.get(b"a", 1, 0).is_none());
    }
}
