//! Operations over every shard: `retain`, `invalidate_entries_if`,
//! `iter` and `set_capacity`.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use super::{Cache, Pending};
use crate::error::BuildError;
use crate::settings::validate_capacity;

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Keeps only the entries for which `keep` returns true; the others
    /// leave as [`RemovalCause::Explicit`](crate::RemovalCause::Explicit).
    ///
    /// Shard by shard: each shard is locked while `keep` runs over its
    /// entries, so `keep` must not use the cache (it would deadlock on
    /// that shard). Expired entries are reclaimed first and never shown
    /// to `keep`. Writes to a shard already visited, or not yet, may or
    /// may not be seen: the call is atomic per shard, not over the cache.
    /// The listener runs after each shard's lock is released. Recency and
    /// hit statistics are untouched.
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.remove_where(|k, v| !keep(k, v));
    }

    /// Removes every entry for which `pred` returns true (as
    /// [`RemovalCause::Explicit`](crate::RemovalCause::Explicit)) and returns
    /// how many it removed. Immediate and per shard, as
    /// [`retain`](Self::retain): entries written after the call has passed
    /// their shard are not tested.
    pub fn invalidate_entries_if(&self, pred: impl FnMut(&K, &V) -> bool) -> usize {
        self.remove_where(pred)
    }

    fn remove_where(&self, mut pred: impl FnMut(&K, &V) -> bool) -> usize {
        let mut removed = 0;
        for s in self.inner.shards.iter() {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = s.write();
            removed += shard
                .lru
                .retain_with(|k, v| !pred(k, v), &mut pending.sink());
            drop(shard);
        }
        removed
    }

    /// Changes the capacity at run time, split between the shards as at
    /// build time. Shrinking evicts in each shard by its policy's order
    /// (least recently used first; under W-TinyLFU the policy's victims),
    /// with [`RemovalCause::Size`](crate::RemovalCause::Size); under
    /// W-TinyLFU the window and protected segment are resized with it.
    ///
    /// Shards are resized one after the other: while the call runs, some
    /// hold the new share and some the old. Concurrent `set_capacity`
    /// calls are applied one at a time. The listener runs once every
    /// shard is resized.
    ///
    /// # Errors
    ///
    /// As [`CacheBuilder::build`](crate::CacheBuilder::build) for
    /// `max_capacity`: [`BuildError::Zero`] for zero,
    /// [`BuildError::Conflict`] for fewer entries than shards,
    /// [`BuildError::TooLarge`] for an unweighted share above
    /// [`MAX_ENTRIES`](crate::MAX_ENTRIES). The cache is then unchanged.
    pub fn set_capacity(&self, capacity: u64) -> Result<(), BuildError> {
        let shards = &self.inner.shards;
        let n = shards.len() as u64;
        let weighted = shards[0].read().lru.is_weighted();
        validate_capacity(Some(capacity), true)?;
        if n > capacity {
            return Err(BuildError::Conflict {
                setting: "shards",
                reason: "more shards than max_capacity",
            });
        }
        let (base, extra) = (capacity / n, capacity % n);
        // The largest share is the first; checking it checks them all.
        validate_capacity(Some(base + u64::from(extra > 0)), weighted)?;
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut current = self.inner.capacity.lock();
        for (i, s) in shards.iter().enumerate() {
            let cap = base + u64::from((i as u64) < extra);
            let mut shard = s.write();
            if let Err(e) = shard.lru.set_capacity_with(cap, &mut pending.sink()) {
                unreachable!("share validated above: {e}")
            }
        }
        *current = capacity;
        drop(current);
        drop(pending);
        Ok(())
    }

    /// The live entries, as clones, shard by shard.
    ///
    /// A weakly consistent snapshot: when the iterator reaches a shard it
    /// copies that shard's live entries under its lock (in the shard's
    /// eviction order, as [`LruCache::iter`](crate::LruCache::iter)) and
    /// releases it before yielding them. So each shard is seen at one
    /// instant, but different shards at different ones: an entry written
    /// while the iteration runs is seen or not depending on its shard, an
    /// entry is never seen twice, and no lock is held between calls to
    /// `next`. Recency and statistics are untouched. Memory: one shard's
    /// entries at a time.
    pub fn iter(&self) -> CacheIter<'_, K, V, S>
    where
        K: Clone,
        V: Clone,
    {
        CacheIter {
            cache: self,
            next_shard: 0,
            buf: Vec::new().into_iter(),
        }
    }
}

/// Iterator over a [`Cache`]'s entries, shard by shard; see [`Cache::iter`].
pub struct CacheIter<'a, K, V, S = ahash::RandomState> {
    cache: &'a Cache<K, V, S>,
    next_shard: usize,
    buf: std::vec::IntoIter<(K, V)>,
}

impl<K, V, S> Iterator for CacheIter<'_, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        loop {
            if let Some(kv) = self.buf.next() {
                return Some(kv);
            }
            let s = self.cache.inner.shards.get(self.next_shard)?;
            self.next_shard += 1;
            let shard = s.write();
            let copy: Vec<(K, V)> = shard
                .lru
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            drop(shard);
            self.buf = copy.into_iter();
        }
    }
}

impl<K, V, S> fmt::Debug for CacheIter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheIter")
            .field("next_shard", &self.next_shard)
            .finish_non_exhaustive()
    }
}
