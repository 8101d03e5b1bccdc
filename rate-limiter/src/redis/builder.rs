//! `RedisLimiterBuilder`: settings checked before any connection.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use sysblocks_clock::{saturating_nanos, Clock, SharedClock};

use super::denials::DenialCache;
use super::error::ConnectError;
use super::limiter::{Algo, RedisLimiter};
use super::policy::{FailurePolicy, Fallback, Policy};
use super::scripts::{gcra_source, sliding_counter_source, MAX_SPAN_NANOS};
use crate::sync::StdArc;
use crate::{BuildError, QuantaClock, Quota};

/// The longest key prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 128;

/// The most entries a denial cache may be given.
pub const MAX_DENIAL_CACHE: usize = 1 << 24;

/// Builds a [`RedisLimiter`] (from [`RedisLimiter::gcra`] or
/// [`RedisLimiter::sliding_window_counter`]).
#[must_use]
pub struct RedisLimiterBuilder {
    quota: Quota,
    gcra: bool,
    prefix: String,
    timeout: Duration,
    cooldown: Duration,
    policy: FailurePolicy,
    denial_cache: usize,
    clock: Option<SharedClock>,
}

impl fmt::Debug for RedisLimiterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiterBuilder")
            .field("quota", &self.quota)
            .field("gcra", &self.gcra)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("failure_cooldown", &self.cooldown)
            .field("policy", &self.policy)
            .field("denial_cache", &self.denial_cache)
            .finish_non_exhaustive()
    }
}

impl RedisLimiterBuilder {
    pub(super) fn new(quota: Quota, gcra: bool) -> Self {
        Self {
            quota,
            gcra,
            prefix: "rl:".to_owned(),
            timeout: Duration::from_millis(100),
            cooldown: Duration::from_millis(200),
            policy: FailurePolicy::Error,
            denial_cache: 65_536,
            clock: None,
        }
    }

    /// The prefix of every Redis key (default `rl:`): a key `k` is stored
    /// at `<prefix>{k}`, the braces making `k` the Redis Cluster hash tag.
    /// At most [`MAX_PREFIX_LEN`] bytes, without `{` or `}`. Give each
    /// limiter sharing a Redis its own prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a check waits for Redis before the [`FailurePolicy`]
    /// decides (default 100 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long checks skip Redis after a round trip failed for want of
    /// it (a timeout, a broken connection), deciding by the
    /// [`FailurePolicy`] at once instead of each waiting out the timeout
    /// (default 200 ms; zero turns it off). After it, one check probes
    /// Redis while the others keep skipping; the probe's success ends the
    /// outage for all. Under [`FailurePolicy::Error`] a skipped check
    /// returns [`RedisCheckError::CircuitOpen`](super::RedisCheckError::CircuitOpen).
    /// Measured on the limiter's local [`clock`](Self::clock).
    pub fn failure_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// What a check does when Redis is unavailable (default
    /// [`FailurePolicy::Error`]).
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Entries of the local denial cache (default 65,536; 0 turns it
    /// off): a key Redis denied until some instant is denied locally until
    /// then, without a round trip. Memory is bounded by this times a key's
    /// length plus about 64 bytes.
    pub fn denial_cache(mut self, entries: usize) -> Self {
        self.denial_cache = entries;
        self
    }

    /// The local clock of the denial cache and the fallback limiter
    /// (default a [`QuantaClock`]); decisions by Redis use the server's
    /// clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(StdArc::new(clock));
        self
    }

    /// Builds the limiter on `conn` (a connection manager reconnects by
    /// itself after a failure). Nothing is sent yet: each check sends
    /// `EVALSHA`, and loads the script when Redis answers `NOSCRIPT`.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`]; [`BuildError::TooMany`] for a span (`burst *
    /// emission interval`, or the window) above 2^52 ns
    /// ([`MAX_SPAN_NANOS`], about 52 days), a prefix over
    /// [`MAX_PREFIX_LEN`] bytes or a denial cache over
    /// [`MAX_DENIAL_CACHE`] entries; [`BuildError::Invalid`] for a prefix
    /// holding `{` or `}`; [`BuildError::Zero`] for a zero timeout or
    /// fleet size.
    pub fn build(self, conn: ConnectionManager) -> Result<RedisLimiter, BuildError> {
        Ok(self.prepare()?.finish(conn))
    }

    /// Everything [`RedisLimiterBuilder::build`] checks and makes, before
    /// a connection exists.
    fn prepare(self) -> Result<Prepared, BuildError> {
        let max_span = usize::try_from(MAX_SPAN_NANOS).unwrap_or(usize::MAX);
        let algo = if self.gcra {
            let (t, burst, tau) = self.quota.parts()?;
            if tau > MAX_SPAN_NANOS {
                return Err(BuildError::TooMany {
                    setting: "burst * emission interval (ns) of a Redis limiter",
                    max: max_span,
                });
            }
            Algo::Gcra { t, burst }
        } else {
            let (window, limit) = self.quota.window_nanos()?;
            if window > MAX_SPAN_NANOS {
                return Err(BuildError::TooMany {
                    setting: "window (ns) of a Redis limiter",
                    max: max_span,
                });
            }
            Algo::SlidingCounter { window, limit }
        };
        if self.prefix.len() > MAX_PREFIX_LEN {
            return Err(BuildError::TooMany {
                setting: "key prefix bytes",
                max: MAX_PREFIX_LEN,
            });
        }
        if self.prefix.contains(['{', '}']) {
            return Err(BuildError::Invalid {
                setting: "key prefix",
                reason: "braces would change the Redis Cluster hash tag",
            });
        }
        if self.timeout.is_zero() {
            return Err(BuildError::Zero { setting: "timeout" });
        }
        if self.denial_cache > MAX_DENIAL_CACHE {
            return Err(BuildError::TooMany {
                setting: "denial cache entries",
                max: MAX_DENIAL_CACHE,
            });
        }
        let clock = self
            .clock
            .unwrap_or_else(|| StdArc::new(QuantaClock::new()));
        let policy = match self.policy {
            FailurePolicy::Error => Policy::Error,
            FailurePolicy::FailOpen => Policy::Open,
            FailurePolicy::FailClosed => Policy::Closed,
            FailurePolicy::LocalFallback { fleet_size: 0 } => {
                return Err(BuildError::Zero {
                    setting: "fleet size",
                })
            }
            FailurePolicy::LocalFallback { fleet_size } => {
                Policy::Local(Fallback::new(algo, fleet_size, &clock)?)
            }
        };
        let source = if self.gcra {
            gcra_source()
        } else {
            sliding_counter_source()
        };
        Ok(Prepared {
            script: Script::new(&source),
            algo,
            prefix: self.prefix.into_bytes(),
            timeout: self.timeout,
            cooldown: saturating_nanos(self.cooldown),
            policy,
            denials: (self.denial_cache > 0).then(|| DenialCache::new(self.denial_cache)),
            clock,
        })
    }

    /// Connects to the Redis at `url` (e.g. `redis://127.0.0.1:6379/`)
    /// through a connection manager that reconnects by itself (retrying
    /// with backoff up to 500 ms between attempts), then builds the
    /// limiter on it. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Build`] as [`RedisLimiterBuilder::build`] (checked
    /// before connecting); [`ConnectError::Redis`] for a bad URL or a
    /// failed first connection.
    pub async fn connect(self, url: &str) -> Result<RedisLimiter, ConnectError> {
        let prepared = self.prepare().map_err(ConnectError::Build)?;
        let client = redis::Client::open(url).map_err(ConnectError::Redis)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(prepared.timeout.max(Duration::from_millis(500))))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(ConnectError::Redis)?;
        Ok(prepared.finish(conn))
    }
}

/// A limiter but for its connection: everything its builder checks and
/// makes.
pub(super) struct Prepared {
    pub(super) script: Script,
    pub(super) algo: Algo,
    pub(super) prefix: Vec<u8>,
    pub(super) timeout: Duration,
    /// The breaker's cooldown in nanoseconds.
    pub(super) cooldown: u64,
    pub(super) policy: Policy,
    pub(super) denials: Option<DenialCache>,
    pub(super) clock: SharedClock,
}

impl Prepared {
    fn finish(self, conn: ConnectionManager) -> RedisLimiter {
        RedisLimiter::from_parts(conn, self)
    }
}
