//! Cache-aside with single flight across both tiers: concurrent misses on
//! one key in one client share one remote read and one load.

use std::future::Future;

use bytes::Bytes;
use tokio::sync::watch;

use crate::client::{key_hash, DistCache};
use crate::error::{CacheError, LoadError};

/// Removes the key's flight when the leading call ends, however it ends
/// (a value, an error, a panic, a dropped future). Waiters whose flight
/// ends without a value retry, one of them as the new leader.
struct Leader<'a> {
    cache: &'a DistCache,
    key: &'a str,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.cache.inner.flights.lock().remove(self.key);
    }
}

impl DistCache {
    /// Cache-aside: the cached value (near cache, then Redis), or
    /// `loader`'s, which is then stored with the default TTL. Concurrent
    /// calls for one key on this client (or its clones) wait for the first
    /// one's remote read and load instead of running their own.
    ///
    /// The cache tier failing does not fail the call: a node that cannot
    /// be read counts as a miss and a store that fails is skipped, so the
    /// loader (the database) answers while Redis is down. `Ok(None)` when
    /// the loader finds nothing (nothing is stored).
    ///
    /// # Errors
    ///
    /// [`LoadError::Load`] with the loader's error (waiting calls then
    /// retry, one of them running its own loader);
    /// [`LoadError::Cache`] for a key or a loaded value over the limits.
    pub async fn get_or_load<F, Fut, E>(
        &self,
        key: &str,
        loader: F,
    ) -> Result<Option<Bytes>, LoadError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, E>>,
    {
        let mut loader = Some(loader);
        loop {
            if let Some(v) = self.get_near(key) {
                return Ok(Some(v));
            }
            let (tx, waiting) = {
                let mut flights = self.inner.flights.lock();
                match flights.get(key) {
                    Some(rx) => (None, Some(rx.clone())),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        flights.insert(key.to_owned(), rx);
                        (Some(tx), None)
                    }
                }
            };
            if let Some(mut rx) = waiting {
                match rx.wait_for(Option::is_some).await {
                    Ok(v) => return Ok(v.clone().flatten()),
                    // The leader failed or was dropped: try again.
                    Err(_) => continue,
                }
            }
            let Some(tx) = tx else { continue };
            let _leader = Leader { cache: self, key };
            match self.get_remote_checked(key).await {
                Ok(Some(v)) => {
                    tx.send_replace(Some(Some(v.clone())));
                    return Ok(Some(v));
                }
                Ok(None) => {}
                Err(e) if e.is_node_failure() || matches!(e, CacheError::Unavailable { .. }) => {}
                Err(e) => return Err(LoadError::Cache(e)),
            }
            let Some(load) = loader.take() else {
                unreachable!("only the leader loads, once per call")
            };
            self.inner
                .counters
                .loads
                .fetch_add(1, crate::sync::Ordering::Relaxed);
            let loaded = load().await.map_err(LoadError::Load)?;
            if let Some(v) = &loaded {
                match self.set(key, v.clone()).await {
                    Ok(()) => {}
                    Err(e @ CacheError::ValueTooLarge { .. }) => return Err(LoadError::Cache(e)),
                    Err(_) => {}
                }
            }
            tx.send_replace(Some(loaded.clone()));
            return Ok(loaded);
        }
    }

    async fn get_remote_checked(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        if key.len() > crate::MAX_KEY_BYTES {
            return Err(CacheError::KeyTooLarge { len: key.len() });
        }
        self.get_remote(key, key_hash(key)).await
    }
}
