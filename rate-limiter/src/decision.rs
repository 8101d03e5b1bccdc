//! `Decision`: what an HTTP response needs from a check.

use std::time::Duration;

/// The outcome of a check, with the fields of redis-cell's reply so a server
/// can fill `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
/// `Retry-After` directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) limit: u32,
    /// `remaining() = slack / per_cell`, divided only when asked for, so
    /// the GCRA hot path does no division.
    pub(crate) slack: u64,
    pub(crate) per_cell: u64,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) reset_after: Duration,
    pub(crate) delay: Duration,
}

impl Decision {
    pub(crate) fn allow(limit: u32, remaining: u32, reset_after_ns: u64) -> Self {
        Self {
            allowed: true,
            limit,
            slack: u64::from(remaining),
            per_cell: 1,
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
            slack: u64::from(remaining),
            per_cell: 1,
            retry_after: Some(Duration::from_nanos(retry_after_ns)),
            reset_after: Duration::from_nanos(reset_after_ns),
            delay: Duration::ZERO,
        }
    }

    /// A decision whose `remaining` is `slack_ns / per_cell_ns`.
    #[inline]
    pub(crate) fn with_slack(mut self, slack_ns: u64, per_cell_ns: u64) -> Self {
        self.slack = slack_ns;
        self.per_cell = per_cell_ns.max(1);
        self
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
        u32::try_from(self.slack / self.per_cell).unwrap_or(u32::MAX)
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
