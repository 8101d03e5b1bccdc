//! [`LruBuilder`]: the settings of an [`LruCache`] and their validation.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use sysblocks_clock::Clock;

use super::{LocalListener, LruCache};
use crate::error::BuildError;
use crate::settings::Settings;
use crate::stats::RemovalCause;
use crate::sync::{Exclusive, StdArc};

/// Builds an [`LruCache`]. `max_capacity` is required.
pub struct LruBuilder<K, V, S = ahash::RandomState> {
    settings: Settings<K, V>,
    hasher: S,
    listener: Option<LocalListener<K, V>>,
}

impl<K, V> LruBuilder<K, V> {
    pub(super) fn new() -> Self {
        Self {
            settings: Settings::new(),
            hasher: ahash::RandomState::new(),
            listener: None,
        }
    }
}

impl<K, V, S> LruBuilder<K, V, S> {
    /// The capacity: entries, or total weight when a weigher is set.
    #[must_use]
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// Weighs each entry (computed once, at insert); the capacity then
    /// bounds the total weight, which never exceeds it (so never wraps,
    /// even at `u64::MAX`). An entry heavier than the capacity is not
    /// stored (cause [`RemovalCause::Rejected`]); one that fits evicts
    /// least recently used entries until it does. An entry of weight 0
    /// takes no capacity: it leaves only by expiry, removal, or the
    /// [`MAX_ENTRIES`](crate::MAX_ENTRIES) bound on the entry count.
    #[must_use]
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.settings.weigher = Some(StdArc::new(f));
        self
    }

    /// Every entry expires this long after it was inserted (unless inserted
    /// with its own TTL).
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.settings.ttl = Some(ttl);
        self
    }

    /// A per-entry expiry policy: each entry's deadline is the earliest of
    /// the policy's, the time to live's and the time to idle's; see
    /// [`Expiry`](crate::Expiry) (and [`LruCache`](crate::LruCache) for when
    /// expired entries are reclaimed).
    #[must_use]
    pub fn expire_after(mut self, policy: impl crate::Expiry<K, V> + 'static) -> Self {
        self.settings.expire_after = Some(StdArc::new(policy));
        self
    }

    /// Every entry expires this long after its last read or write.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.settings.tti = Some(tti);
        self
    }

    /// The eviction policy (default: [`Policy::Lru`](crate::Policy::Lru), exact LRU).
    /// Under [`Policy::WTinyLfu`](crate::Policy::WTinyLfu) everything else (weights, expiry, the
    /// listener, statistics) works the same; only the choice of what to
    /// evict differs.
    #[must_use]
    pub fn policy(mut self, policy: crate::Policy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// The clock expiry is measured with (default: a [`MonotonicClock`](crate::MonotonicClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.settings.clock = Some(StdArc::new(clock));
        self
    }

    /// Called with every entry that leaves the cache other than through
    /// `remove` or `pop_lru` (which return it) or a replacing `insert`
    /// (which returns the old value).
    #[must_use]
    pub fn eviction_listener(mut self, f: impl FnMut(K, V, RemovalCause) + Send + 'static) -> Self {
        self.listener = Some(Box::new(f));
        self
    }

    /// The hasher for keys.
    #[must_use]
    pub fn hasher<S2>(self, hasher: S2) -> LruBuilder<K, V, S2> {
        LruBuilder {
            settings: self.settings,
            hasher,
            listener: self.listener,
        }
    }

    /// The cache.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] naming `max_capacity` (zero or unset),
    /// `time_to_live` or `time_to_idle` (zero); [`BuildError::TooLarge`] for
    /// an unweighted capacity above [`MAX_ENTRIES`](crate::MAX_ENTRIES).
    pub fn build(self) -> Result<LruCache<K, V, S>, BuildError>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        let settings = self.settings.validate(true)?;
        let reserve = settings.reserve(settings.capacity, 1);
        let mut c = LruCache::with_settings(settings.capacity, &settings, self.hasher, reserve);
        c.listener = self.listener.map(Exclusive::new);
        Ok(c)
    }
}

impl<K, V, S> fmt::Debug for LruBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruBuilder")
            .field("capacity", &self.settings.capacity)
            .field("time_to_live", &self.settings.ttl)
            .field("time_to_idle", &self.settings.tti)
            .finish_non_exhaustive()
    }
}
