//! Write-through to the user's backing store, with the `Store` trait of
//! `sysblocks-lru-ttl-cache`.

use std::fmt;

use bytes::Bytes;
use sysblocks_lru_ttl_cache::Store;

use crate::client::DistCache;
use crate::error::{LoadError, WriteError};
use crate::sync::Arc;

/// A [`DistCache`] in front of a [`Store`] (a database): reads are
/// cache-aside with single flight ([`DistCache::get_or_load`]), writes go
/// to the store first and reach the cache only if the store accepted
/// them, so the cache never holds a value the store refused.
///
/// The store is synchronous (the trait `lru-ttl-cache` defines); its calls
/// run on tokio's blocking pool so they never stall the runtime.
pub struct WriteThrough<St> {
    cache: DistCache,
    store: Arc<St>,
}

impl<St> fmt::Debug for WriteThrough<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteThrough")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<St> Clone for WriteThrough<St> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
            store: Arc::clone(&self.store),
        }
    }
}

impl<St> WriteThrough<St>
where
    St: Store<String, Bytes> + Send + Sync + 'static,
    St::Error: Send + 'static,
{
    /// Puts `cache` in front of `store`.
    pub fn new(cache: DistCache, store: St) -> Self {
        Self {
            cache,
            store: Arc::new(store),
        }
    }

    /// The cache.
    pub fn cache(&self) -> &DistCache {
        &self.cache
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&St) -> Result<T, St::Error> + Send + 'static,
    ) -> Result<T, WriteError<St::Error>> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => r.map_err(WriteError::Store),
            Err(e) => Err(WriteError::Join(e.to_string())),
        }
    }

    /// The cached value, or the store's (then cached).
    ///
    /// # Errors
    ///
    /// [`WriteError::Store`] with the store's read error;
    /// [`WriteError::Cache`] for a key or value over the cache's limits.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, WriteError<St::Error>> {
        let owned = key.to_owned();
        let r = self
            .cache
            .get_or_load(key, || self.on_store(move |s| s.read(&owned)))
            .await;
        match r {
            Ok(v) => Ok(v),
            Err(LoadError::Load(e)) => Err(e),
            Err(LoadError::Cache(e)) => Err(WriteError::Cache(e)),
        }
    }

    /// Writes to the store, then (only if it succeeded) to the cache.
    ///
    /// # Errors
    ///
    /// [`WriteError::Store`]: the store refused, the cache is unchanged.
    /// [`WriteError::Cache`]: the store accepted but the cache could not
    /// take the value; its old entry was deleted where possible.
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), WriteError<St::Error>> {
        let value = value.into();
        let (k, v) = (key.to_owned(), value.clone());
        self.on_store(move |s| s.write(&k, &v)).await?;
        if let Err(e) = self.cache.set(key, value).await {
            let _ = self.cache.delete(key).await;
            return Err(WriteError::Cache(e));
        }
        Ok(())
    }

    /// Deletes from the store, then (only if it succeeded) from the cache.
    ///
    /// # Errors
    ///
    /// [`WriteError::Store`]: the cache is unchanged. [`WriteError::Cache`]:
    /// the store deleted but the cache entry may live until its TTL.
    pub async fn delete(&self, key: &str) -> Result<(), WriteError<St::Error>> {
        let k = key.to_owned();
        self.on_store(move |s| s.delete(&k)).await?;
        self.cache.delete(key).await.map_err(WriteError::Cache)
    }
}
