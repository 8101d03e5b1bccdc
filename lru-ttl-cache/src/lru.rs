//! The single-threaded exact LRU, which is also the shard of [`Cache`](crate::Cache).
//!
//! Layout: entries live in a slab (`Vec<Node>`); a `hashbrown::HashTable<u32>`
//! maps a key's hash to its slot (the hash is recomputed from the key when
//! the table grows, so it is not stored). A removed slot is filled by moving
//! the last slot into it, so the slab never has holes.
//!
//! Recency is an append-only log of slot numbers (a ring of `u32`): every
//! use appends a record and stamps the node with the record's position; a
//! record is live iff its node still carries its position. The least
//! recently used entry is the oldest live record, which is exactly LRU
//! order. A hit therefore writes only to its own node and to the log's
//! tail, never to neighbouring nodes as a linked list must, which saves two
//! cache misses per hit. When the log fills, stale records are dropped and
//! the log is resized to three times the live entries, so compaction is
//! O(1) amortised per use. A `u64 -> u64` cache pays 24 bytes of slab,
//! about 10 bytes of table and 6 to 12 bytes of log per entry.
//!
//! Weights and expiry times live in parallel vectors that exist only when a
//! weigher or a TTL is in use. Expiry: every entry with a deadline has an
//! entry in a min-heap of `(deadline, slot)`. Heap entries are never updated
//! in place: a heap entry is acted on only if its slot still holds an entry
//! whose current deadline has passed; if the slot's deadline moved later
//! (time to idle), it is pushed again. The invariant "every live entry has a
//! heap entry no later than its deadline" makes `purge` exact, and the heap
//! is rebuilt from the slab when stale entries outnumber live ones, so it
//! stays bounded.

use std::borrow::Borrow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::time::Duration;

use hashbrown::HashTable;
use sysblocks_clock::{saturating_nanos, Clock, MonotonicClock, SharedClock};

use crate::error::BuildError;
use crate::stats::{RemovalCause, Stats};
use crate::sync::StdArc;

const NEVER: u64 = u64::MAX;

/// The most entries one [`LruCache`] (or one shard of a
/// [`Cache`](crate::Cache)) holds, whatever its weighted capacity: slots are
/// `u32` indices. An unweighted capacity above this is a [`BuildError`].
pub const MAX_ENTRIES: u64 = (u32::MAX - 1) as u64;

/// Slots reserved up front, at most: a cache with a huge capacity that stays
/// small does not pay for it.
const MAX_PREALLOC: u64 = 1 << 16;

/// The weigher a builder stores: entry weight in capacity units.
pub(crate) type Weigher<K, V> = StdArc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// An eviction listener of an [`LruCache`].
type LocalListener<K, V> = Box<dyn FnMut(K, V, RemovalCause) + Send>;

struct Node<K, V> {
    key: K,
    value: V,
    /// Position (truncated to `u32`) of this entry's latest record in the
    /// recency log.
    qpos: u32,
}

/// Expiry state: present only when a TTL or TTI is configured or a per-entry
/// TTL was used.
struct Expiry {
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
    fn new(clock: SharedClock, ttl: Option<u64>, tti: Option<u64>, slots: usize) -> Self {
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

    /// The current time, never `NEVER` (so a saturated deadline is never
    /// reached, even by a saturated clock).
    #[inline]
    fn now(&mut self) -> u64 {
        let n = self.clock.now_nanos().min(NEVER - 1);
        if n > self.last_now {
            self.last_now = n;
        }
        self.last_now
    }

    #[inline]
    fn peek_now(&self) -> u64 {
        self.clock.now_nanos().min(NEVER - 1).max(self.last_now)
    }

    #[inline]
    fn deadline(&self, i: usize) -> u64 {
        let d = self.ttl_at[i];
        if self.tti.is_some() {
            d.min(self.idle_at[i])
        } else {
            d
        }
    }

    fn set(&mut self, i: usize, ttl_at: u64, now: u64) {
        self.ttl_at[i] = ttl_at;
        if let Some(tti) = self.tti {
            self.idle_at[i] = now.saturating_add(tti);
        }
    }

    fn push_slot(&mut self, ttl_at: u64, now: u64) {
        self.ttl_at.push(ttl_at);
        if let Some(tti) = self.tti {
            self.idle_at.push(now.saturating_add(tti));
        }
    }

    fn swap_remove(&mut self, i: usize) {
        self.ttl_at.swap_remove(i);
        if self.tti.is_some() {
            self.idle_at.swap_remove(i);
        }
    }

    /// Records that slot `i` must be looked at no later than its deadline.
    fn schedule(&mut self, i: usize, live: usize) {
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

    fn clear(&mut self) {
        self.ttl_at.clear();
        self.idle_at.clear();
        self.heap.clear();
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
    /// The recency log: a ring of slot numbers, one record per use, oldest
    /// at `qtail`. A record is live iff its slot's `qpos` is its position.
    ring: Vec<u32>,
    /// Absolute position of the next record.
    qhead: u64,
    /// Absolute position of the oldest record that may be live.
    qtail: u64,
    hasher: S,
    capacity: u64,
    weigher: Option<Weigher<K, V>>,
    /// Per slot weight; empty without a weigher (every entry weighs 1).
    weights: Vec<u64>,
    total_weight: u64,
    expiry: Option<Box<Expiry>>,
    clock: SharedClock,
    listener: Option<LocalListener<K, V>>,
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
    capacity: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    ttl: Option<Duration>,
    tti: Option<Duration>,
    clock: Option<SharedClock>,
    hasher: S,
    listener: Option<LocalListener<K, V>>,
}

impl<K, V> LruBuilder<K, V> {
    fn new() -> Self {
        Self {
            capacity: None,
            weigher: None,
            ttl: None,
            tti: None,
            clock: None,
            hasher: ahash::RandomState::new(),
            listener: None,
        }
    }
}

impl<K, V, S> LruBuilder<K, V, S> {
    /// The capacity: entries, or total weight when a weigher is set.
    #[must_use]
    pub fn max_capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Weighs each entry (computed once, at insert); the capacity then
    /// bounds the total weight. An entry heavier than the capacity is not
    /// stored (cause [`RemovalCause::Rejected`]).
    #[must_use]
    pub fn weigher(mut self, f: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Some(StdArc::new(f));
        self
    }

    /// Every entry expires this long after it was inserted (unless inserted
    /// with its own TTL).
    #[must_use]
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Every entry expires this long after its last read or write.
    #[must_use]
    pub fn time_to_idle(mut self, tti: Duration) -> Self {
        self.tti = Some(tti);
        self
    }

    /// The clock expiry is measured with (default: a [`MonotonicClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(StdArc::new(clock));
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
            capacity: self.capacity,
            weigher: self.weigher,
            ttl: self.ttl,
            tti: self.tti,
            clock: self.clock,
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
        let Common {
            capacity,
            ttl,
            tti,
            clock,
        } = Common::validate(
            self.capacity,
            self.weigher.is_some(),
            self.ttl,
            self.tti,
            self.clock,
        )?;
        let mut c = LruCache::from_parts(
            capacity,
            self.weigher,
            ttl,
            tti,
            clock,
            self.hasher,
            capacity.min(MAX_PREALLOC) as usize,
        );
        c.listener = self.listener;
        Ok(c)
    }
}

/// The settings [`LruBuilder`] and [`CacheBuilder`](crate::CacheBuilder)
/// share, validated in one place (capacity, then time to live, then time
/// to idle, so both report the same error for the same settings).
pub(crate) struct Common {
    pub(crate) capacity: u64,
    /// Nanoseconds.
    pub(crate) ttl: Option<u64>,
    /// Nanoseconds.
    pub(crate) tti: Option<u64>,
    pub(crate) clock: SharedClock,
}

impl Common {
    /// `weighted`: the capacity is a weight, so [`MAX_ENTRIES`] does not
    /// bound it.
    pub(crate) fn validate(
        capacity: Option<u64>,
        weighted: bool,
        ttl: Option<Duration>,
        tti: Option<Duration>,
        clock: Option<SharedClock>,
    ) -> Result<Self, BuildError> {
        Ok(Self {
            capacity: validate_capacity(capacity, weighted)?,
            ttl: validate_duration(ttl, "time_to_live")?,
            tti: validate_duration(tti, "time_to_idle")?,
            clock: clock.unwrap_or_else(|| StdArc::new(MonotonicClock::new())),
        })
    }
}

pub(crate) fn validate_capacity(capacity: Option<u64>, weighted: bool) -> Result<u64, BuildError> {
    match capacity {
        None | Some(0) => Err(BuildError::Zero {
            setting: "max_capacity",
        }),
        Some(c) if !weighted && c > MAX_ENTRIES => Err(BuildError::TooLarge {
            setting: "max_capacity",
            max: MAX_ENTRIES,
        }),
        Some(c) => Ok(c),
    }
}

fn validate_duration(
    d: Option<Duration>,
    setting: &'static str,
) -> Result<Option<u64>, BuildError> {
    match d {
        Some(d) if d.is_zero() => Err(BuildError::Zero { setting }),
        Some(d) => Ok(Some(saturating_nanos(d))),
        None => Ok(None),
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> LruCache<K, V, S> {
    pub(crate) fn from_parts(
        capacity: u64,
        weigher: Option<Weigher<K, V>>,
        ttl: Option<u64>,
        tti: Option<u64>,
        clock: SharedClock,
        hasher: S,
        prealloc: usize,
    ) -> Self {
        let expiry = (ttl.is_some() || tti.is_some())
            .then(|| Box::new(Expiry::new(StdArc::clone(&clock), ttl, tti, 0)));
        Self {
            table: HashTable::with_capacity(prealloc),
            nodes: Vec::with_capacity(prealloc),
            ring: Vec::new(),
            qhead: 0,
            qtail: 0,
            hasher,
            capacity,
            weights: if weigher.is_some() {
                Vec::with_capacity(prealloc)
            } else {
                Vec::new()
            },
            weigher,
            total_weight: 0,
            expiry,
            clock,
            listener: None,
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

    /// Appends a use of slot `i` to the recency log (compacting the log
    /// first when it is full).
    #[inline]
    fn log_use(&mut self, i: usize) {
        if (self.qhead - self.qtail) as usize >= self.ring.len() {
            self.compact_log();
        }
        let mask = self.ring.len() - 1;
        self.ring[self.qhead as usize & mask] = i as u32;
        self.nodes[i].qpos = self.qhead as u32;
        self.qhead += 1;
    }

    /// The slot whose record at `pos` is live, if it is.
    #[inline]
    fn live_at(&self, pos: u64) -> Option<usize> {
        let s = self.ring[pos as usize & (self.ring.len() - 1)] as usize;
        (s < self.nodes.len() && self.nodes[s].qpos == pos as u32).then_some(s)
    }

    /// Drops stale records and sizes the log to three times the live
    /// entries (rounded up to a power of two), so compaction (O(log))
    /// happens at most once per `2 * len` uses: O(1) amortised. When the
    /// size is unchanged (a full cache in steady state) the live records are
    /// slid down in place: no allocation, no zeroing.
    #[cold]
    fn compact_log(&mut self) {
        let live = self.nodes.len();
        let cap = (3 * live).max(64).next_power_of_two();
        if cap == self.ring.len() {
            // Record `p` moves to position `w <= p`, whose slot was already
            // read, so nothing unread is overwritten. Positions in the
            // window differ by less than the ring size (< 2^32), so the
            // truncated `qpos` still names exactly one of them.
            let mask = self.ring.len() - 1;
            let mut w = self.qtail;
            for p in self.qtail..self.qhead {
                let s = self.ring[p as usize & mask];
                if let Some(n) = self.nodes.get_mut(s as usize) {
                    if n.qpos == p as u32 {
                        n.qpos = w as u32;
                        self.ring[w as usize & mask] = s;
                        w += 1;
                    }
                }
            }
            self.qhead = w;
            return;
        }
        let mut ring = Vec::with_capacity(cap);
        for p in self.qtail..self.qhead {
            if let Some(s) = self.live_at(p) {
                ring.push(s as u32);
            }
        }
        for (j, &s) in ring.iter().enumerate() {
            self.nodes[s as usize].qpos = j as u32;
        }
        self.qtail = 0;
        self.qhead = ring.len() as u64;
        ring.resize(cap, 0);
        self.ring = ring;
    }

    /// Makes slot `i` the most recently used.
    #[inline]
    fn touch(&mut self, i: usize) {
        if self.qhead == 0 || self.nodes[i].qpos != (self.qhead - 1) as u32 {
            self.log_use(i);
        }
    }

    /// The least recently used slot (skipping stale records for good).
    #[inline]
    fn lru_slot(&mut self) -> Option<usize> {
        while self.qtail < self.qhead {
            if let Some(s) = self.live_at(self.qtail) {
                return Some(s);
            }
            self.qtail += 1;
        }
        None
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
        let last = self.nodes.len() - 1;
        let node = self.nodes.swap_remove(i);
        if self.weigher.is_some() {
            self.weights.swap_remove(i);
        }
        if let Some(exp) = self.expiry.as_mut() {
            exp.swap_remove(i);
        }
        if i != last {
            // The moved entry keeps its place in the log, under its new slot.
            let mask = self.ring.len() - 1;
            self.ring[self.nodes[i].qpos as usize & mask] = i as u32;
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
            let i = match exp.heap.peek() {
                Some(&Reverse((d, i))) if d <= now => i as usize,
                _ => return,
            };
            exp.heap.pop();
            if i >= live {
                continue;
            }
            if exp.deadline(i) <= now {
                let (k, v) = self.take_slot(i);
                self.stats.count(RemovalCause::Expired);
                sink(k, v, RemovalCause::Expired);
            } else {
                exp.schedule(i, live);
            }
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
                if matches!(exp.heap.peek(), Some(&Reverse((d, _))) if d <= now) {
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
            if let Some(tti) = exp.tti {
                exp.idle_at[i] = now.saturating_add(tti);
            }
        }
        self.touch(i);
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
        let ttl = ttl.or_else(|| self.expiry.as_ref().and_then(|e| e.ttl));
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
        if let Some(i) = existing {
            let node = &mut self.nodes[i];
            let old_k = mem::replace(&mut node.key, key);
            let old_v = mem::replace(&mut node.value, value);
            if self.weigher.is_some() {
                self.total_weight = self.total_weight - self.weights[i] + w;
                self.weights[i] = w;
            }
            let live = self.nodes.len();
            if let Some(exp) = self.expiry.as_mut() {
                exp.set(i, ttl_at, now);
                exp.schedule(i, live);
            }
            self.touch(i);
            self.stats.count(RemovalCause::Replaced);
            self.evict_to_fit(0, sink);
            return Some((old_k, old_v));
        }
        let reuse = if self.weigher.is_none() && self.nodes.len() as u64 >= self.capacity {
            self.lru_slot()
        } else {
            None
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
            self.touch(i);
            self.stats.count(RemovalCause::Size);
            sink(old_k, old_v, RemovalCause::Size);
            if let Some(exp) = self.expiry.as_mut() {
                exp.set(i, ttl_at, now);
            }
            i
        } else {
            self.evict_to_fit(w, sink);
            let i = self.nodes.len();
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
            self.log_use(i);
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
        None
    }

    /// Evicts from the LRU end until `extra` more weight (and one more
    /// entry, if `extra > 0`) fits.
    fn evict_to_fit<F>(&mut self, extra: u64, sink: &mut F)
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        let extra_entry = u64::from(extra > 0);
        while self.total_weight + extra > self.capacity
            || self.nodes.len() as u64 + extra_entry > MAX_ENTRIES
        {
            let Some(i) = self.lru_slot() else {
                break;
            };
            let (k, v) = self.take_slot(i);
            self.stats.count(RemovalCause::Size);
            sink(k, v, RemovalCause::Size);
        }
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
        self.qhead = 0;
        self.qtail = 0;
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
        self.advance(sink);
        self.evict_to_fit(0, sink);
        Ok(())
    }

    /// Runs `op` with the listener (or a no-op) as the sink.
    fn notify<R>(
        &mut self,
        op: impl FnOnce(&mut Self, &mut dyn FnMut(K, V, RemovalCause)) -> R,
    ) -> R {
        match self.listener.take() {
            None => op(self, &mut |_, _, _| {}),
            Some(mut l) => {
                let r = op(self, &mut |k, v, c| l(k, v, c));
                self.listener = Some(l);
                r
            }
        }
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

    /// Removes and returns the least recently used live entry.
    pub fn pop_lru(&mut self) -> Option<(K, V)> {
        self.notify(|c, s| {
            c.advance(s);
            let i = c.lru_slot()?;
            let kv = c.take_slot(i);
            c.stats.count(RemovalCause::Explicit);
            Some(kv)
        })
    }

    /// Entries from the most to the least recently used, skipping expired
    /// ones.
    pub fn iter(&self) -> Iter<'_, K, V, S> {
        Iter {
            cache: Some(self),
            pos: self.qhead,
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
            .field("capacity", &self.capacity)
            .field("time_to_live", &self.ttl)
            .field("time_to_idle", &self.tti)
            .finish_non_exhaustive()
    }
}

/// Iterator over `(key, value)` from the most to the least recently used;
/// see [`LruCache::iter`].
pub struct Iter<'a, K, V, S = ahash::RandomState> {
    cache: Option<&'a LruCache<K, V, S>>,
    /// One past the next log position to look at (walking down).
    pos: u64,
    expiry: Option<(&'a Expiry, u64)>,
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> Iterator for Iter<'a, K, V, S> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.cache?;
        while self.pos > c.qtail {
            self.pos -= 1;
            let Some(i) = c.live_at(self.pos) else {
                continue;
            };
            match self.expiry {
                Some((e, now)) if e.deadline(i) <= now => continue,
                _ => return Some((&c.nodes[i].key, &c.nodes[i].value)),
            }
        }
        None
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

    #[test]
    fn bad_settings_are_errors() {
        assert_eq!(
            LruCache::<u32, u32>::new(0).unwrap_err(),
            BuildError::Zero {
                setting: "max_capacity"
            }
        );
        let e = LruCache::<u32, u32>::builder()
            .max_capacity(1)
            .time_to_live(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            BuildError::Zero {
                setting: "time_to_live"
            }
        );
        let e = LruCache::<u32, u32>::builder()
            .max_capacity(1)
            .time_to_idle(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            BuildError::Zero {
                setting: "time_to_idle"
            }
        );
        assert!(matches!(
            LruCache::<u32, u32>::new(u64::MAX),
            Err(BuildError::TooLarge { .. })
        ));
        let mut c = LruCache::<u32, u32>::new(2).unwrap();
        assert!(c.set_capacity(0).is_err());
        assert_eq!(c.capacity(), 2);
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

    /// Hits only, on a full cache: the log fills with stale records and is
    /// compacted in place many times; the order must stay exact.
    #[test]
    fn log_compaction_keeps_exact_order() {
        let cap = 50u32;
        let mut c = LruCache::new(u64::from(cap)).unwrap();
        let mut model: Vec<u32> = Vec::new(); // most recent first
        for k in 0..cap {
            c.insert(k, k);
            model.insert(0, k);
        }
        let mut x = 12345u32;
        for step in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Skewed: low keys are hot, so many records go stale.
            let k = (x >> 16) % cap % ((x >> 8) % cap + 1);
            assert_eq!(c.get(&k), Some(&k));
            let at = model.iter().position(|&m| m == k).unwrap();
            model.remove(at);
            model.insert(0, k);
            if step % 1000 == 0 {
                assert_eq!(keys(&c), model);
            }
        }
        assert_eq!(keys(&c), model);
        // Evictions follow the same order.
        for k in 1000..1010 {
            c.insert(k, k);
            let lru = model.pop().unwrap();
            assert!(!c.contains_key(&lru));
            model.insert(0, k);
        }
        assert_eq!(keys(&c), model);
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
