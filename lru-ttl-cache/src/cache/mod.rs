//! The concurrent cache: a cheap `Clone` handle over N shards, each an
//! [`LruCache`](crate::LruCache) behind a read-write lock
//! ([`shard`](self::shard)), with single-flight loading.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use crate::stats::{RemovalCause, Stats};
use crate::sync::{Arc, Mutex, StdArc};

mod builder;
mod bulk;
mod entry;
mod load;
#[cfg(feature = "async")]
mod load_async;
mod shard;

pub use builder::CacheBuilder;
pub use bulk::CacheIter;
pub use entry::{Entry, EntrySelector};
pub(crate) use shard::{Shard, ShardLock};

type Listener<K, V> = StdArc<dyn Fn(K, V, RemovalCause) + Send + Sync>;
type Loader<K, V> = StdArc<dyn Fn(&K) -> Option<V> + Send + Sync>;
type Evicted<K, V> = Vec<(K, V, RemovalCause)>;

struct Inner<K, V, S> {
    shards: Box<[ShardLock<K, V, S>]>,
    hasher: S,
    listener: Option<Listener<K, V>>,
    loader: Option<Loader<K, V>>,
    /// The whole capacity; its lock also orders `set_capacity` calls.
    capacity: Mutex<u64>,
}

/// A thread-safe cache: N shards selected by key hash, each an exact LRU
/// (or W-TinyLFU, by [`policy`](CacheBuilder::policy)) with the optional
/// weights, TTL and TTI of [`LruCache`](crate::LruCache).
///
/// Cloning is cheap (an `Arc`); clones share the cache. With
/// [`shards(1)`](CacheBuilder::shards) it is an exact global LRU; with more,
/// each shard is an exact LRU over its part of the keys and capacity.
///
/// `get` returns a clone of the value: keep large values in an `Arc`.
/// Shards sit behind read-write locks (W-TinyLFU lookups share them; see
/// [`get`](Self::get)), so the cache is `Sync` when keys and values are
/// `Send + Sync`.
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
            .field("capacity", &*self.inner.capacity.lock())
            .finish_non_exhaustive()
    }
}

/// The most shards a cache may have.
pub const MAX_SHARDS: usize = 1 << 16;

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
    fn shard_for(&self, hash: u64) -> &ShardLock<K, V, S> {
        let shards = &self.inner.shards;
        // Remix so the shard choice is independent of the bits the table uses.
        let h = (hash ^ (hash >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let i = (((h >> 32) * shards.len() as u64) >> 32) as usize;
        &shards[i]
    }

    #[inline]
    fn hash_of<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.inner.hasher.hash_one(q)
    }

    /// A clone of the value for `key`, made the most recently used in its
    /// shard. `None` if absent or expired.
    ///
    /// Under exact LRU, or with a time to idle or an
    /// [`Expiry`](crate::Expiry), a lookup takes its shard's lock, as it
    /// moves the entry or its deadline. Under W-TinyLFU otherwise it takes
    /// the shard's read lock only, so lookups in one shard run in
    /// parallel: the hit is recorded in a small buffer that the policy
    /// replays before the shard's next write. When threads contend, a hit
    /// that finds the buffer full is not replayed (the policy counts one
    /// use fewer; [`stats`](Self::stats) counts every hit), and an expired
    /// entry is left for the next write to reclaim.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        let hash = self.hash_of(key);
        let lock = self.shard_for(hash);
        if lock.shared_reads() {
            return lock.get(hash, key);
        }
        if self.inner.listener.is_none() {
            let mut shard = lock.write();
            let i = shard.lru.get_index(hash, key, &mut |_, _, _| {});
            return i.map(|i| shard.lru.value_at(i).clone());
        }
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut shard = lock.write();
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
        let mut shard = self.shard_for(hash).write();
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
        let mut shard = self.shard_for(hash).write();
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
        self.shard_for(hash).read().lru.contains_hashed(hash, key)
    }

    /// Entries stored over all shards (expired ones not yet reclaimed
    /// included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| s.read().lru.len()).sum()
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
            .map(|s| s.read().lru.weighted_size())
            .sum()
    }

    /// The configured capacity.
    #[must_use]
    pub fn max_capacity(&self) -> u64 {
        *self.inner.capacity.lock()
    }

    /// Removes every entry (the listener sees each as `Explicit`).
    pub fn clear(&self) {
        for s in self.inner.shards.iter() {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = s.write();
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
            let mut shard = s.write();
            shard.lru.purge_with(&mut pending.sink());
            drop(shard);
        }
    }

    /// Counters summed over the shards.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in self.inner.shards.iter() {
            total += s.stats();
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
