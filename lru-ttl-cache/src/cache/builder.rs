//! [`CacheBuilder`]: the settings of a [`Cache`], their validation and
//! the split of the capacity between the shards.

use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use sysblocks_clock::Clock;

use super::{Cache, Inner, Listener, Loader, Shard, ShardLock, MAX_SHARDS};
use crate::error::BuildError;
use crate::lru::LruCache;
use crate::settings::{validate_capacity, Policy, Settings};
use crate::stats::RemovalCause;
use crate::sync::{Arc, Mutex, StdArc};

/// Builds a [`Cache`]; see [`Cache::builder`]. `max_capacity` is required.
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    settings: Settings<K, V>,
    shards: Option<usize>,
    listener: Option<Listener<K, V>>,
    loader: Option<Loader<K, V>>,
    hasher: S,
}

impl<K, V, S> fmt::Debug for CacheBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("capacity", &self.settings.capacity)
            .field("shards", &self.shards)
            .field("time_to_live", &self.settings.ttl)
            .field("time_to_idle", &self.settings.tti)
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V> {
    /// A builder with the default hasher (ahash, randomly keyed).
    #[must_use]
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder {
            settings: Settings::new(),
            shards: None,
            listener: None,
            loader: None,
            hasher: ahash::RandomState::new(),
        }
    }
}

impl<K, V, S> CacheBuilder<K, V, S> {
    /// The capacity: entries, or total weight when a weigher is set. It is
    /// split evenly between the shards.
    #[must_use]
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.settings.capacity = Some(capacity);
        self
    }

    /// Weighs each entry (once, at insert). An entry heavier than its
    /// shard's share of the capacity (the whole capacity with one shard) is
    /// not stored; the listener sees [`RemovalCause::Rejected`]. Weights
    /// behave as in [`LruBuilder::weigher`](crate::LruBuilder::weigher): a
    /// shard's total never exceeds its share, and weight 0 takes none.
    #[must_use]
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.settings.weigher = Some(StdArc::new(f));
        self
    }

    /// Entries expire this long after insertion (unless inserted with
    /// [`Cache::insert_with_ttl`]).
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.settings.ttl = Some(ttl);
        self
    }

    /// A per-entry expiry policy: each entry's deadline is the earliest of
    /// the policy's, the time to live's and the time to idle's; see
    /// [`Expiry`](crate::Expiry) (and [`Cache`](crate::Cache) for when
    /// expired entries are reclaimed).
    #[must_use]
    pub fn expire_after(mut self, policy: impl crate::Expiry<K, V> + 'static) -> Self {
        self.settings.expire_after = Some(StdArc::new(policy));
        self
    }

    /// Entries expire this long after their last read or write.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.settings.tti = Some(tti);
        self
    }

    /// The number of shards. 1 gives an exact global LRU. Default: 16 per
    /// available core, rounded up to a power of two, at most the capacity.
    #[must_use]
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Called with each entry that leaves the cache and why, after the
    /// shard lock is released (so it may call back into the cache). Every
    /// removal is reported, including [`Cache::remove`] (as `Explicit`, with
    /// a clone of the returned value).
    #[must_use]
    pub fn eviction_listener(
        mut self,
        f: impl Fn(K, V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(StdArc::new(f));
        self
    }

    /// Read-through: the loader [`Cache::get_or_load`] calls on a miss
    /// (`None`: the key does not exist, nothing is cached).
    #[must_use]
    pub fn loader(mut self, f: impl Fn(&K) -> Option<V> + Send + Sync + 'static) -> Self {
        self.loader = Some(StdArc::new(f));
        self
    }

    /// The eviction policy in every shard (default: [`Policy::Lru`](crate::Policy::Lru), exact LRU).
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

    /// The hasher for keys (it also picks the shard).
    #[must_use]
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, S2> {
        CacheBuilder {
            settings: self.settings,
            shards: self.shards,
            listener: self.listener,
            loader: self.loader,
            hasher,
        }
    }

    /// The cache.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] naming `max_capacity` (zero or unset), `shards`,
    /// `time_to_live` or `time_to_idle`; [`BuildError::TooLarge`] for more
    /// than [`MAX_SHARDS`] shards or an unweighted capacity above
    /// [`MAX_ENTRIES`](crate::MAX_ENTRIES) per shard;
    /// [`BuildError::Conflict`] when `shards` exceeds `max_capacity`.
    pub fn build(self) -> Result<Cache<K, V, S>, BuildError>
    where
        K: Hash + Eq,
        S: BuildHasher + Clone,
    {
        let weighted = self.settings.weigher.is_some();
        // The entry bound (`MAX_ENTRIES`) applies per shard, checked below.
        let settings = self.settings.validate(false)?;
        let capacity = settings.capacity;
        let n = match self.shards {
            Some(0) => return Err(BuildError::Zero { setting: "shards" }),
            Some(n) if n > MAX_SHARDS => {
                return Err(BuildError::TooLarge {
                    setting: "shards",
                    max: MAX_SHARDS as u64,
                })
            }
            Some(n) if n as u64 > capacity => {
                return Err(BuildError::Conflict {
                    setting: "shards",
                    reason: "more shards than max_capacity",
                })
            }
            Some(n) => n,
            None => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                (cores * 16)
                    .next_power_of_two()
                    .min(MAX_SHARDS)
                    .min(capacity as usize)
                    .max(1)
            }
        };
        let base = capacity / n as u64;
        let extra = capacity % n as u64;
        // Hits move nothing but the policy's order (see `ShardLock`).
        let shared_reads = settings.policy == Policy::WTinyLfu
            && settings.tti.is_none()
            && settings.expire_after.is_none();
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let cap = base + u64::from((i as u64) < extra);
            let cap = validate_capacity(Some(cap), weighted)?;
            let shard = Shard {
                lru: LruCache::with_settings(
                    cap,
                    &settings,
                    self.hasher.clone(),
                    settings.reserve(cap, n),
                ),
                inflight: hashbrown::HashMap::with_hasher(self.hasher.clone()),
            };
            shards.push(ShardLock::new(shard, shared_reads));
        }
        Ok(Cache {
            inner: Arc::new(Inner {
                shards: shards.into_boxed_slice(),
                hasher: self.hasher,
                listener: self.listener,
                loader: self.loader,
                capacity: Mutex::new(capacity),
            }),
        })
    }
}
