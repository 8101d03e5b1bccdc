//! The single-threaded exact LRU, which is also the shard of [`Cache`](crate::Cache).
//!
//! Layout: entries live in a slab (`Vec<Node>`); a `hashbrown::HashTable<u32>`
//! maps a key's hash to its slot (the hash is recomputed from the key when
//! the table grows, so it is not stored). A removed slot is filled by moving
//! the last slot into it, so the slab never has holes. Recency order is the
//! [`RecencyLog`] over the slab; weights and deadlines live in vectors
//! parallel to it that exist only when a weigher or a TTL is in use (the
//! deadlines and their order in [`Deadlines`]).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

use hashbrown::HashTable;
use sysblocks_clock::{saturating_nanos, SharedClock};

use crate::deadlines::Deadlines;
use crate::error::BuildError;
use crate::recency::{RecencyLog, Stamped};
use crate::settings::{ExpiryPolicy, Weigher};
use crate::stats::{RemovalCause, Stats};
use crate::sync::Exclusive;
use crate::tinylfu::TinyLfu;

mod builder;
mod internals;
mod iter;
#[cfg(test)]
mod tests;

pub use builder::LruBuilder;
pub use iter::Iter;

/// An eviction listener of an [`LruCache`].
type LocalListener<K, V> = Box<dyn FnMut(K, V, RemovalCause) + Send>;

struct Node<K, V> {
    key: K,
    value: V,
    /// Exact LRU: position (truncated to `u32`) of this entry's latest
    /// record in the recency log. W-TinyLFU: the entry's queue.
    qpos: u32,
}

/// The eviction order of the slab's slots.
enum Order {
    /// Exact LRU (whose stamps are the slots' `qpos`).
    Lru(RecencyLog),
    /// W-TinyLFU (whose queue tags are the slots' `qpos`).
    TinyLfu(Box<TinyLfu>),
}

// A `u64 -> u64` entry takes 24 bytes of slab, besides its `u32` and
// control byte in the table and its records in the log.
const _: () = assert!(std::mem::size_of::<Node<u64, u64>>() == 24);

impl<K, V> Stamped for Node<K, V> {
    #[inline]
    fn stamp(&self) -> u32 {
        self.qpos
    }

    #[inline]
    fn set_stamp(&mut self, pos: u32) {
        self.qpos = pos;
    }
}

/// A single-threaded cache with exact least-recently-used eviction, optional
/// weights and optional time to live / time to idle.
///
/// Every operation is O(1) (expiry: O(log n) per entry with a deadline,
/// amortised). `get` moves the entry to the front of the recency list, so it
/// takes `&mut self`; `peek` and `contains_key` do not touch recency.
///
/// Expired entries are never returned. They are reclaimed by the next
/// operation that looks at the expiry order (`get`, `insert`, `pop_lru`,
/// [`purge_expired`](Self::purge_expired)), without scanning the cache and
/// without a background thread. Until then they count in [`len`](Self::len).
/// Time is the latest the clock has shown: a clock that steps back counts
/// as no time passing. Deadlines saturate, so `Duration::MAX` means never,
/// and a clock at its end (`u64::MAX` ns) reaches no deadline beyond it.
///
/// The eviction listener runs after the operation that removed the entry
/// is complete. If it panics, the panic reaches the caller of that
/// operation, whose change stands; removals that call had not yet
/// delivered are dropped, and the listener keeps receiving later ones.
///
/// ```
/// use sysblocks_lru_ttl_cache::LruCache;
///
/// let mut c = LruCache::new(2)?;
/// c.insert("a", 1);
/// c.insert("b", 2);
/// c.get(&"a");
/// c.insert("c", 3); // evicts "b", the least recently used
/// assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["c", "a"]);
/// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
/// ```
pub struct LruCache<K, V, S = ahash::RandomState> {
    table: HashTable<u32>,
    nodes: Vec<Node<K, V>>,
    /// Eviction order over `nodes`.
    order: Order,
    hasher: S,
    capacity: u64,
    weigher: Option<Weigher<K, V>>,
    /// Per slot weight; empty without a weigher (every entry weighs 1).
    weights: Vec<u64>,
    total_weight: u64,
    expiry: Option<Box<Deadlines>>,
    /// The per-entry expiry policy (its deadlines are in `expiry`).
    expire_after: Option<ExpiryPolicy<K, V>>,
    clock: SharedClock,
    listener: Option<Exclusive<LocalListener<K, V>>>,
    /// With a listener: what the current operation removed, delivered once
    /// the operation is complete (kept to reuse its allocation).
    removed: Vec<(K, V, RemovalCause)>,
    stats: Stats,
}

impl<K: Hash + Eq, V> LruCache<K, V> {
    /// An unweighted cache of at most `capacity` entries, without expiry.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero capacity, [`BuildError::TooLarge`]
    /// above [`MAX_ENTRIES`](crate::MAX_ENTRIES).
    pub fn new(capacity: u64) -> Result<Self, BuildError> {
        LruBuilder::new().max_capacity(capacity).build()
    }

    /// A builder for a cache with weights, expiry, a clock, a listener or a
    /// custom hasher.
    #[must_use]
    pub fn builder() -> LruBuilder<K, V> {
        LruBuilder::new()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> LruCache<K, V, S> {
    /// The value for `key`, made the most recently used. `None` if absent or
    /// expired (an expired entry is reclaimed).
    pub fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        let i = self.notify(|c, s| c.get_index(hash, key, s))?;
        Some(&self.nodes[i].value)
    }

    /// Like [`get`](Self::get), mutably. The entry's weight is not
    /// recomputed.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        let i = self.notify(|c, s| c.get_index(hash, key, s))?;
        Some(&mut self.nodes[i].value)
    }

    /// The value for `key` without touching recency or statistics.
    pub fn peek<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let i = self.peek_index(self.hash_of(key), key)?;
        Some(&self.nodes[i].value)
    }

    /// Whether a live entry for `key` exists (recency untouched).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.contains_hashed(self.hash_of(key), key)
    }

    /// Stores `value` as the most recently used entry, evicting from the
    /// least recently used end as needed; returns the value it replaced.
    /// The entry gets the cache's default time to live, if any.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let hash = self.hash_of(&key);
        self.notify(|c, s| c.insert_hashed(hash, key, value, None, s))
            .map(|(_, v)| v)
    }

    /// [`insert`](Self::insert) with this entry's own time to live
    /// (saturating: a huge `ttl` means "never"). A zero `ttl` stores nothing
    /// (the listener sees [`RemovalCause::Expired`]) and removes any old
    /// entry for the key.
    pub fn insert_with_ttl(&mut self, key: K, value: V, ttl: Duration) -> Option<V> {
        let hash = self.hash_of(&key);
        let ttl = saturating_nanos(ttl);
        self.notify(|c, s| c.insert_hashed(hash, key, value, Some(ttl), s))
            .map(|(_, v)| v)
    }

    /// Removes and returns the entry's value (`None` if absent or expired).
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash_of(key);
        self.notify(|c, s| c.remove_hashed(hash, key, s))
            .map(|(_, v)| v)
    }

    /// Removes and returns the least recently used live entry. Under
    /// [`Policy::WTinyLfu`](crate::Policy::WTinyLfu): the entry the policy evicts first (the oldest
    /// in probation, else in the protected segment, else in the window).
    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        self.notify(|c, s| {
            c.advance(s);
            let i = match &mut c.order {
                Order::Lru(log) => log.oldest(&c.nodes),
                Order::TinyLfu(t) => t.first_out(),
            }?;
            let kv = c.take_slot(i);
            c.stats.count(RemovalCause::Explicit);
            Some(kv)
        })
    }

    /// Entries from the most to the least recently used, skipping expired
    /// ones. Under [`Policy::WTinyLfu`](crate::Policy::WTinyLfu): the window, then the protected
    /// segment, then probation, each from its most recently used.
    pub fn iter(&self) -> Iter<'_, K, V, S> {
        Iter {
            cache: Some(self),
            pos: match &self.order {
                Order::Lru(log) => log.head(),
                Order::TinyLfu(_) => 0,
            },
            cursor: (0, u32::MAX),
            expiry: self.expiry.as_deref().map(|e| (e, e.peek_now())),
        }
    }

    /// Changes the capacity, evicting least recently used entries until the
    /// cache fits.
    ///
    /// # Errors
    ///
    /// As [`LruBuilder::build`] for `max_capacity`; the cache is unchanged.
    pub fn set_capacity(&mut self, capacity: u64) -> Result<(), BuildError> {
        self.notify(|c, s| c.set_capacity_with(capacity, s))
    }

    /// Keeps only the entries for which `keep` returns true; the others
    /// leave as [`RemovalCause::Explicit`] (the listener sees them).
    /// Expired entries are reclaimed first and never shown to `keep`.
    /// `keep` may change a value; its weight is not recomputed. Recency
    /// and hit statistics are untouched. O(n).
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.notify(|c, s| c.retain_with(keep, s));
    }

    /// Removes the entries for which `pred` returns true (the listener sees
    /// them as [`RemovalCause::Explicit`]) and returns how many; as
    /// [`retain`](Self::retain) with the opposite answer.
    pub fn invalidate_entries_if(&mut self, mut pred: impl FnMut(&K, &V) -> bool) -> usize {
        self.notify(|c, s| c.retain_with(|k, v| !pred(k, v), s))
    }

    /// Removes every entry (the listener sees each, as `Explicit`).
    pub fn clear(&mut self) {
        self.notify(|c, s| c.clear_with(s));
    }

    /// Reclaims every expired entry now.
    pub fn purge_expired(&mut self) {
        self.notify(|c, s| c.purge_with(s));
    }

    /// Entries stored, including expired ones not reclaimed yet.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The total weight stored (the entry count without a weigher).
    #[must_use]
    pub fn weighted_size(&self) -> u64 {
        self.total_weight
    }

    /// The capacity: entries, or total weight with a weigher.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Counters since the cache was built.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

impl<K, V, S> fmt::Debug for LruCache<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruCache")
            .field("len", &self.nodes.len())
            .field("weighted_size", &self.total_weight)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}
