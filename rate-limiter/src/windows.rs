//! The window algorithms: fixed window, exact sliding log, and the
//! two-counter sliding approximation.

use std::collections::VecDeque;
use std::fmt;

use sysblocks_clock::Clock;

use crate::atomic::clamp_u32;
use crate::clock::LimiterClock;
use crate::locked::locked_limiter;
use crate::sync::Mutex;
use crate::{BuildError, CheckError, Decision, Quota};

/// The `Debug` impl, `new` and `with_clock` of a window limiter with fields
/// `window`, `limit`, `state: Mutex<$state>` (starting at its default) and
/// `clock`: the three window algorithms are built the same way.
macro_rules! window_limiter {
    ($ty:ident, $state:ty) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("window_nanos", &self.window)
                    .field("limit", &self.limit)
                    .finish_non_exhaustive()
            }
        }

        impl $ty {
            /// `quota.burst` cells per window of `burst` emission intervals,
            /// on the default [`QuantaClock`](crate::QuantaClock).
            ///
            /// # Errors
            ///
            /// As [`Quota::validate`].
            pub fn new(quota: Quota) -> Result<Self, BuildError> {
                Self::with_clock(quota, crate::QuantaClock::new())
            }

            #[doc = concat!("[`", stringify!($ty), "::new`] on `clock`.")]
            ///
            /// # Errors
            ///
            /// As [`Quota::validate`].
            pub fn with_clock(
                quota: Quota,
                clock: impl Clock + 'static,
            ) -> Result<Self, BuildError> {
                let (window, limit) = quota.window_nanos()?;
                Ok(Self {
                    window,
                    limit,
                    state: Mutex::new(<$state>::default()),
                    clock: LimiterClock::new(clock),
                })
            }
        }
    };
}

fn too_big(cost: u32, limit: u32) -> Result<(), CheckError> {
    if cost > limit {
        Err(CheckError::CostExceedsLimit { cost, limit })
    } else {
        Ok(())
    }
}

/// The state of a [`FixedWindow`] key: the current window's index and count.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedWindowState {
    index: u64,
    count: u32,
}

/// Fixed windows aligned to the clock's origin: at most `limit` cells in
/// each window `[k*W, (k+1)*W)`. Simple and cheap, but up to `2 * limit`
/// cells can pass around a window boundary.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{FixedWindow, ManualClock, Quota, RateLimiter};
///
/// let clock = ManualClock::new();
/// let fw = FixedWindow::with_clock(Quota::per_second(2), clock.clone())?;
/// assert!(fw.check().is_allowed());
/// clock.advance(Duration::from_millis(400));
/// assert!(fw.check().is_allowed());
/// let d = fw.check();
/// assert_eq!(d.retry_after(), Some(Duration::from_millis(600)));
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
pub struct FixedWindow {
    window: u64,
    limit: u32,
    state: Mutex<FixedWindowState>,
    clock: LimiterClock,
}

window_limiter!(FixedWindow, FixedWindowState);

impl FixedWindow {
    fn decide_state(
        &self,
        s: &mut FixedWindowState,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        // A clock that steps back stays in the window it had reached.
        let index = now / self.window;
        if index > s.index {
            *s = FixedWindowState { index, count: 0 };
        }
        let end = (s.index + 1)
            .saturating_mul(self.window)
            .saturating_sub(now);
        if s.count + cost <= self.limit {
            s.count += cost;
            Ok(Decision::allow(
                self.limit,
                self.limit - s.count,
                if s.count == 0 { 0 } else { end },
            ))
        } else {
            Ok(Decision::deny_with_retry(
                self.limit,
                self.limit - s.count,
                end.max(1),
                end,
            ))
        }
    }

    fn fresh(&self, _now: u64) -> FixedWindowState {
        FixedWindowState::default()
    }

    fn state_is_fresh(&self, s: &FixedWindowState, now: u64) -> bool {
        s.count == 0 || now / self.window > s.index
    }
}

locked_limiter!(FixedWindow, FixedWindowState);

/// The state of a [`SlidingWindowLog`] key: admitted (time, cost) entries
/// still inside the window, and their total cost.
#[derive(Debug, Clone, Default)]
pub struct SlidingLogState {
    log: VecDeque<(u64, u32)>,
    total: u64,
}

/// The exact sliding window: at most `limit` cells in any window
/// `(now - W, now]`, keeping one log entry per admitted request (so up to
/// `limit` entries per key).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{ManualClock, Quota, RateLimiter, SlidingWindowLog};
///
/// let clock = ManualClock::new();
/// let log = SlidingWindowLog::with_clock(Quota::per_second(2), clock.clone())?;
/// assert!(log.check().is_allowed());
/// clock.advance(Duration::from_millis(400));
/// assert!(log.check().is_allowed());
/// // The first entry leaves the window at t = 1 s.
/// assert_eq!(log.check().retry_after(), Some(Duration::from_millis(600)));
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
pub struct SlidingWindowLog {
    window: u64,
    limit: u32,
    state: Mutex<SlidingLogState>,
    clock: LimiterClock,
}

window_limiter!(SlidingWindowLog, SlidingLogState);

impl SlidingWindowLog {
    fn expire(&self, s: &mut SlidingLogState, now: u64) {
        while let Some(&(t, c)) = s.log.front() {
            if t.saturating_add(self.window) <= now {
                s.log.pop_front();
                s.total -= u64::from(c);
            } else {
                break;
            }
        }
    }

    fn decide_state(
        &self,
        s: &mut SlidingLogState,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        self.expire(s, now);
        let limit = u64::from(self.limit);
        let reset = |s: &SlidingLogState| {
            s.log.back().map_or(0, |&(t, _)| {
                t.saturating_add(self.window).saturating_sub(now)
            })
        };
        if s.total + u64::from(cost) <= limit {
            if cost > 0 {
                // A clock that stepped back logs at the latest time seen, so
                // the log stays sorted and nothing leaves the window early.
                let t = s.log.back().map_or(now, |&(last, _)| last.max(now));
                s.log.push_back((t, cost));
                s.total += u64::from(cost);
            }
            Ok(Decision::allow(
                self.limit,
                clamp_u32(limit - s.total),
                reset(s),
            ))
        } else {
            // Oldest entries leave first; find when enough cost has left.
            let must_leave = s.total + u64::from(cost) - limit;
            let mut left = 0u64;
            let mut at = now;
            for &(t, c) in &s.log {
                left += u64::from(c);
                if left >= must_leave {
                    at = t.saturating_add(self.window);
                    break;
                }
            }
            let retry = at.saturating_sub(now).max(1);
            Ok(Decision::deny_with_retry(
                self.limit,
                clamp_u32(limit - s.total),
                retry,
                reset(s),
            ))
        }
    }

    fn fresh(&self, _now: u64) -> SlidingLogState {
        SlidingLogState::default()
    }

    fn state_is_fresh(&self, s: &SlidingLogState, now: u64) -> bool {
        s.log
            .back()
            .is_none_or(|&(t, _)| t.saturating_add(self.window) <= now)
    }
}

locked_limiter!(SlidingWindowLog, SlidingLogState);

/// The state of a [`SlidingWindowCounter`] key.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlidingCounterState {
    index: u64,
    previous: u32,
    current: u32,
}

/// The sliding window approximation Cloudflare describes: two counters (the
/// previous and the current fixed window), and the estimate
/// `previous * (W - elapsed) / W + current`, which assumes the previous
/// window's requests were spread evenly. A request of `n` is admitted iff
/// the estimate plus `n` is at most `limit` (integer arithmetic, exact).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{ManualClock, Quota, RateLimiter, SlidingWindowCounter};
///
/// let clock = ManualClock::new();
/// let swc = SlidingWindowCounter::with_clock(Quota::per_second(4), clock.clone())?;
/// assert!(swc.check_n(4)?.is_allowed());
/// // Half-way through the next window half of the previous count remains.
/// clock.advance(Duration::from_millis(1500));
/// assert!(swc.check_n(2)?.is_allowed());
/// assert!(!swc.check().is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlidingWindowCounter {
    window: u64,
    limit: u32,
    state: Mutex<SlidingCounterState>,
    clock: LimiterClock,
}

window_limiter!(SlidingWindowCounter, SlidingCounterState);

impl SlidingWindowCounter {
    fn roll(&self, s: &mut SlidingCounterState, now: u64) {
        let index = now / self.window;
        if index == s.index + 1 {
            *s = SlidingCounterState {
                index,
                previous: s.current,
                current: 0,
            };
        } else if index > s.index + 1 {
            *s = SlidingCounterState {
                index,
                previous: 0,
                current: 0,
            };
        }
    }

    /// Whether `extra` more fits at `now` with counts `previous`,
    /// `current` in window `index` (`now` inside or after that window's
    /// start): `previous * (W - elapsed) + (current + extra) * W <= limit * W`.
    fn fits(&self, previous: u32, current: u32, elapsed: u64, extra: u32) -> bool {
        let w = u128::from(self.window);
        let weighted = u128::from(previous) * (w - u128::from(elapsed.min(self.window)));
        weighted + (u128::from(current) + u128::from(extra)) * w <= u128::from(self.limit) * w
    }

    /// The earliest elapsed time in a window with `previous`, `current`
    /// counts at which `extra` fits, if any within the window.
    fn earliest_elapsed(&self, previous: u32, current: u32, extra: u32) -> Option<u64> {
        let need = u64::from(current) + u64::from(extra);
        if need > u64::from(self.limit) {
            return None;
        }
        if previous == 0 {
            return Some(0);
        }
        // previous * (W - e) <= (limit - need) * W  <=>  e >= W - (limit - need) * W / previous
        let w = u128::from(self.window);
        let room = (u128::from(self.limit) - u128::from(need)) * w;
        let keep = room / u128::from(previous); // floor: largest W - e allowed
        let e = w.saturating_sub(keep);
        u64::try_from(e).ok().filter(|&e| e < self.window)
    }

    fn decide_state(
        &self,
        s: &mut SlidingCounterState,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        self.roll(s, now);
        let start = s.index.saturating_mul(self.window);
        let elapsed = now.saturating_sub(start);
        let w = u128::from(self.window);
        let estimate = |s: &SlidingCounterState| {
            (u128::from(s.previous) * (w - u128::from(elapsed.min(self.window)))).div_ceil(w)
                + u128::from(s.current)
        };
        let reset = if s.current > 0 {
            (start + 2 * self.window).saturating_sub(now)
        } else if s.previous > 0 {
            (start + self.window).saturating_sub(now)
        } else {
            0
        };
        if self.fits(s.previous, s.current, elapsed, cost) {
            s.current += cost;
            let remaining = u128::from(self.limit).saturating_sub(estimate(s));
            let reset = if s.current > 0 {
                (start + 2 * self.window).saturating_sub(now)
            } else {
                reset
            };
            Ok(Decision::allow(
                self.limit,
                clamp_u32(remaining as u64),
                reset,
            ))
        } else {
            let remaining = u128::from(self.limit).saturating_sub(estimate(s));
            let at = match self.earliest_elapsed(s.previous, s.current, cost) {
                Some(e) => start + e,
                None => {
                    // Next window: the current count becomes the previous one.
                    let next = start + self.window;
                    match self.earliest_elapsed(s.current, 0, cost) {
                        Some(e) => next + e,
                        None => next + self.window,
                    }
                }
            };
            let retry = at.saturating_sub(now).max(1);
            Ok(Decision::deny_with_retry(
                self.limit,
                clamp_u32(remaining as u64),
                retry,
                reset,
            ))
        }
    }

    fn fresh(&self, _now: u64) -> SlidingCounterState {
        SlidingCounterState::default()
    }

    fn state_is_fresh(&self, s: &SlidingCounterState, now: u64) -> bool {
        let index = now / self.window;
        (s.previous == 0 && s.current == 0)
            || index > s.index + 1
            || (index == s.index + 1 && s.current == 0)
    }
}

locked_limiter!(SlidingWindowCounter, SlidingCounterState);
