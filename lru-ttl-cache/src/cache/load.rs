//! Single-flight loading: cache-aside (`get_or_insert_with`) and
//! read-through (`get_or_load`), and the guard that ends a load.

use std::convert::Infallible;
use std::hash::{BuildHasher, Hash};

use super::{Cache, Pending};
use crate::flight::{Flight, Outcome};
use crate::stats::RemovalCause;
use crate::sync::Arc;

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
        self.try_load(key, init).map(|(v, _)| v)
    }

    /// [`try_get_or_insert_with`](Self::try_get_or_insert_with), also
    /// telling whether the value came from this call's `init`.
    pub(super) fn try_load<E>(
        &self,
        key: K,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<(V, bool), E> {
        let hash = self.hash_of(&key);
        let shard_lock = self.shard_for(hash);
        let mut init = Some(init);
        loop {
            let mut pending = Pending::new(self.inner.listener.as_ref());
            let mut shard = shard_lock.write();
            if let Some(i) = shard.lru.get_index(hash, &key, &mut pending.sink()) {
                return Ok((shard.lru.value_at(i).clone(), false));
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
                    return init().map(|v| (v, true));
                }
                let f = Arc::clone(f);
                drop(shard);
                drop(pending);
                match f.wait() {
                    Outcome::Done(v) => return Ok((v, false)),
                    // Failed, or an error shared only with async waiters.
                    _ => continue,
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
            return Ok((guard.complete(v), true));
        }
    }

    /// Read-through: the cached value, or the builder's
    /// [`loader`](crate::CacheBuilder::loader)'s (stored, single flight). Without a
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
/// dropped without `complete` (loader error or panic, or a cancelled
/// future), releases them to retry.
pub(super) struct FlightGuard<'a, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    pub(super) cache: &'a Cache<K, V, S>,
    pub(super) hash: u64,
    pub(super) key: Option<K>,
    pub(super) flight: Arc<Flight<V>>,
}

impl<K, V, S> FlightGuard<'_, K, V, S>
where
    K: Hash + Eq,
    V: Clone,
    S: BuildHasher,
{
    pub(super) fn complete(&mut self, v: V) -> V {
        let Some(key) = self.key.take() else {
            unreachable!("complete runs once")
        };
        let cache = self.cache;
        let mut pending = Pending::new(cache.inner.listener.as_ref());
        let mut shard = cache.shard_for(self.hash).write();
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

impl<K, V, S> FlightGuard<'_, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Ends the flight without a value (the guard is then spent).
    pub(super) fn end(&mut self, outcome: Outcome<V>) {
        if let Some(key) = self.key.take() {
            let mut shard = self.cache.shard_for(self.hash).write();
            if !self.flight.is_invalidated() {
                shard.inflight.remove(&key);
            }
            drop(shard);
            self.flight.finish(outcome);
        }
    }
}

impl<K, V, S> Drop for FlightGuard<'_, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn drop(&mut self) {
        self.end(Outcome::Failed);
    }
}
