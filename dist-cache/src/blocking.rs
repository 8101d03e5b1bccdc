//! `BlockingDistCache`: the client for code without an async runtime.

use std::fmt;

use bytes::Bytes;

use crate::builder::DistCacheBuilder;
use crate::client::{DistCache, Stats};
use crate::error::{BuildError, CacheError, LoadError};
use crate::membership::WarmUp;

/// A [`DistCache`] with blocking calls, owning a one-worker tokio runtime
/// that drives the connections and the near cache's tracking. Callable
/// from several threads at once; must not be called from inside an async
/// runtime.
pub struct BlockingDistCache {
    cache: DistCache,
    rt: tokio::runtime::Runtime,
}

impl fmt::Debug for BlockingDistCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingDistCache")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl BlockingDistCache {
    pub(crate) fn build(builder: DistCacheBuilder) -> Result<Self, BuildError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(BuildError::Runtime)?;
        let cache = {
            let _enter = rt.enter();
            builder.build()?
        };
        Ok(Self { cache, rt })
    }

    /// The async client (usable from async code on any tokio runtime).
    #[must_use]
    pub fn as_async(&self) -> &DistCache {
        &self.cache
    }

    /// [`DistCache::get`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::get`].
    pub fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        // A near hit needs no runtime.
        if let Some(v) = self.cache.get_near(key) {
            return Ok(Some(v));
        }
        self.rt.block_on(self.cache.get(key))
    }

    /// [`DistCache::get_many`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::get_many`].
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, CacheError> {
        self.rt.block_on(self.cache.get_many(keys))
    }

    /// [`DistCache::set`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::set`].
    pub fn set(&self, key: &str, value: impl Into<Bytes>) -> Result<(), CacheError> {
        self.rt.block_on(self.cache.set(key, value))
    }

    /// [`DistCache::delete`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::delete`].
    pub fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.rt.block_on(self.cache.delete(key))
    }

    /// [`DistCache::get_or_load`] with a blocking loader.
    ///
    /// # Errors
    ///
    /// As [`DistCache::get_or_load`].
    pub fn get_or_load<E>(
        &self,
        key: &str,
        loader: impl FnOnce() -> Result<Option<Bytes>, E>,
    ) -> Result<Option<Bytes>, LoadError<E>> {
        self.rt
            .block_on(self.cache.get_or_load(key, || async move { loader() }))
    }

    /// [`DistCache::add_node`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::add_node`].
    pub fn add_node(&self, url: &str, warm_up: bool) -> Result<WarmUp, BuildError> {
        self.rt.block_on(self.cache.add_node(url, warm_up))
    }

    /// [`DistCache::remove_node`], blocking.
    ///
    /// # Errors
    ///
    /// As [`DistCache::remove_node`].
    pub fn remove_node(&self, url: &str, warm_up: bool) -> Result<WarmUp, BuildError> {
        self.rt.block_on(self.cache.remove_node(url, warm_up))
    }

    /// [`DistCache::stats`].
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.cache.stats()
    }
}
