//! `Decision`: what an HTTP response needs from a check.

use std::time::Duration;

/// The outcome of a check, with the fields of redis-cell's reply so a server
/// can fill `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` and
/// `Retry-After` directly.
///
/// The durations are kept as raw nanoseconds and `remaining` as a slack
/// divided only when asked for, so that building a decision on the hot
/// path is a few register moves: the accessors do the conversions.
///
/// Two decisions are equal when every accessor agrees: the representation
/// of `remaining` (a slack over a cell's size) is not compared.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// `retry_after` of a denial with `has_retry`, `delay` of an admission:
    /// a decision has at most one of them, so they share a word.
    wait_ns: u64,
    reset_after_ns: u64,
    /// `remaining() = slack / per_cell`.
    slack: u64,
    per_cell: u64,
    limit: u32,
    allowed: bool,
    /// Whether `retry_after` is `Some` (a denial that waiting can cure).
    has_retry: bool,
}

impl PartialEq for Decision {
    fn eq(&self, other: &Self) -> bool {
        self.allowed == other.allowed
            && self.limit == other.limit
            && self.remaining() == other.remaining()
            && self.retry_after() == other.retry_after()
            && self.reset_after_ns == other.reset_after_ns
            && self.delay() == other.delay()
    }
}

impl Eq for Decision {}

// Five words: a decision is returned through memory, and each word is a
// store in every check.
const _: () = assert!(std::mem::size_of::<Decision>() == 40);

/// The `retry_after` (and `reset_after`) in nanoseconds of an instant the
/// clock cannot express: see [`Decision::RETRY_NEVER`].
pub(crate) const NEVER: u64 = u64::MAX;

impl Decision {
    /// The [`Decision::retry_after`] of a denial that no wait cures because
    /// the admitting instant lies beyond the clock's range (`u64::MAX`
    /// nanoseconds after its origin, about 584 years): the whole range. (A
    /// denial at the origin whose admitting instant is exactly the range's
    /// last one reads the same; waiting for it is waiting out the range.)
    /// The same value as a [`Decision::reset_after`] says the limiter is
    /// never back to its fresh state within the clock's range. The waiting
    /// forms ([`RateLimiter::wait_n`](crate::RateLimiter::wait_n) and the
    /// rest) return [`CheckError::EndOfClock`](crate::CheckError::EndOfClock)
    /// instead of sleeping that long.
    pub const RETRY_NEVER: Duration = Duration::from_nanos(NEVER);

    /// An admission.
    #[inline]
    pub(crate) fn allow(limit: u32, remaining: u32, reset_after_ns: u64) -> Self {
        Self {
            wait_ns: 0,
            reset_after_ns,
            slack: u64::from(remaining),
            per_cell: 1,
            limit,
            allowed: true,
            has_retry: false,
        }
    }

    /// A denial that waiting cures: the same request is admitted after
    /// `retry_after_ns` if nothing else arrives (`Retry-After`), or never if
    /// that is [`NEVER`].
    #[inline]
    pub(crate) fn deny_with_retry(
        limit: u32,
        remaining: u32,
        retry_after_ns: u64,
        reset_after_ns: u64,
    ) -> Self {
        Self {
            wait_ns: retry_after_ns,
            reset_after_ns,
            slack: u64::from(remaining),
            per_cell: 1,
            limit,
            allowed: false,
            has_retry: true,
        }
    }

    /// The denial of a cost above `limit`, which no wait cures (so no
    /// `retry_after`): what the infallible `check` forms return where
    /// `check_n` returns [`CheckError::CostExceedsLimit`](crate::CheckError).
    pub(crate) fn deny_cost_over_limit(limit: u32) -> Self {
        Self {
            wait_ns: 0,
            reset_after_ns: 0,
            slack: 0,
            per_cell: 1,
            limit,
            allowed: false,
            has_retry: false,
        }
    }

    /// The denial the infallible `check` forms return for an error of
    /// `check_n`: a cost above the limit (no `retry_after`), or, from a
    /// hand-written limiter, the end of the clock ([`NEVER`]).
    pub(crate) fn from_error(e: crate::CheckError) -> Self {
        match e {
            crate::CheckError::CostExceedsLimit { limit, .. } => Self::deny_cost_over_limit(limit),
            crate::CheckError::EndOfClock => Self::deny_with_retry(0, 0, NEVER, NEVER),
        }
    }

    /// A decision whose `remaining` is `slack_ns / per_cell_ns`.
    #[inline]
    pub(crate) fn with_slack(mut self, slack_ns: u64, per_cell_ns: u64) -> Self {
        self.slack = slack_ns;
        debug_assert!(per_cell_ns > 0);
        self.per_cell = per_cell_ns;
        self
    }

    /// The same decision with a delay before serving (leaky bucket).
    #[inline]
    pub(crate) fn with_delay(mut self, delay_ns: u64) -> Self {
        debug_assert!(self.allowed);
        self.wait_ns = delay_ns;
        self
    }

    /// Whether a denial is one no wait within the clock's range cures (its
    /// `retry_after` is [`Decision::RETRY_NEVER`]).
    #[inline]
    pub(crate) fn retry_never(&self) -> bool {
        self.has_retry && self.wait_ns == NEVER
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
    /// [`Decision::RETRY_NEVER`] when that instant lies beyond the clock's
    /// range, so that no wait cures the denial.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.has_retry.then(|| Duration::from_nanos(self.wait_ns))
    }

    /// How long until the limiter is back to its fresh, full state if nothing
    /// else arrives (`RateLimit-Reset`); [`Decision::RETRY_NEVER`] when that
    /// instant lies beyond the clock's range.
    #[must_use]
    pub fn reset_after(&self) -> Duration {
        Duration::from_nanos(self.reset_after_ns)
    }

    /// For an admission by a delaying [`LeakyBucket`](crate::LeakyBucket),
    /// how long the caller should hold the request before serving it
    /// (nginx `limit_req` without `nodelay`); zero otherwise.
    #[must_use]
    pub fn delay(&self) -> Duration {
        Duration::from_nanos(if self.allowed { self.wait_ns } else { 0 })
    }
}
