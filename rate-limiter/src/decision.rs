//! `Decision`: what an HTTP response needs from a check.

use std::time::Duration;

/// The outcome of a check, with the fields of redis-cell's reply so a server
/// can fill `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
/// `Retry-After` directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) limit: u32,
    pub(crate) remaining: u32,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) reset_after: Duration,
    pub(crate) delay: Duration,
}

impl Decision {
    pub(crate) fn allow(limit: u32, remaining: u32, reset_after_ns: u64) -> Self {
        Self {
            allowed: true,
            limit,
            remaining,
            retry_after: None,
            reset_after: Duration::from_nanos(reset_after_ns),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn deny(
        limit: u32,
        remaining: u32,
        retry_after_ns: u64,
        reset_after_ns: u64,
    ) -> Self {
        Self {
            allowed: false,
            limit,
            remaining,
            retry_after: Some(Duration::from_nanos(retry_after_ns)),
            reset_after: Duration::from_nanos(reset_after_ns),
            delay: Duration::ZERO,
        }
    }

    /// Whether the request may go ahead (after [`Decision::delay`], if any).
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// The most this limiter admits at once (`RateLimit-Limit`).
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// How many more unit-cost requests would be admitted right now
    /// (`RateLimit-Remaining`).
    #[must_use]
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// For a denial, how long until the same request would be admitted if
    /// nothing else arrives (`Retry-After`); `None` when allowed.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// How long until the limiter is back to its fresh, full state if nothing
    /// else arrives (`RateLimit-Reset`).
    #[must_use]
    pub fn reset_after(&self) -> Duration {
        self.reset_after
    }

    /// For an admission by a delaying [`LeakyBucket`](crate::LeakyBucket),
    /// how long the caller should hold the request before serving it
    /// (nginx `limit_req` without `nodelay`); zero otherwise.
    #[must_use]
    pub fn delay(&self) -> Duration {
        self.delay
    }
}
