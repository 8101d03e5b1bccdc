//! Write-through: writes go to the backing store first, then to the cache.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use crate::cache::Cache;

/// The backing store of a [`WriteThrough`] cache (a database, a service).
pub trait Store<K, V> {
    /// The store's error.
    type Error;

    /// Reads the value for `key` (`Ok(None)`: no such key).
    ///
    /// # Errors
    ///
    /// The store could not answer.
    fn read(&self, key: &K) -> Result<Option<V>, Self::Error>;

    /// Writes `value` for `key`.
    ///
    /// # Errors
    ///
    /// The write did not happen.
    fn write(&self, key: &K, value: &V) -> Result<(), Self::Error>;

    /// Deletes `key`.
    ///
    /// # Errors
    ///
    /// The delete did not happen.
    fn delete(&self, key: &K) -> Result<(), Self::Error>;
}

/// A [`Cache`] in front of a [`Store`]: reads are cache-aside with single
/// flight, writes go to the store first and reach the cache only if the
/// store accepted them, so the cache never holds a value the store refused.
///
/// ```
/// use sysblocks_lru_ttl_cache::{Cache, Store, WriteThrough};
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Db(Mutex<HashMap<u32, String>>);
///
/// impl Store<u32, String> for Db {
///     type Error = String;
///     fn read(&self, k: &u32) -> Result<Option<String>, String> {
///         Ok(self.0.lock().unwrap().get(k).cloned())
///     }
///     fn write(&self, k: &u32, v: &String) -> Result<(), String> {
///         if v.is_empty() {
///             return Err("empty value".into());
///         }
///         self.0.lock().unwrap().insert(*k, v.clone());
///         Ok(())
///     }
///     fn delete(&self, k: &u32) -> Result<(), String> {
///         self.0.lock().unwrap().remove(k);
///         Ok(())
///     }
/// }
///
/// let wt = WriteThrough::new(Cache::builder().max_capacity(100).build()?, Db::default());
/// wt.put(1, "one".to_string()).unwrap();
/// assert!(wt.put(1, String::new()).is_err()); // refused: the cache keeps "one"
/// assert_eq!(wt.cache().get(&1).as_deref(), Some("one"));
/// assert_eq!(wt.get(&1).unwrap().as_deref(), Some("one"));
/// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
/// ```
pub struct WriteThrough<K, V, St, S = ahash::RandomState> {
    cache: Cache<K, V, S>,
    store: St,
}

impl<K, V, St, S> fmt::Debug for WriteThrough<K, V, St, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteThrough")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<K, V, St, S> WriteThrough<K, V, St, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    St: Store<K, V>,
    S: BuildHasher,
{
    /// Puts `cache` in front of `store`.
    pub fn new(cache: Cache<K, V, S>, store: St) -> Self {
        Self { cache, store }
    }

    /// The cached value, or the store's (then cached). Concurrent misses on
    /// one key read the store once.
    ///
    /// # Errors
    ///
    /// The store's read error (nothing is cached).
    pub fn get(&self, key: &K) -> Result<Option<V>, St::Error> {
        match self
            .cache
            .try_get_or_insert_with(key.clone(), || match self.store.read(key) {
                Ok(Some(v)) => Ok(v),
                Ok(None) => Err(None),
                Err(e) => Err(Some(e)),
            }) {
            Ok(v) => Ok(Some(v)),
            Err(None) => Ok(None),
            Err(Some(e)) => Err(e),
        }
    }

    /// Writes to the store, then (only if it succeeded) to the cache.
    ///
    /// # Errors
    ///
    /// The store's write error; the cache is then unchanged.
    pub fn put(&self, key: K, value: V) -> Result<(), St::Error> {
        self.store.write(&key, &value)?;
        self.cache.insert(key, value);
        Ok(())
    }

    /// Deletes from the store, then (only if it succeeded) from the cache.
    ///
    /// # Errors
    ///
    /// The store's delete error; the cache is then unchanged.
    pub fn delete(&self, key: &K) -> Result<(), St::Error> {
        self.store.delete(key)?;
        self.cache.remove(key);
        Ok(())
    }

    /// The cache.
    pub fn cache(&self) -> &Cache<K, V, S> {
        &self.cache
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }
}
