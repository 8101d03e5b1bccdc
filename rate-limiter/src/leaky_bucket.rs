//! `LeakyBucket`: nginx `limit_req` semantics on one atomic word.

use std::fmt;

use sysblocks_clock::Clock;

use crate::atomic::{atomic_limiter, clamp_u32, StateWord, Step};
use crate::clock::LimiterClock;
use crate::decision::NEVER;
use crate::sync::{AtomicBool, Ordering};
use crate::{BuildError, Decision, Quota};

/// How a [`LeakyBucket`] treats admitted excess requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DelayMode {
    /// nginx `nodelay`: excess within the burst is served at once.
    NoDelay,
    /// nginx `delay=N` (0 is nginx's default): the first `N` excess requests
    /// are served at once, later ones wait `(excess - N) / rate`.
    After(u32),
}

/// A leaky bucket ("leaky bucket as a meter") with the semantics of nginx's
/// `limit_req`: an *excess* counter drains at `rate`; each request adds one
/// emission interval of excess; a request whose excess would exceed `burst`
/// intervals is rejected and changes nothing; an admitted one may be told to
/// wait (`Decision::delay`) unless the bucket is `nodelay`.
///
/// With `n` simultaneous arrivals on a fresh bucket, `1 + burst` are
/// accepted; without `nodelay` the k-th excess request waits `k / rate`.
/// Unlike nginx, time is kept in nanoseconds, not milliseconds. A cost `n`
/// counts as `n` simultaneous requests.
///
/// The state is one `u64`: 0 for a fresh bucket, otherwise `1 +` the time at
/// which the excess drains to zero.
///
/// A clock that steps back by more than the excess allows counts as no
/// time passed since the latest time the word proves: the excess is full
/// (`burst` intervals), as then or stricter, and drains from the step. An
/// admission whose drain time would lie at or beyond `u64::MAX` nanoseconds
/// cannot be recorded and is denied with [`Decision::RETRY_NEVER`], so
/// near the end of the clock's range fewer requests pass, and at
/// `u64::MAX` none.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{LeakyBucket, ManualClock, Quota, RateLimiter};
///
/// // nginx: limit_req_zone rate=10r/s; limit_req burst=2;
/// let clock = ManualClock::new();
/// let lb = LeakyBucket::nginx(Quota::per_second(10), 2)
///     .clock(clock.clone())
///     .build()?;
/// let delays: Vec<_> = (0..4).map(|_| lb.check()).map(|d| (d.is_allowed(), d.delay())).collect();
/// assert_eq!(delays, [
///     (true, Duration::ZERO),
///     (true, Duration::from_millis(100)),
///     (true, Duration::from_millis(200)),
///     (false, Duration::ZERO),
/// ]);
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
pub struct LeakyBucket {
    /// Emission interval (1 / rate) in nanoseconds.
    t: u64,
    /// nginx `burst`: excess requests tolerated.
    burst: u32,
    /// `burst * t`.
    max_excess: u64,
    mode: DelayMode,
    /// The excess served without delay, in nanoseconds: `n * t` for
    /// `delay=n` (saturating: a product beyond `u64` nanoseconds means no
    /// admitted request is ever delayed), `u64::MAX` for `nodelay`.
    /// Computed at build time so that a check only subtracts it.
    free_excess: u64,
    state: StateWord,
    /// Set while checks race on `state` (see `cas_loop_hinted`).
    contended: AtomicBool,
    clock: LimiterClock,
}

impl fmt::Debug for LeakyBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakyBucket")
            .field("emission_nanos", &self.t)
            .field("burst", &self.burst)
            .field("mode", &self.mode)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds a [`LeakyBucket`].
#[derive(Debug, Clone)]
#[must_use]
pub struct LeakyBucketBuilder {
    quota: Quota,
    burst: u32,
    mode: DelayMode,
    clock: Option<LimiterClock>,
}

impl LeakyBucketBuilder {
    /// nginx `nodelay`: admitted excess requests are not delayed.
    pub fn nodelay(mut self) -> Self {
        self.mode = DelayMode::NoDelay;
        self
    }

    /// nginx `delay=n`: the first `n` excess requests are not delayed.
    pub fn delay(mut self, n: u32) -> Self {
        self.mode = DelayMode::After(n);
        self
    }

    /// The clock (default: a new [`QuantaClock`](crate::QuantaClock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(LimiterClock::new(clock));
        self
    }

    /// Builds the bucket. The quota's burst is not used; the nginx `burst`
    /// given to [`LeakyBucket::nginx`] is, and may be 0.
    ///
    /// # Errors
    ///
    /// As [`Quota::emission_interval`]; [`BuildError::TooLong`] if
    /// `burst` intervals exceed `u64` nanoseconds.
    pub fn build(self) -> Result<LeakyBucket, BuildError> {
        let t = self.quota.emission_nanos()?;
        let max_excess = t
            .checked_mul(u64::from(self.burst))
            .ok_or(BuildError::TooLong { setting: "burst" })?;
        let free_excess = match self.mode {
            DelayMode::NoDelay => u64::MAX,
            DelayMode::After(free) => u64::from(free).saturating_mul(t),
        };
        Ok(LeakyBucket {
            t,
            burst: self.burst,
            max_excess,
            mode: self.mode,
            free_excess,
            state: StateWord::new(0),
            contended: AtomicBool::new(false),
            clock: self.clock.unwrap_or_else(LimiterClock::quanta),
        })
    }
}

impl LeakyBucket {
    /// nginx `limit_req` with the rate of `rate` (its burst is ignored) and
    /// `burst` excess requests, delaying excess requests (nginx's default;
    /// see [`LeakyBucketBuilder::nodelay`] and [`LeakyBucketBuilder::delay`]).
    pub fn nginx(rate: Quota, burst: u32) -> LeakyBucketBuilder {
        LeakyBucketBuilder {
            quota: rate,
            burst,
            mode: DelayMode::After(0),
            clock: None,
        }
    }

    /// A rejecting limiter comparable to the others: `quota.burst` requests
    /// at once (nginx `burst = quota.burst - 1`, `nodelay`), default clock.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn new(quota: Quota) -> Result<Self, BuildError> {
        Self::with_clock(quota, crate::QuantaClock::new())
    }

    /// [`LeakyBucket::new`] on `clock`.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn with_clock(quota: Quota, clock: impl Clock + 'static) -> Result<Self, BuildError> {
        let (_, burst, _) = quota.parts()?;
        Self::nginx(quota, burst - 1).nodelay().clock(clock).build()
    }

    /// The excess now, in nanoseconds of drain time: how long until it
    /// drains to zero.
    #[inline]
    fn current_excess(word: u64, now: u64) -> u64 {
        if word == 0 {
            0
        } else {
            (word - 1).saturating_sub(now)
        }
    }

    /// The excess, in nanoseconds of drain time, after admitting `cost`
    /// requests at `now` on state `word` (saturating).
    #[inline]
    fn excess_after(&self, word: u64, now: u64, cost: u32) -> u64 {
        let extra = u64::from(cost.saturating_sub(1)) * self.t;
        if word == 0 {
            // nginx: a new node starts with excess 0.
            return extra;
        }
        let drained_at = word - 1;
        // nginx: excess = max(0, excess - elapsed + 1 interval), per request;
        // `drained_at + t` is not formed, so it cannot overflow.
        let base = if drained_at >= now {
            (drained_at - now).saturating_add(self.t)
        } else {
            self.t.saturating_sub(now - drained_at)
        };
        base.saturating_add(extra)
    }

    #[inline]
    fn max_cost(&self) -> u32 {
        self.burst.saturating_add(1)
    }

    /// nginx's rule on the word; the new word `now + excess + 1` must fit
    /// in `u64`, or the admission could not be recorded: then the request
    /// is denied with [`Decision::RETRY_NEVER`] (a later admission of it
    /// would need the same word). A current excess above `max_excess` goes
    /// to [`LeakyBucket::rebase`] first, out of line. `remaining` is left to
    /// the decision's accessor to divide.
    #[inline]
    fn step(&self, word: u64, now: u64, cost: u32, live: bool) -> Step {
        let limit = self.max_cost();
        let (word, now) = if Self::current_excess(word, now) > self.max_excess {
            self.rebase(word, now, live)
        } else {
            (word, now)
        };
        let current = Self::current_excess(word, now);
        if cost == 0 {
            let left = (self.max_excess - current) / self.t + 1;
            return (Decision::allow(limit, clamp_u32(left), current), word);
        }
        let excess = self.excess_after(word, now, cost);
        let next = now
            .checked_add(excess)
            .and_then(|drained_at| drained_at.checked_add(1));
        match next {
            Some(next) if excess <= self.max_excess => {
                let d = Decision::allow(limit, 0, excess)
                    .with_slack(self.max_excess - excess, self.t)
                    .with_delay(excess.saturating_sub(self.free_excess));
                (d, next)
            }
            // The excess drains to `max_excess` after `excess - max_excess`,
            // when the new word is `now + excess + 1` again.
            Some(_) => {
                let over = excess - self.max_excess;
                let d = Decision::deny_with_retry(limit, 0, over, current)
                    .with_slack(self.max_excess - current, self.t);
                (d, word)
            }
            None => {
                let d = Decision::deny_with_retry(limit, 0, NEVER, current)
                    .with_slack(self.max_excess - current, self.t);
                (d, word)
            }
        }
    }

    /// A current excess above `max_excess`, which a monotonic clock never
    /// shows (an admission at `a` leaves the excess drained by
    /// `a + max_excess`). With `live` the clock is read again first (a
    /// stale reading decides on the later time); otherwise, or if the
    /// excess is still too high, the clock stepped back, and the word is
    /// rebased to an excess of `max_excess` (as at the latest time the word
    /// proves, or stricter). The rebased word differs from the stored one,
    /// so even a denial stores it and time counts again from the step.
    /// Returns the word and time to decide on.
    #[cold]
    #[inline(never)]
    fn rebase(&self, word: u64, now: u64, live: bool) -> (u64, u64) {
        let now = if live {
            now.max(self.clock.now_nanos())
        } else {
            now
        };
        if Self::current_excess(word, now) > self.max_excess {
            // `word - 1 > now + max_excess`, so this fits.
            (now + self.max_excess + 1, now)
        } else {
            (word, now)
        }
    }

    fn fresh_word(&self, _now: u64) -> u64 {
        0
    }

    /// Once `drained_at + interval <= now` the next request gets excess 0
    /// (plus its own extra cost), exactly as on a new node.
    fn word_is_fresh(&self, word: u64, now: u64) -> bool {
        word == 0 || (word - 1).saturating_add(self.t) <= now
    }
}

atomic_limiter!(LeakyBucket);
