//! The concurrent cache: a cheap `Clone` handle over N shards, each an
//! exact [`LruCache`] behind a mutex, with single-flight loading.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock};

use crate::error::BuildError;
use crate::flight::{Flight, Outcome};
use crate::lru::LruCache;
use crate::settings::{validate_capacity, Settings};
use crate::stats::{RemovalCause, Stats};
use crate::sync::{Arc, Mutex, StdArc};

type Listener<K, V> = StdArc<dyn Fn(K, V, RemovalCause) + Send + Sync>;
type Loader<K, V> = StdArc<dyn Fn(&K) -> Option<V> + Send + Sync>;
type Evicted<K, V> = Vec<(K, V, RemovalCause)>;

/// One shard: its LRU and the loads in flight for its keys.
pub(crate) struct Shard<K, V, S> {
    pub(crate) lru: LruCache<K, V, S>,
    pub(crate) inflight: hashbrown::HashMap<K, Arc<Flight<V>>, S>,
}

/// A locked shard on its own cache lines.
type Slot<K, V, S> = Padded<Mutex<Shard<K, V, S>>>;

/// Keeps shards on separate cache lines.
#[repr(align(128))]
struct Padded<T>(T);

struct Inner<K, V, S> {
    shards: Box<[Slot<K, V, S>]>,
    hasher: S,
    listener: Option<Listener<K, V>>,
    loader: Option<Loader<K, V>>,
    capacity: u64,
}

/// A thread-safe cache: N shards selected by key hash, each an exact LRU
/// with the optional weights, TTL and TTI of [`LruCache`].
///
/// Cloning is cheap (an `Arc`); clones share the cache. With
/// [`shards(1)`](CacheBuilder::shards) it is an exact global LRU; with more,
/// each shard is an exact LRU over its part of the keys and capacity.
///
/// `get` returns a clone of the value: keep large values in an `Arc`.
///
/// ```
/// use sysblocks_lru_ttl_cache::Cache;
/// use std::time::Duration;
///
/// let cache = Cache::builder()
///     .max_capacity(10_000)
///     .time_to_live(Duration::from_secs(60))
///     .build()?;
/// cache.insert("k", 1);
/// assert_eq!(cache.get(&"k"), Some(1));
/// let v = cache.get_or_insert_with("other", || 2);
/// assert_eq!(v, 2);
/// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
/// ```
pub struct Cache<K, V, S = ahash::RandomState> {
    inner: Arc<Inner<K, V, S>>,
}

impl<K, V, S> Clone for Cache<K, V, S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K, V, S> fmt::Debug for Cache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("shards", &self.inner.shards.len())
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cache`]; see [`Cache::builder`]. `max_capacity` is required.
pub struct CacheBuilder<K, V, S = ahash::RandomState> {
    settings: Settings<K, V>,
    shards: Option<usize>,
    listener: Option<Listener<K, V>>,
    loader: Option<Loader<K, V>>,
    hasher: S,
}

/// The most shards a cache may have.
pub const MAX_SHARDS: usize = 1 << 16;

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
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let cap = base + u64::from((i as u64) < extra);
            let cap = validate_capacity(Some(cap), weighted)?;
            shards.push(Padded(Mutex::new(Shard {
                lru: LruCache::with_settings(
                    cap,
                    &settings,
                    self.hasher.clone(),
                    settings.reserve(cap, n),
                ),
                inflight: hashbrown::HashMap::with_hasher(self.hasher.clone()),
            })));
        }
        Ok(Cache {
            inner: Arc::new(Inner {
                shards: shards.into_boxed_slice(),
                hasher: self.hasher,
                listener: self.listener,
                loader: self.loader,
                capacity,
            }),
        })
    }
}

/// Calls the listener with what a shard operation evicted, after the lock.
struct Pending<'a, K, V> {
    listener: Option<&'a Listener<K, V>>,
    evicted: Evicted<K, V>,
}

impl<'a, K, V> Pending<'a, K, V> {
    #[inline]
    fn new(listener: Option<&'a Listener<K, V>>) -> Self {
        Self {
            listener,
            evicted: Vec::new(),
        }
    }

    #[inline]
    fn sink(&mut self) -> impl FnMut(K, V, RemovalCause) + '_ {
        let on = self.listener.is_some();
        let evicted = &mut self.evicted;
        move |k, v, c| {
            if on {
                evicted.push((k, v, c));
            }
        }
    }

    #[inline]
    fn push(&mut self, k: K, v: V, c: RemovalCause) {
        if self.listener.is_some() {
            self.evicted.push((k, v, c));
        }
    }
}

impl<K, V> Drop for Pending<'_, K, V> {
    fn drop(&mut self) {
        if let Some(l) = self.listener {
            for (k, v, c) in self.evicted.drain(..) {
                l(k, v, c);
            }
        }
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    fn shard_for(&self, hash: u64) -> &Mutex<Shard<K, V, S>> {
        let shards = &self.inner.shards;
        // Remix so the shard choice is independent of the bits the table uses.
        let h = (hash ^ (hash >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let i = (((h >> 32) * shards.len() as u64) >> 32) as usize;
        &shards[i].0
    }

    #[inline]
    fn hash_of<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.inner.hasher.hash_one(q)
    }

    /// A clone of the value for `key`, made the most recently used in its
    /// shard. `None` if absent or expired.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hash_of(key);
        let lock = self.shard_for(hash);
        if self.inner.listener.is_none() {
            let mut shard = lock.lock();
            let i = shard.lru.get_index(hash, key, &mut |_, _, _| {});
            return i.map(|i| shard.lru.value_at(i).clone());
        }
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut shard = lock.lock();
        let i = shard.lru.get_index(hash, key, &mut pending.sink());
        let v = i.map(|i| shard.lru.value_at(i).clone());
        drop(shard);
        v
    }

    /// Stores an entry with the cache's default time to live. An entry
    /// heavier than its shard's capacity is not stored (listener:
    /// `Rejected`); a replaced value goes to the listener as `Replaced`.
    pub fn insert(&self, key: K, value: V) {
        self.insert_impl(key, value, None);
    }

    /// Stores an entry with its own time to live (saturating; zero stores
    /// nothing and the listener sees `Expired`).
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.insert_impl(key, value, Some(saturating_nanos(ttl)));
    }

    fn insert_impl(&self, key: K, value: V, ttl: Option<u64>) {
        let hash = self.hash_of(&key);
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut shard = self.shard_for(hash).lock();
        invalidate_flight(&mut shard, &key);
        let old = shard
            .lru
            .insert_hashed(hash, key, value, ttl, &mut pending.sink());
        drop(shard);
        if let Some((k, v)) = old {
            pending.push(k, v, RemovalCause::Replaced);
        }
    }

    /// Removes the entry and returns its value (`None` if absent or
    /// expired). The listener sees it as `Explicit`, with a clone.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hash_of(key);
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut shard = self.shard_for(hash).lock();
        invalidate_flight(&mut shard, key);
        let old = shard.lru.remove_hashed(hash, key, &mut pending.sink());
        drop(shard);
        old.map(|(k, v)| {
            if pending.listener.is_some() {
                pending.push(k, v.clone(), RemovalCause::Explicit);
            }
            v
        })
    }

    /// Whether a live entry exists (recency untouched).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        self.shard_for(hash).lock().lru.contains_hashed(hash, key)
    }

    /// Entries stored over all shards (expired ones not yet reclaimed
    /// included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.0.lock().lru.len()).sum()
    }

    /// Whether no entry is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight stored (entry count without a weigher).
    #[must_use]
    pub fn weighted_size(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.0.lock().lru.weighted_size())
            .sum()
    }

    /// The configured capacity.
    #[must_use]
    pub fn max_capacity(&self) -> u64 {
        self.inner.capacity
    }

    /// Removes every entry (the listener sees each as `Explicit`).
    pub fn clear(&self) {
        for s in self.inner.shards.iter() {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = s.0.lock();
            shard.lru.clear_with(&mut pending.sink());
            for (_, f) in shard.inflight.drain() {
                f.invalidate();
            }
            drop(shard);
        }
    }

    /// Reclaims expired entries in every shard now (otherwise each shard
    /// reclaims them on its next operation).
    pub fn purge_expired(&self) {
        for s in self.inner.shards.iter() {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = s.0.lock();
            shard.lru.purge_with(&mut pending.sink());
            drop(shard);
        }
    }

    /// Counters summed over the shards.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in self.inner.shards.iter() {
            total += s.0.lock().lru.stats();
        }
        total
    }

    /// The number of shards.
    #[must_use]
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }
}

/// The key is being written or removed: a load in flight for it may read
/// a stale value. Its value will not be stored, and it leaves the map, so
/// that a call starting after this write does not wait for it.
fn invalidate_flight<K, V, S, Q>(shard: &mut Shard<K, V, S>, key: &Q)
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
    S: BuildHasher,
{
    if !shard.inflight.is_empty() {
        if let Some(f) = shard.inflight.remove(key) {
            f.invalidate();
        }
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// Cache-aside with single flight: the cached value, or `init()`'s,
    /// which is stored. Concurrent callers missing on the same key wait for
    /// one `init` instead of running their own.
    ///
    /// `init` may use the cache, even for its own key: a call for a key
    /// whose load is running on the calling thread (an `init` that asks for
    /// its own key, directly or through other keys' loads) does not wait
    /// for that load, which would never end; it runs its own `init` and
    /// returns that value without storing it (the outer load stores its
    /// own). An `init` that waits for another thread which needs the same
    /// key deadlocks, as any cycle of waits does.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `init` (in the caller that ran it); waiting
    /// callers are released and one of them runs its own `init`. Nothing
    /// else panics: a re-entrant call returns as described above.
    pub fn get_or_insert_with(&self, key: K, init: impl FnOnce() -> V) -> V {
        match self.try_get_or_insert_with(key, || Ok::<V, Infallible>(init())) {
            Ok(v) => v,
            Err(e) => match e {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) with a
    /// fallible loader. On `Err`, nothing is stored, the error is returned
    /// to this caller, and callers waiting on the same key are released to
    /// retry (one of them runs its own loader).
    ///
    /// If the key is inserted, removed or cleared while the loader runs,
    /// the loader's value (which may be stale) is returned to this caller
    /// and to those already waiting, but not stored; a call that starts
    /// after the insert or remove has returned does not wait for that load
    /// (it finds the new value, or loads again). Re-entrant calls behave as
    /// for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Errors
    ///
    /// The loader's error (a re-entrant call: its own loader's error).
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        let hash = self.hash_of(&key);
        let shard_lock = self.shard_for(hash);
        let mut init = Some(init);
        loop {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = shard_lock.lock();
            if let Some(i) = shard.lru.get_index(hash, &key, &mut pending.sink()) {
                return Ok(shard.lru.value_at(i).clone());
            }
            if let Some(f) = shard.inflight.get(&key) {
                if f.is_loading_here() {
                    // This thread's own load asks for its key again: run
                    // this `init` alone, and leave storing to that load.
                    drop(shard);
                    drop(pending);
                    let Some(init) = init.take() else {
                        unreachable!("the loader runs at most once per call")
                    };
                    return init();
                }
                let f = Arc::clone(f);
                drop(shard);
                drop(pending);
                match f.wait() {
                    Outcome::Done(v) => return Ok(v),
                    Outcome::Failed => continue,
                }
            }
            let flight = Arc::new(Flight::new());
            shard.inflight.insert(key.clone(), Arc::clone(&flight));
            drop(shard);
            drop(pending);
            let mut guard = FlightGuard {
                cache: self,
                hash,
                key: Some(key),
                flight,
            };
            let Some(init) = init.take() else {
                unreachable!("the loader runs at most once per call")
            };
            let v = init()?;
            return Ok(guard.complete(v));
        }
    }

    /// Read-through: the cached value, or the builder's
    /// [`loader`](CacheBuilder::loader)'s (stored, single flight). Without a
    /// loader this is [`get`](Self::get).
    pub fn get_or_load(&self, key: &K) -> Option<V> {
        let Some(loader) = self.inner.loader.as_ref() else {
            return self.get(key);
        };
        self.try_get_or_insert_with(key.clone(), || loader(key).ok_or(()))
            .ok()
    }
}

/// Ends a flight: on success stores the value and hands it to the waiters;
/// dropped without `complete` (loader error or panic), releases them to retry.
struct FlightGuard<'a, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    cache: &'a Cache<K, V, S>,
    hash: u64,
    key: Option<K>,
    flight: Arc<Flight<V>>,
}

impl<K, V, S> FlightGuard<'_, K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher,
{
    fn complete(&mut self, v: V) -> V {
        let Some(key) = self.key.take() else {
            unreachable!("complete runs once")
        };
        let cache = self.cache;
        let mut pending = Pending::new(cache.inner.listener.as_ref());
        let mut shard = cache.shard_for(self.hash).lock();
        // An invalidated flight has already left the map (and the key may
        // have a newer flight there).
        let old = if self.flight.is_invalidated() {
            None
        } else {
            shard.inflight.remove(&key);
            shard
                .lru
                .insert_hashed(self.hash, key, v.clone(), None, &mut pending.sink())
        };
        drop(shard);
        self.flight.finish(Outcome::Done(v.clone()));
        if let Some((k, old)) = old {
            pending.push(k, old, RemovalCause::Replaced);
        }
        v
    }
}

impl<K, V, S> Drop for FlightGuard<'_, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut shard = self.cache.shard_for(self.hash).lock();
            if !self.flight.is_invalidated() {
                shard.inflight.remove(&key);
            }
            drop(shard);
            self.flight.finish(Outcome::Failed);
        }
    }
}
