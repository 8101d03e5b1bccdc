//! `Gcra`: the generic cell rate algorithm on one atomic word.

use std::fmt;
use std::num::NonZeroU32;

use sysblocks_clock::{Clock, SharedClock};

use crate::atomic::{atomic_limiter, StateWord, Step};
use crate::clock::LimiterClock;
use crate::sync::{AtomicBool, Ordering};
use crate::{BuildError, Decision, Quota};

/// The generic cell rate algorithm (the "virtual scheduling" form used by
/// ATM networks, `governor` and redis-cell).
///
/// The whole state is one `u64`, the theoretical arrival time (TAT) of the
/// next cell, updated lock-free with a compare-and-swap. With emission
/// interval `T` and burst `b`, a request of `n` cells at time `now` is
/// admitted iff `max(TAT, now) + n*T <= now + b*T`, and then
/// `TAT = max(TAT, now) + n*T`. Decisions and `retry_after` values are the
/// same as `governor`'s for the same quota and arrival times (checked in
/// `tests/gcra_vs_governor.rs`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{Gcra, ManualClock, Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let gcra = Gcra::with_clock(Quota::per_second(2), clock.clone())?;
/// assert!(gcra.check().is_allowed());
/// assert!(gcra.check().is_allowed());
/// let denied = gcra.check();
/// assert!(!denied.is_allowed());
/// assert_eq!(denied.retry_after(), Some(Duration::from_millis(500)));
/// clock.advance(Duration::from_millis(500));
/// assert!(gcra.check().is_allowed());
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
pub struct Gcra {
    /// Emission interval in nanoseconds.
    t: u64,
    /// Burst in cells (never 0, which lets a unit check skip the cost test).
    burst: NonZeroU32,
    /// `burst * t`: how far ahead of now the TAT may run.
    tau: u64,
    state: StateWord,
    /// Set while checks race on `state` (see `cas_loop_hinted`).
    contended: AtomicBool,
    clock: LimiterClock,
}

impl fmt::Debug for Gcra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gcra")
            .field("emission_nanos", &self.t)
            .field("burst", &self.burst.get())
            .field("tat", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Gcra {
    /// A limiter on the default [`QuantaClock`](crate::QuantaClock).
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn new(quota: Quota) -> Result<Self, BuildError> {
        Self::build(quota, LimiterClock::quanta())
    }

    /// A limiter reading `clock`.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn with_clock(quota: Quota, clock: impl Clock + 'static) -> Result<Self, BuildError> {
        Self::build(quota, LimiterClock::new(clock))
    }

    /// A limiter reading an already shared clock.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn with_shared_clock(quota: Quota, clock: SharedClock) -> Result<Self, BuildError> {
        Self::build(quota, LimiterClock::Shared(clock))
    }

    fn build(quota: Quota, clock: LimiterClock) -> Result<Self, BuildError> {
        let (t, burst, tau) = quota.parts()?;
        Ok(Self {
            t,
            burst: NonZeroU32::new(burst).ok_or(BuildError::Zero { setting: "burst" })?,
            tau,
            state: StateWord::new(0),
            contended: AtomicBool::new(false),
            clock,
        })
    }

    #[inline]
    fn max_cost(&self) -> u32 {
        self.burst.get()
    }

    /// Admitted iff `max(TAT, now) + cost*T <= now + tau`, computed on the
    /// debt `d = max(TAT - now, 0)` as `d <= tau - cost*T` (`cost <= burst`
    /// keeps that non-negative). A denial returns the TAT unchanged (no
    /// store) and, like an admission, fills the decision with plain
    /// differences that only its accessors convert.
    #[inline]
    fn step(&self, tat: u64, now: u64, cost: u32) -> Step {
        let weight = u64::from(cost) * self.t;
        let debt = tat.saturating_sub(now);
        let room = self.tau - weight;
        let limit = self.burst.get();
        if debt <= room {
            let after = debt + weight;
            let d = Decision::allow(limit, 0, after).with_slack(self.tau - after, self.t);
            let next = if cost == 0 {
                tat
            } else {
                tat.max(now).saturating_add(weight)
            };
            (d, next)
        } else {
            let d = Decision::deny_with_retry(limit, 0, debt - room, debt)
                .with_slack(self.tau.saturating_sub(debt), self.t);
            (d, tat)
        }
    }

    fn fresh_word(&self, _now: u64) -> u64 {
        0
    }

    /// A TAT in the past is the same as no TAT: `max(TAT, now) = now`.
    fn word_is_fresh(&self, tat: u64, now: u64) -> bool {
        tat <= now
    }
}

// Forced inline: a check is a few instructions around a clock read, and a
// call returning the decision through memory is a large share of it (see the
// `GCRA direct check, denied` case of `compare --only rate-limiter`).
atomic_limiter!(Gcra, #[inline(always)]);
