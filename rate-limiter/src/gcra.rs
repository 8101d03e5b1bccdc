//! `Gcra`: the generic cell rate algorithm on one atomic word.

use std::fmt;
use std::num::NonZeroU32;

use sysblocks_clock::{Clock, SharedClock};

use crate::atomic::{atomic_limiter, StateWord, Step};
use crate::clock::LimiterClock;
use crate::decision::NEVER;
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
/// `tests/kat.rs`).
///
/// A clock that steps back by more than the TAT's lead allows counts as no
/// time passed since `TAT - burst*T`, the latest time the TAT proves (at or
/// before the latest admission): no cell is left, as at that time or
/// stricter, and time counts again from the step. The clock's range is
/// `u64` nanoseconds: an admission whose TAT would lie beyond `u64::MAX` is
/// denied with [`Decision::RETRY_NEVER`], so within `burst*T` of the end
/// of the range fewer cells pass, and at `u64::MAX` none.
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
    /// keeps that non-negative), and iff the new TAT fits in `u64`
    /// nanoseconds (the carry of one add; otherwise a denial with
    /// [`Decision::RETRY_NEVER`]). A denial returns the TAT unchanged (no
    /// store) and, like an admission, fills the decision with plain
    /// differences that only its accessors convert. A debt above `tau` (a
    /// clock that stepped back) first goes to [`Gcra::rebase`], out of
    /// line, which hands back the TAT and time to decide on.
    #[inline]
    fn step(&self, tat: u64, now: u64, cost: u32, live: bool) -> Step {
        let (tat, now) = if tat.saturating_sub(now) > self.tau {
            self.rebase(tat, now, live)
        } else {
            (tat, now)
        };
        let weight = u64::from(cost) * self.t;
        let debt = tat.saturating_sub(now);
        let room = self.tau - weight;
        let limit = self.burst.get();
        let (next, beyond) = tat.max(now).overflowing_add(weight);
        if debt <= room && !beyond {
            let after = debt + weight;
            let d = Decision::allow(limit, 0, after).with_slack(self.tau - after, self.t);
            (d, if cost == 0 { tat } else { next })
        } else {
            let retry = if beyond { NEVER } else { debt - room };
            let d = Decision::deny_with_retry(limit, 0, retry, debt)
                .with_slack(self.tau - debt, self.t);
            (d, tat)
        }
    }

    /// A TAT more than `tau` ahead of `now`, which a monotonic clock never
    /// shows (an admission at `a` leaves `TAT <= a + tau`). With `live`,
    /// the clock is read again first: a thread whose reading went stale
    /// while others admitted sees the later time and decides on it.
    /// Otherwise (or if the TAT is still too far ahead) the clock stepped
    /// back, and no time has passed since `TAT - tau`, the latest time the
    /// word proves: the word is rebased to `now + tau` (no cell left, as at
    /// that time or stricter), which differs from the stored word, so even
    /// a denial stores it and time counts again from the step.
    #[cold]
    #[inline(never)]
    fn rebase(&self, tat: u64, now: u64, live: bool) -> (u64, u64) {
        let now = if live {
            now.max(self.clock.now_nanos())
        } else {
            now
        };
        if tat.saturating_sub(now) > self.tau {
            // `TAT - now > tau` with `TAT <= u64::MAX`: no overflow.
            (now + self.tau, now)
        } else {
            (tat, now)
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
