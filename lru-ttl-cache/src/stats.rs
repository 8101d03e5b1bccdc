//! Why entries leave a cache, and the counters a cache keeps.

use std::ops::AddAssign;

/// Why an entry left the cache, as an eviction listener sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemovalCause {
    /// Evicted as the least recently used entry to make room (entry count
    /// or total weight over capacity).
    Size,
    /// Its time to live or time to idle ran out.
    Expired,
    /// Removed by the user (`remove`, `clear`, `pop_lru`).
    Explicit,
    /// Its value was replaced by an insert of the same key.
    Replaced,
    /// Never stored: heavier than the capacity it would have to fit in.
    Rejected,
}

/// Counters of a cache's activity since it was built.
///
/// For a [`Cache`](crate::Cache) these are the sums over its shards. Each
/// shard's counters are read under its lock, but the hits and misses of
/// lookups that share the lock (W-TinyLFU without time to idle or an
/// [`Expiry`](crate::Expiry)) are atomics counted beside it: every lookup
/// is counted exactly once, but a snapshot taken while other threads work
/// is consistent neither across shards nor between a shard's lookups and
/// its writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing (or only an expired entry).
    pub misses: u64,
    /// Entries stored (new keys and replacements; not rejected ones).
    pub insertions: u64,
    /// Entries evicted to make room ([`RemovalCause::Size`]).
    pub evicted_size: u64,
    /// Entries whose time ran out ([`RemovalCause::Expired`]).
    pub expired: u64,
    /// Entries removed by the user ([`RemovalCause::Explicit`]).
    pub removed_explicit: u64,
    /// Values replaced by a later insert ([`RemovalCause::Replaced`]).
    pub replaced: u64,
    /// Entries refused because they were too heavy ([`RemovalCause::Rejected`]).
    pub rejected: u64,
}

impl Stats {
    /// The count of removals for one cause.
    #[must_use]
    pub fn evictions(&self, cause: RemovalCause) -> u64 {
        match cause {
            RemovalCause::Size => self.evicted_size,
            RemovalCause::Expired => self.expired,
            RemovalCause::Explicit => self.removed_explicit,
            RemovalCause::Replaced => self.replaced,
            RemovalCause::Rejected => self.rejected,
        }
    }

    /// Entries reclaimed because their time ran out (same as
    /// `evictions(RemovalCause::Expired)`).
    #[must_use]
    pub fn expirations(&self) -> u64 {
        self.expired
    }

    /// `hits / (hits + misses)`, or 0 before any lookup.
    #[must_use]
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }

    pub(crate) fn count(&mut self, cause: RemovalCause) {
        match cause {
            RemovalCause::Size => self.evicted_size += 1,
            RemovalCause::Expired => self.expired += 1,
            RemovalCause::Explicit => self.removed_explicit += 1,
            RemovalCause::Replaced => self.replaced += 1,
            RemovalCause::Rejected => self.rejected += 1,
        }
    }
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.insertions += o.insertions;
        self.evicted_size += o.evicted_size;
        self.expired += o.expired;
        self.removed_explicit += o.removed_explicit;
        self.replaced += o.replaced;
        self.rejected += o.rejected;
    }
}
