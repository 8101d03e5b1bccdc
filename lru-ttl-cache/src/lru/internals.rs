//! The operations an [`LruCache`] and a shard of [`Cache`](crate::Cache)
//! share: lookup, insertion, eviction, expiry and removal over the slab.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::mem;
use std::time::Duration;

use hashbrown::HashTable;

use super::{LruCache, Node, Order};
use crate::deadlines::{deadline_after, time_left, Deadlines, NEVER};
use crate::error::BuildError;
use crate::recency::RecencyLog;
use crate::settings::{validate_capacity, Policy, Valid, MAX_ENTRIES};
use crate::stats::{RemovalCause, Stats};
use crate::sync::StdArc;
use crate::tinylfu::TinyLfu;

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
        let expire_after = settings.expire_after.clone();
        let variable = expire_after.is_some();
        let expiry = (ttl.is_some() || tti.is_some() || variable)
            .then(|| Box::new(Deadlines::new(StdArc::clone(&clock), ttl, tti, variable, 0)));
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
            expire_after,
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
    pub(super) fn find<Q>(&self, hash: u64, key: &Q) -> Option<usize>
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
    pub(super) fn weight_at(&self, i: usize) -> u64 {
        if self.weigher.is_some() {
            self.weights[i]
        } else {
            1
        }
    }

    pub(super) fn ensure_expiry(&mut self) {
        if self.expiry.is_none() {
            self.expiry = Some(Box::new(Deadlines::new(
                StdArc::clone(&self.clock),
                None,
                None,
                false,
                self.nodes.len(),
            )));
        }
    }

    /// Removes slot `i` from the list, the table and the slab (the last slot
    /// moves into its place) and returns its entry.
    pub(super) fn take_slot(&mut self, i: usize) -> (K, V) {
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
    pub(super) fn purge<F>(&mut self, now: u64, sink: &mut F)
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
    pub(super) fn advance<F>(&mut self, sink: &mut F) -> u64
    where
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        if self.expiry.is_none() {
            return 0;
        }
        self.advance_expiry(sink)
    }

    #[inline(never)]
    pub(super) fn advance_expiry<F>(&mut self, sink: &mut F) -> u64
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
            if let Some(x) = &self.expire_after {
                let node = &self.nodes[i];
                let left = time_left(exp.policy_deadline(i), now);
                let d =
                    x.expire_after_read(&node.key, &node.value, Duration::from_nanos(now), left);
                exp.set_policy_deadline(i, deadline_after(d, now), self.nodes.len());
            }
        }
        match &mut self.order {
            Order::Lru(log) => log.touch(&mut self.nodes, i),
            Order::TinyLfu(t) => t.touched(&mut self.nodes, &self.weights, i, hash),
        }
        self.stats.hits += 1;
        Some(i)
    }

    /// Hits that a shard's read path recorded by key hash, replayed into
    /// the policy in order (W-TinyLFU; exact LRU records none). The slab
    /// moves an entry when another is removed, so each is found again by
    /// its hash, and a hit on an entry that has left since is dropped.
    /// Statistics are untouched: the read path counted the hits.
    pub(crate) fn replay_hits(&mut self, hashes: &[u64]) {
        let Order::TinyLfu(t) = &mut self.order else {
            return;
        };
        for &hash in hashes {
            let (nodes, hasher) = (&self.nodes, &self.hasher);
            let Some(&i) = self
                .table
                .find(hash, |&i| hasher.hash_one(&nodes[i as usize].key) == hash)
            else {
                continue;
            };
            t.touched(&mut self.nodes, &self.weights, i as usize, hash);
        }
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
        let policy_at = match (&self.expire_after, &self.expiry) {
            (Some(x), Some(exp)) => {
                let at = Duration::from_nanos(now);
                deadline_after(
                    match existing {
                        Some(i) => {
                            let left = time_left(exp.policy_deadline(i), now);
                            x.expire_after_update(&key, &value, at, left)
                        }
                        None => x.expire_after_create(&key, &value, at),
                    },
                    now,
                )
            }
            _ => NEVER,
        };
        if w > self.capacity || ttl == Some(0) || policy_at <= now {
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
                exp.set_policy(i, policy_at);
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
                exp.set_policy(i, policy_at);
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
                exp.set_policy(i, policy_at);
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
    pub(super) fn evict_to_fit<F>(&mut self, extra: u64, new_entry: bool, sink: &mut F)
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
    pub(super) fn grow_slab(&mut self) {
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

    /// The slot of the live entry for `key`, recency and statistics
    /// untouched (time is read, not advanced: nothing is reclaimed).
    #[inline]
    pub(crate) fn peek_index<Q>(&self, hash: u64, key: &Q) -> Option<usize>
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

    /// Whether entries are weighed (the capacity is then a weight).
    pub(crate) fn is_weighted(&self) -> bool {
        self.weigher.is_some()
    }

    /// Reclaims what has expired, then removes every live entry `keep`
    /// rejects (cause `Explicit`, to `sink`); returns how many it removed.
    /// Slots are visited from the last down, so the slot that `take_slot`
    /// moves into a freed place has been visited already.
    pub(crate) fn retain_with<P, F>(&mut self, mut keep: P, sink: &mut F) -> usize
    where
        P: FnMut(&K, &mut V) -> bool,
        F: FnMut(K, V, RemovalCause) + ?Sized,
    {
        self.advance(sink);
        let mut removed = 0;
        for i in (0..self.nodes.len()).rev() {
            let node = &mut self.nodes[i];
            if !keep(&node.key, &mut node.value) {
                let (k, v) = self.take_slot(i);
                self.stats.count(RemovalCause::Explicit);
                sink(k, v, RemovalCause::Explicit);
                removed += 1;
            }
        }
        removed
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
    pub(super) fn notify<R>(
        &mut self,
        op: impl FnOnce(&mut Self, &mut dyn FnMut(K, V, RemovalCause)) -> R,
    ) -> R {
        if self.listener.is_none() {
            return op(self, &mut |_, _, _| {});
        }
        let mut removed = mem::take(&mut self.removed);
        let r = op(self, &mut |k, v, c| removed.push((k, v, c)));
        if let Some(l) = self.listener.as_mut() {
            let l = l.get_mut();
            for (k, v, c) in removed.drain(..) {
                l(k, v, c);
            }
        }
        self.removed = removed;
        r
    }
}
