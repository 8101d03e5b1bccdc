//! The entry API of [`Cache`]: `cache.entry(key).or_insert_with(..)` and
//! friends, returning an [`Entry`] that says whether the value is fresh.

use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use super::{invalidate_flight, Cache, Pending};
use crate::stats::RemovalCause;

/// A snapshot of one entry: its key, a clone of its value, and whether
/// this call produced the value (as moka's `Entry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<K, V> {
    key: K,
    value: V,
    fresh: bool,
}

impl<K, V> Entry<K, V> {
    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The value (a clone of the cached one).
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, consuming the entry.
    pub fn into_value(self) -> V {
        self.value
    }

    /// Whether this call's value or `init` produced the value (`false`: it
    /// was cached, or another caller's single-flight load produced it).
    /// A fresh value is not necessarily stored: one heavier than its
    /// shard's capacity, or expiring at once, is returned all the same.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }
}

/// Chooses what to do with one key of a [`Cache`]; see [`Cache::entry`].
pub struct EntrySelector<'a, K, V, S> {
    cache: &'a Cache<K, V, S>,
    key: K,
}

impl<K, V, S> fmt::Debug for EntrySelector<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrySelector").finish_non_exhaustive()
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// The entry API for `key`.
    ///
    /// ```
    /// use sysblocks_lru_ttl_cache::Cache;
    ///
    /// let cache = Cache::builder().max_capacity(10).build()?;
    /// let e = cache.entry("k").or_insert_with(|| 1);
    /// assert!(e.is_fresh());
    /// let e = cache.entry("k").or_insert_with(|| 2);
    /// assert!(!e.is_fresh());
    /// assert_eq!(e.into_value(), 1);
    /// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
    /// ```
    pub fn entry(&self, key: K) -> EntrySelector<'_, K, V, S> {
        EntrySelector { cache: self, key }
    }
}

impl<K, V, S> EntrySelector<'_, K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// The cached value, or `value`, stored (a live entry counts as a hit,
    /// and is made the most recently used). Storing is a write, as
    /// [`Cache::insert`]: a load in flight for the key is not waited for,
    /// and its value will not be stored.
    pub fn or_insert(self, value: V) -> Entry<K, V> {
        let cache = self.cache;
        let hash = cache.hash_of(&self.key);
        let mut pending = Pending::new(cache.inner.listener.as_ref());
        let mut shard = cache.shard_for(hash).write();
        if let Some(i) = shard.lru.get_index(hash, &self.key, &mut pending.sink()) {
            let value = shard.lru.value_at(i).clone();
            return Entry {
                key: self.key,
                value,
                fresh: false,
            };
        }
        invalidate_flight(&mut shard, &self.key);
        let old = shard.lru.insert_hashed(
            hash,
            self.key.clone(),
            value.clone(),
            None,
            &mut pending.sink(),
        );
        drop(shard);
        if let Some((k, v)) = old {
            // Unreachable (the key was absent); reported all the same.
            pending.push(k, v, RemovalCause::Replaced);
        }
        Entry {
            key: self.key,
            value,
            fresh: true,
        }
    }

    /// The cached value, or `init()`'s, stored, with single flight: as
    /// [`Cache::get_or_insert_with`] (including re-entrant calls and
    /// panics).
    pub fn or_insert_with(self, init: impl FnOnce() -> V) -> Entry<K, V> {
        match self.or_try_insert_with(|| Ok::<V, Infallible>(init())) {
            Ok(e) => e,
            Err(e) => match e {},
        }
    }

    /// [`or_insert_with`](Self::or_insert_with) with `V::default()`.
    pub fn or_default(self) -> Entry<K, V>
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// The cached value, or `init()`'s, stored, with single flight: as
    /// [`Cache::try_get_or_insert_with`].
    ///
    /// # Errors
    ///
    /// `init`'s error; nothing is stored.
    pub fn or_try_insert_with<E>(
        self,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<Entry<K, V>, E> {
        let (value, fresh) = self.cache.try_load(self.key.clone(), init)?;
        Ok(Entry {
            key: self.key,
            value,
            fresh,
        })
    }
}
