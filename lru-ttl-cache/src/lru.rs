//! The single-threaded exact LRU, which is also the shard of [`Cache`](crate::Cache).
//!
//! Layout: entries live in a slab (`Vec<Node>`); a `hashbrown::HashTable<u32>`
//! maps a key's hash to its slot (the hash is recomputed from the key when
//! the table grows, so it is not stored). A removed slot is filled by moving
//! the last slot into it, so the slab never has holes. Recency order is the
//! [`RecencyLog`] over the slab; weights and deadlines live in vectors
//! parallel to it that exist only when a weigher or a TTL is in use (the
//! deadlines and their order in [`Expiry`]).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::time::Duration;

use hashbrown::HashTable;
use sysblocks_clock::{saturating_nanos, Clock, SharedClock};

use crate::error::BuildError;
use crate::expiry::{Expiry, NEVER};
use crate::recency::{RecencyLog, Stamped};
use crate::settings::{validate_capacity, Policy, Settings, Valid, Weigher, MAX_ENTRIES};
use crate::stats::{RemovalCause, Stats};
use crate::sync::StdArc;
use crate::tinylfu::TinyLfu;

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
    expiry: Option<Box<Expiry>>,
    clock: SharedClock,
    listener: Option<LocalListener<K, V>>,
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
    /// above [`MAX_ENTRIES`].
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

/// Builds an [`LruCache`]. `max_capacity` is required.
pub struct LruBuilder<K, V, S = ahash::RandomState> {
    settings: Settings<K, V>,
    hasher: S,
    listener: Option<LocalListener<K, V>>,
}

impl<K, V> LruBuilder<K, V> {
    fn new() -> Self {
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
    /// [`MAX_ENTRIES`] bound on the entry count.
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
    /// an unweighted capacity above [`MAX_ENTRIES`].
    pub fn build(self) -> Result<LruCache<K, V, S>, BuildError>
    where
        K: Hash + Eq,
        S: BuildHasher,
    {
        let settings = self.settings.validate(true)?;
        let reserve = settings.reserve(settings.capacity, 1);
        let mut c = LruCache::with_settings(settings.capacity, &settings, self.hasher, reserve);
        c.listener = self.listener;
        Ok(c)
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> LruCache<K, V, S> {
    /// A cache of `capacity` (one shard's share, for a sharded cache) with
    /// the other validated settings.
    /// `reserve`: slots to allocate up front (the slab then grows on
    /// demand, never past an unweighted capacity).
    pub(crate) fn with_settings(
        capacity: u64,
        settings: &Valid<K, V>,
        hasher: S,
        reserve: usize,
    ) -> Self {
        let (ttl, tti) = (settings.ttl, settings.tti);
        let clock = StdArc::clone(&settings.clock);
        let weigher = settings.weigher.clone();
        let expiry = (ttl.is_some() || tti.is_some())
            .then(|| Box::new(Expiry::new(StdArc::clone(&clock), ttl, tti, 0)));
        let order = match settings.policy {
            Policy::Lru => Order::Lru(RecencyLog::new()),
            Policy::WTinyLfu => Order::TinyLfu(Box::new(TinyLfu::new(capacity, reserve))),
        };
        Self {
            table: HashTable::with_capacity(reserve),
            nodes: Vec::with_capacity(reserve),
            order,
            hasher,
            capacity,
            weights: Vec::new(),
            weigher,
            total_weight: 0,
            expiry,
            clock,
            listener: None,
            removed: Vec::new(),
            stats: Stats::default(),
        }
    }

    // ----- small internals -------------------------------------------------

    #[inline]
    pub(crate) fn hash_of<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.hasher.hash_one(q)
    }

    #[inline]
    fn find<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let nodes = &self.nodes;
        self.table
            .find(hash, |&i| nodes[i as usize].key.borrow() == key)
            .map(|&i| i as usize)
    }

    #[inline]
    fn weight_at(&self, i: usize) -> u64 {
        if self.weigher.is_some() {
            self.weights[i]
        } else {
            1
        }
    }

    fn ensure_expiry(&mut self) {
        if self.expiry.is_none() {
            self.expiry = Some(Box::new(Expiry::new(
                StdArc::clone(&self.clock),
                None,
                None,
                self.nodes.len(),
            )));
        }
    }

    /// Removes slot `i` from the list, the table and the slab (the last slot
    /// moves into its place) and returns its entry.
    fn take_slot(&mut self, i: usize) -> (K, V) {
        let hash = self.hasher.hash_one(&self.nodes[i].key);
        if let Ok(e) = self.table.find_entry(hash, |&x| x as usize == i) {
            e.remove();
        }
        self.total_weight -= self.weight_at(i);
        if let Order::TinyLfu(t) = &mut self.order {
            t.removed(&self.nodes, &self.weights, i);
        }
        let last = self.nodes.len() - 1;
        let node = self.nodes.swap_remove(i);
        if self.weigher.is_some() {
            self.weights.swap_remove(i);
        }
        if let Some(exp) = self.expiry.as_mut() {
            exp.swap_remove(i);
        }
        if i != last {
            // The moved entry keeps its place in the order, under its new slot.
            match &mut self.order {
                Order::Lru(log) => log.relocated(&self.nodes, i),
                Order::TinyLfu(t) => t.relocated(&self.nodes, i),
            }
            let h = self.hasher.hash_one(&self.nodes[i].key);
            if let Some(slot) = self.table.find_mut(h, |&x| x as usize == last) {
                *slot = i as u32;
            }
            let live = self.nodes.len();
            if let Some(exp) = self.expiry.as_mut() {
                exp.schedule(i, live);
            }
        }
        (node.key, node.value)
    }

    /// Reclaims every entry whose deadline is at or before `now`.
    fn purge<F>(&mut self, now: u64, sink: &mut F)
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        loop {
            let live = self.nodes.len();
            let Some(exp) = self.expiry.as_mut() else {
                return;
            };
            let Some(i) = exp.next_expired(now, live) else {
                return;
            };
            let (k, v) = self.take_slot(i);
            self.stats.count(RemovalCause::Expired);
            sink(k, v, RemovalCause::Expired);
        }
    }

    /// Expiry bookkeeping before a lookup or a write: the current time (0
    /// without expiry) after reclaiming what has expired.
    #[inline(always)]
    fn advance<F>(&mut self, sink: &mut F) -> u64
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        if self.expiry.is_none() {
            return 0;
        }
        self.advance_expiry(sink)
    }

    #[inline(never)]
    fn advance_expiry<F>(&mut self, sink: &mut F) -> u64
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        match self.expiry.as_mut() {
            None => 0,
            Some(exp) => {
                let now = exp.now();
                if exp.is_due(now) {
                    self.purge(now, sink);
                }
                now
            }
        }
    }

    /// Looks up and promotes; the slot of the live entry.
    #[inline]
    pub(crate) fn get_index<Q, F>(&mut self, hash: u64, key: &Q, sink: &mut F) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        let now = self.advance(sink);
        let Some(i) = self.find(hash, key) else {
            self.stats.misses += 1;
            return None;
        };
        if let Some(exp) = self.expiry.as_mut() {
            if exp.deadline(i) <= now {
                // Unreachable while the heap invariant holds; kept as a guard.
                let (k, v) = self.take_slot(i);
                self.stats.count(RemovalCause::Expired);
                self.stats.misses += 1;
                sink(k, v, RemovalCause::Expired);
                return None;
            }
            exp.touch(i, now);
        }
        match &mut self.order {
            Order::Lru(log) => log.touch(&mut self.nodes, i),
            Order::TinyLfu(t) => t.touched(&mut self.nodes, &self.weights, i, hash),
        }
        self.stats.hits += 1;
        Some(i)
    }

    #[inline]
    pub(crate) fn value_at(&self, i: usize) -> &V {
        &self.nodes[i].value
    }

    /// Stores an entry; returns the entry it replaced (counted as
    /// `Replaced`, not passed to `sink`). Evictions and rejections go to
    /// `sink`. `ttl`: a per-entry time to live in nanoseconds (0 means
    /// already expired: not stored, cause `Expired`).
    pub(crate) fn insert_hashed<F>(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        ttl: Option<u64>,
        sink: &mut F,
    ) -> Option<(K, V)>
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        if ttl.is_some() {
            self.ensure_expiry();
        }
        let now = self.advance(sink);
        let w = match &self.weigher {
            Some(f) => f(&key, &value),
            None => 1,
        };
        let ttl = ttl.or_else(|| self.expiry.as_ref().and_then(|e| e.ttl()));
        let existing = self.find(hash, &key);
        if w > self.capacity || ttl == Some(0) {
            let cause = if w > self.capacity {
                RemovalCause::Rejected
            } else {
                RemovalCause::Expired
            };
            let old = existing.map(|i| self.take_slot(i));
            if old.is_some() {
                self.stats.count(RemovalCause::Replaced);
            }
            self.stats.count(cause);
            sink(key, value, cause);
            return old;
        }
        let ttl_at = ttl.map_or(NEVER, |t| now.saturating_add(t));
        self.stats.insertions += 1;
        let mut replaced = None;
        let tinylfu = matches!(self.order, Order::TinyLfu(_));
        if let (Some(i), true) = (existing, tinylfu && self.weigher.is_some()) {
            // W-TinyLFU with a new weight: the old entry leaves and the new
            // one enters the window, since an entry in place could lose
            // the duel that makes room for its own weight.
            replaced = Some(self.take_slot(i));
            self.stats.count(RemovalCause::Replaced);
        } else if let Some(i) = existing {
            let node = &mut self.nodes[i];
            let old_k = mem::replace(&mut node.key, key);
            let old_v = mem::replace(&mut node.value, value);
            if self.weigher.is_some() {
                // The old weight leaves now, the new one once it fits: the
                // total never exceeds the capacity, so it cannot wrap.
                self.total_weight -= self.weights[i];
                self.weights[i] = 0;
            }
            let live = self.nodes.len();
            if let Some(exp) = self.expiry.as_mut() {
                exp.set(i, ttl_at, now);
                exp.schedule(i, live);
            }
            self.stats.count(RemovalCause::Replaced);
            let log = match &mut self.order {
                Order::Lru(log) => log,
                Order::TinyLfu(t) => {
                    // Unweighted here: the weight stays 1, nothing moves.
                    t.touched(&mut self.nodes, &self.weights, i, hash);
                    return Some((old_k, old_v));
                }
            };
            log.touch(&mut self.nodes, i);
            if self.weigher.is_some() {
                // The entry is the most recently used and weighs 0 for now,
                // so the evictions never reach it, though they may move it.
                self.evict_to_fit(w, false, sink);
                if let Order::Lru(log) = &self.order {
                    if let Some(i) = log.newest(&self.nodes) {
                        self.weights[i] = w;
                        self.total_weight += w;
                    }
                }
            }
            return Some((old_k, old_v));
        }
        let reuse = match &mut self.order {
            Order::Lru(log)
                if self.weigher.is_none() && self.nodes.len() as u64 >= self.capacity =>
            {
                log.oldest(&self.nodes)
            }
            Order::Lru(_) => None,
            Order::TinyLfu(t) => {
                t.missed(hash, self.nodes.len() + 1);
                None
            }
        };
        let i = if let Some(i) = reuse {
            // Full unweighted cache: reuse the LRU slot in place.
            let old_hash = self.hasher.hash_one(&self.nodes[i].key);
            if let Ok(e) = self.table.find_entry(old_hash, |&x| x as usize == i) {
                e.remove();
            }
            let node = &mut self.nodes[i];
            let old_k = mem::replace(&mut node.key, key);
            let old_v = mem::replace(&mut node.value, value);
            if let Order::Lru(log) = &mut self.order {
                log.touch(&mut self.nodes, i);
            }
            self.stats.count(RemovalCause::Size);
            sink(old_k, old_v, RemovalCause::Size);
            if let Some(exp) = self.expiry.as_mut() {
                exp.set(i, ttl_at, now);
            }
            i
        } else {
            self.evict_to_fit(w, true, sink);
            let i = self.nodes.len();
            if i == self.nodes.capacity() {
                self.grow_slab();
            }
            self.nodes.push(Node {
                key,
                value,
                qpos: 0,
            });
            self.total_weight += w;
            if self.weigher.is_some() {
                self.weights.push(w);
            }
            if let Some(exp) = self.expiry.as_mut() {
                exp.push_slot(ttl_at, now);
            }
            match &mut self.order {
                Order::Lru(log) => log.record(&mut self.nodes, i),
                Order::TinyLfu(t) => t.inserted(&mut self.nodes, &self.weights, i),
            }
            i
        };
        let nodes = &self.nodes;
        let hasher = &self.hasher;
        self.table
            .insert_unique(hash, i as u32, |&j| hasher.hash_one(&nodes[j as usize].key));
        let live = self.nodes.len();
        if let Some(exp) = self.expiry.as_mut() {
            exp.schedule(i, live);
        }
        replaced
    }

    /// Evicts from the LRU end until `extra` more weight (at most the
    /// capacity) fits and, if `new_entry`, one more entry. Between
    /// operations the total weight is at most the capacity, so
    /// `capacity - extra` is the room left and nothing can wrap.
    fn evict_to_fit<F>(&mut self, extra: u64, new_entry: bool, sink: &mut F)
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        let room = self.capacity - extra;
        while self.total_weight > room || (new_entry && self.nodes.len() as u64 >= MAX_ENTRIES) {
            let hasher = &self.hasher;
            let victim = match &mut self.order {
                Order::Lru(log) => log.oldest(&self.nodes),
                Order::TinyLfu(t) => t.victim(&mut self.nodes, &self.weights, extra, |ns, j| {
                    hasher.hash_one(&ns[j].key)
                }),
            };
            let Some(i) = victim else {
                break;
            };
            let (k, v) = self.take_slot(i);
            self.stats.count(RemovalCause::Size);
            sink(k, v, RemovalCause::Size);
        }
    }

    /// The slab is full: doubles it, but never past an unweighted capacity,
    /// so that a full cache's slab is exactly its size.
    #[cold]
    #[inline(never)]
    fn grow_slab(&mut self) {
        let len = self.nodes.len();
        let mut more = len.max(4);
        if self.weigher.is_none() {
            let cap = usize::try_from(self.capacity).unwrap_or(usize::MAX);
            more = more.min(cap.saturating_sub(len)).max(1);
        }
        self.nodes.reserve_exact(more);
    }

    pub(crate) fn remove_hashed<Q, F>(&mut self, hash: u64, key: &Q, sink: &mut F) -> Option<(K, V)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        self.advance(sink);
        let i = self.find(hash, key)?;
        let kv = self.take_slot(i);
        self.stats.count(RemovalCause::Explicit);
        Some(kv)
    }

    pub(crate) fn contains_hashed<Q>(&self, hash: u64, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.peek_index(hash, key).is_some()
    }

    fn peek_index<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let i = self.find(hash, key)?;
        match &self.expiry {
            Some(exp) if exp.deadline(i) <= exp.peek_now() => None,
            _ => Some(i),
        }
    }

    pub(crate) fn clear_with<F>(&mut self, sink: &mut F)
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        self.table.clear();
        match &mut self.order {
            Order::Lru(log) => log.clear(),
            Order::TinyLfu(t) => t.clear(),
        }
        self.total_weight = 0;
        self.weights.clear();
        if let Some(exp) = self.expiry.as_mut() {
            exp.clear();
        }
        for n in self.nodes.drain(..) {
            self.stats.count(RemovalCause::Explicit);
            sink(n.key, n.value, RemovalCause::Explicit);
        }
    }

    pub(crate) fn purge_with<F>(&mut self, sink: &mut F)
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        self.advance(sink);
    }

    pub(crate) fn set_capacity_with<F>(
        &mut self,
        capacity: u64,
        sink: &mut F,
    ) -> Result<(), BuildError>
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        self.capacity = validate_capacity(Some(capacity), self.weigher.is_some())?;
        if let Order::TinyLfu(t) = &mut self.order {
            t.set_capacity(self.capacity);
        }
        self.advance(sink);
        self.evict_to_fit(0, false, sink);
        Ok(())
    }

    /// Runs `op`, then hands what it removed to the listener. The listener
    /// runs only once `op` has left the cache consistent, and stays in
    /// place: if it panics, the panic reaches the caller, the removals not
    /// yet delivered by this call are dropped, and the cache (listener
    /// included) is as `op` left it.
    fn notify<R>(
        &mut self,
        op: impl FnOnce(&mut Self, &mut dyn FnMut(K, V, RemovalCause)) -> R,
    ) -> R {
        if self.listener.is_none() {
            return op(self, &mut |_, _, _| {});
        }
        let mut removed = mem::take(&mut self.removed);
        let r = op(self, &mut |k, v, c| removed.push((k, v, c)));
        if let Some(l) = self.listener.as_mut() {
            for (k, v, c) in removed.drain(..) {
                l(k, v, c);
            }
        }
        self.removed = removed;
        r
    }

    // ----- public API --------------------------------------------------------

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

impl<K, V, S> fmt::Debug for LruBuilder<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LruBuilder")
            .field("capacity", &self.settings.capacity)
            .field("time_to_live", &self.settings.ttl)
            .field("time_to_idle", &self.settings.tti)
            .finish_non_exhaustive()
    }
}

/// Iterator over `(key, value)` in eviction order, the last evicted first;
/// see [`LruCache::iter`].
pub struct Iter<'a, K, V, S = ahash::RandomState> {
    cache: Option<&'a LruCache<K, V, S>>,
    /// Exact LRU: one past the next log position to look at (walking down).
    pos: u64,
    /// W-TinyLFU: where the walk over the queues is.
    cursor: (u32, u32),
    expiry: Option<(&'a Expiry, u64)>,
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> Iterator for Iter<'a, K, V, S> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.cache?;
        loop {
            let i = match &c.order {
                Order::Lru(log) => {
                    if self.pos <= log.tail() {
                        return None;
                    }
                    self.pos -= 1;
                    let Some(i) = log.live_at(&c.nodes, self.pos) else {
                        continue;
                    };
                    i
                }
                Order::TinyLfu(t) => t.walk(&mut self.cursor)?,
            };
            match self.expiry {
                Some((e, now)) if e.deadline(i) <= now => continue,
                _ => return Some((&c.nodes[i].key, &c.nodes[i].value)),
            }
        }
    }
}

impl<K, V, S> fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    fn keys(c: &LruCache<u32, u32>) -> Vec<u32> {
        c.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn lru_order_and_eviction() {
        let mut c = LruCache::new(3).unwrap();
        for k in 0..3 {
            assert_eq!(c.insert(k, k * 10), None);
        }
        assert_eq!(keys(&c), [2, 1, 0]);
        assert_eq!(c.get(&0), Some(&0));
        assert_eq!(keys(&c), [0, 2, 1]);
        c.insert(3, 30);
        assert_eq!(keys(&c), [3, 0, 2]);
        assert!(!c.contains_key(&1));
        assert_eq!(c.insert(2, 21), Some(20));
        assert_eq!(keys(&c), [2, 3, 0]);
        assert_eq!(c.peek(&0), Some(&0));
        assert_eq!(keys(&c), [2, 3, 0]);
        assert_eq!(c.remove(&3), Some(30));
        assert_eq!(keys(&c), [2, 0]);
        assert_eq!(c.pop_lru(), Some((0, 0)));
        assert_eq!(keys(&c), [2]);
        *c.get_mut(&2).unwrap() += 1;
        assert_eq!(c.peek(&2), Some(&22));
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.evicted_size, s.replaced), (2, 0, 1, 1));
    }

    /// More entries than the preallocated table holds: the slab and
    /// table grow several times, and the LRU order, weights and deadlines
    /// must survive, as must the log's compactions.
    #[test]
    fn table_growth_keeps_order_weights_and_deadlines() {
        let clock = ManualClock::new();
        let mut c = LruCache::builder()
            .max_capacity(1 << 40)
            .weigher(|k: &u32, _v: &u32| u64::from(k % 3) + 1)
            .clock(clock.clone())
            .build()
            .unwrap();
        let n = 300_000u32;
        let mut last_use = std::collections::HashMap::new();
        let mut t = 0u64;
        for k in 0..n {
            // Every seventh key expires after 1 s, the others never.
            if k % 7 == 0 {
                c.insert_with_ttl(k, k, Duration::from_secs(1));
            } else {
                c.insert(k, k);
            }
            last_use.insert(k, t);
            t += 1;
            // Re-use an older key now and then, so LRU order is not insertion order.
            if k % 5 == 0 && k > 0 {
                let old = (k * 7919) % k;
                assert_eq!(c.get(&old), Some(&old));
                last_use.insert(old, t);
                t += 1;
            }
        }
        assert_eq!(c.len(), n as usize);
        let weight: u64 = (0..n).map(|k| u64::from(k % 3) + 1).sum();
        assert_eq!(c.weighted_size(), weight);
        let mut want: Vec<u32> = (0..n).collect();
        want.sort_by_key(|k| std::cmp::Reverse(last_use[k]));
        assert_eq!(keys(&c), want);
        clock.advance(Duration::from_secs(1));
        c.purge_expired();
        want.retain(|k| k % 7 != 0);
        assert_eq!(keys(&c), want);
        let weight: u64 = want.iter().map(|k| u64::from(k % 3) + 1).sum();
        assert_eq!(c.weighted_size(), weight);
        assert_eq!(c.pop_lru().map(|(k, _)| k), want.last().copied());
    }

    #[test]
    fn weights_and_rejection() {
        let rejected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let r2 = rejected.clone();
        let mut c = LruCache::builder()
            .max_capacity(10)
            .weigher(|_k: &u32, v: &u64| *v)
            .eviction_listener(move |k, _v, cause| r2.lock().unwrap().push((k, cause)))
            .build()
            .unwrap();
        c.insert(1, 4);
        c.insert(2, 4);
        c.insert(3, 11);
        assert_eq!(c.weighted_size(), 8);
        c.insert(4, 4);
        assert_eq!(c.weighted_size(), 8);
        assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [4, 2]);
        c.insert(2, 10);
        assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2]);
        assert_eq!(
            *rejected.lock().unwrap(),
            [
                (3, RemovalCause::Rejected),
                (1, RemovalCause::Size),
                (4, RemovalCause::Size)
            ]
        );
        c.set_capacity(5).unwrap();
        assert!(c.is_empty());
    }
}
