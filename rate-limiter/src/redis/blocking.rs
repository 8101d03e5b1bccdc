//! `BlockingRedisLimiter`: the Redis limiter for code without a runtime.

use std::fmt;

use super::builder::RedisLimiterBuilder;
use super::error::{ConnectError, RedisCheckError};
use super::limiter::{RedisLimiter, RedisStats};
use crate::Decision;

/// A [`RedisLimiter`] with blocking checks, owning a small current-thread
/// tokio runtime that drives the connection while a check waits. Callable
/// from several threads at once (one of them drives the runtime at a
/// time); must not be called from inside an async runtime.
///
/// # Examples
///
/// ```no_run
/// use sysblocks_rate_limiter::redis::{BlockingRedisLimiter, RedisLimiter};
/// use sysblocks_rate_limiter::Quota;
///
/// let limiter = BlockingRedisLimiter::connect(
///     RedisLimiter::sliding_window_counter(Quota::per_minute(600)),
///     "redis://127.0.0.1:6379/",
/// )?;
/// let d = limiter.check("user:42")?;
/// println!("allowed {}, remaining {}", d.is_allowed(), d.remaining());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BlockingRedisLimiter {
    limiter: RedisLimiter,
    rt: tokio::runtime::Runtime,
}

impl fmt::Debug for BlockingRedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRedisLimiter")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl BlockingRedisLimiter {
    /// Starts the runtime and connects `builder`'s limiter to `url`
    /// ([`RedisLimiterBuilder::connect`]).
    ///
    /// # Errors
    ///
    /// As [`RedisLimiterBuilder::connect`]; [`ConnectError::Runtime`] if
    /// the runtime cannot start.
    pub fn connect(builder: RedisLimiterBuilder, url: &str) -> Result<Self, ConnectError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ConnectError::Runtime)?;
        let limiter = rt.block_on(builder.connect(url))?;
        Ok(Self { limiter, rt })
    }

    /// [`RedisLimiter::check`], blocking.
    ///
    /// # Errors
    ///
    /// As [`RedisLimiter::check_n`].
    pub fn check(&self, key: impl AsRef<[u8]>) -> Result<Decision, RedisCheckError> {
        self.rt.block_on(self.limiter.check(key))
    }

    /// [`RedisLimiter::check_n`], blocking.
    ///
    /// # Errors
    ///
    /// As [`RedisLimiter::check_n`].
    pub fn check_n(&self, key: impl AsRef<[u8]>, cost: u32) -> Result<Decision, RedisCheckError> {
        self.rt.block_on(self.limiter.check_n(key, cost))
    }

    /// [`RedisLimiter::check_many`], blocking.
    pub fn check_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        cost: u32,
    ) -> Vec<Result<Decision, RedisCheckError>> {
        self.rt.block_on(self.limiter.check_many(keys, cost))
    }

    /// [`RedisLimiter::stats`].
    #[must_use]
    pub fn stats(&self) -> RedisStats {
        self.limiter.stats()
    }

    /// The async limiter inside.
    #[must_use]
    pub fn limiter(&self) -> &RedisLimiter {
        &self.limiter
    }
}
