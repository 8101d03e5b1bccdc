//! The window algorithms: fixed window, exact sliding log, and the
//! two-counter sliding approximation.

use std::collections::VecDeque;
use std::fmt;

use sysblocks_clock::Clock;

use crate::atomic::clamp_u32;
use crate::clock::LimiterClock;
use crate::decision::NEVER;
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

/// `now`, or, when `live` and `now` is earlier than `since` (a time the
/// state records, which a monotonic clock never shows after it), the
/// clock read again: a reading that went stale while another thread
/// checked gives way to a later one, while a clock that stepped back gives
/// the same or an earlier reading, which the caller then takes for the
/// step.
fn reread(clock: &LimiterClock, now: u64, since: u64, live: bool) -> u64 {
    if live && now < since {
        now.max(clock.now_nanos())
    } else {
        now
    }
}

/// Nanoseconds from `now` to `at`, [`NEVER`] if `at` lies beyond the
/// clock's range (`None`).
fn until(at: Option<u64>, now: u64) -> u64 {
    at.map_or(NEVER, |at| at.saturating_sub(now))
}

/// The start of the window of length `w` aligned to the clock's origin
/// that holds `now`.
fn aligned(now: u64, w: u64) -> u64 {
    now - now % w
}

/// The state of a [`FixedWindow`] key: the current window's start and
/// count.
#[derive(Debug, Clone, Copy, Default)]
pub struct FixedWindowState {
    start: u64,
    count: u32,
}

/// Fixed windows aligned to the clock's origin: at most `limit` cells in
/// each window `[k*W, (k+1)*W)`. Simple and cheap, but up to `2 * limit`
/// cells can pass around a window boundary.
///
/// A clock that steps back before the current window's start counts as no
/// time passed since that start: the window, with its count, then lasts a
/// whole `W` from the step, and the windows after it follow on from there
/// until a check finds an aligned window starting after the last one's end. A window that would end beyond `u64::MAX`
/// nanoseconds never ends: once it is full, checks are denied with
/// [`Decision::RETRY_NEVER`].
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
    /// The end of the current window, `None` beyond the clock's range.
    fn end(&self, s: &FixedWindowState) -> Option<u64> {
        s.start.checked_add(self.window)
    }

    /// Moves `s` to the window holding `now`: a window started again at
    /// `now`, count kept (even 0: the window still bounds what it may
    /// admit), if the clock stepped back before its start; once the window
    /// has ended, the next one, aligned to the origin unless that would
    /// start it before the end of the last (after a step back), so that
    /// windows never overlap and each lasts `W`.
    fn roll(&self, s: &mut FixedWindowState, now: u64) {
        if now < s.start {
            s.start = now;
        } else if let Some(end) = self.end(s).filter(|&end| end <= now) {
            *s = FixedWindowState {
                start: aligned(now, self.window).max(end),
                count: 0,
            };
        }
    }

    fn decide_state(
        &self,
        s: &mut FixedWindowState,
        now: u64,
        cost: u32,
        live: bool,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        let now = reread(&self.clock, now, s.start, live);
        self.roll(s, now);
        // After the roll `now` is inside the window, so a window that ends
        // in the clock's range ends after `now`.
        let end = until(self.end(s), now);
        // `count <= limit` always, so this cannot overflow where
        // `count + cost` could.
        if cost <= self.limit - s.count {
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
                end,
                end,
            ))
        }
    }

    fn fresh(&self, _now: u64) -> FixedWindowState {
        FixedWindowState::default()
    }

    /// A fresh key at `now` counts nothing in the aligned window holding
    /// `now`: so does this state if it is that window with nothing counted,
    /// or if it ends by that window's start (its next window is then that
    /// one).
    fn state_is_fresh(&self, s: &FixedWindowState, now: u64) -> bool {
        let start = aligned(now, self.window);
        (s.count == 0 && s.start == start) || self.end(s).is_some_and(|end| end <= start)
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
/// A clock that steps back before the latest admission counts as no time
/// passed since that admission: every entry moves back by the step. An
/// entry whose window would end beyond `u64::MAX` nanoseconds never leaves
/// it: once such entries fill the limit, checks are denied with
/// [`Decision::RETRY_NEVER`].
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
    /// When the entry logged at `t` leaves the window; `None` beyond the
    /// clock's range.
    fn leaves(&self, t: u64) -> Option<u64> {
        t.checked_add(self.window)
    }

    fn expire(&self, s: &mut SlidingLogState, now: u64) {
        while let Some(&(t, c)) = s.log.front() {
            if self.leaves(t).is_some_and(|at| at <= now) {
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
        live: bool,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        let mut now = now;
        if let Some(&(last, _)) = s.log.back() {
            now = reread(&self.clock, now, last, live);
            if now < last {
                // The clock stepped back: the entries move back with it
                // (saturating at 0 keeps them in order, and in the window
                // no shorter).
                let step = last - now;
                for (t, _) in &mut s.log {
                    *t = t.saturating_sub(step);
                }
            }
        }
        self.expire(s, now);
        let limit = u64::from(self.limit);
        let reset =
            |s: &SlidingLogState| s.log.back().map_or(0, |&(t, _)| until(self.leaves(t), now));
        if s.total + u64::from(cost) <= limit {
            if cost > 0 {
                // Entries are never later than `now` here; the max keeps
                // the log sorted whatever the caller passes.
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
            let mut at = Some(now);
            for &(t, c) in &s.log {
                left += u64::from(c);
                if left >= must_leave {
                    at = self.leaves(t);
                    break;
                }
            }
            let retry = until(at, now).max(1);
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
            .is_none_or(|&(t, _)| self.leaves(t).is_some_and(|at| at <= now))
    }
}

locked_limiter!(SlidingWindowLog, SlidingLogState);

/// The state of a [`SlidingWindowCounter`] key.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlidingCounterState {
    /// The current window's start.
    start: u64,
    previous: u32,
    current: u32,
}

/// The sliding window approximation Cloudflare describes: two counters (the
/// previous and the current fixed window), and the estimate
/// `previous * (W - elapsed) / W + current`, which assumes the previous
/// window's requests were spread evenly. A request of `n` is admitted iff
/// the estimate plus `n` is at most `limit` (integer arithmetic, exact).
///
/// A clock that steps back before the current window's start counts as no
/// time passed since that start: the window starts again at the step, both
/// counts kept (the windows after it follow on from there until both
/// counts are zero, and are then aligned to the origin again). An instant
/// beyond `u64::MAX` nanoseconds is never reached: a check that only a
/// later window would admit is denied with [`Decision::RETRY_NEVER`].
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
    /// Moves `s` to the window holding `now`. With both counts zero
    /// there is nothing to carry: the window is the one aligned to the
    /// origin. A clock that stepped back before the start starts the window
    /// again at `now`. Past the end, the next window follows on and takes
    /// the current count as its previous one, unless that is zero or
    /// `now` is past the next window too.
    fn roll(&self, s: &mut SlidingCounterState, now: u64) {
        let w = self.window;
        if s.previous == 0 && s.current == 0 {
            s.start = aligned(now, w);
        } else if now < s.start {
            s.start = now;
        } else if let Some(end) = s.start.checked_add(w).filter(|&end| end <= now) {
            let next_ends_later = end.checked_add(w).is_none_or(|e| now < e);
            *s = if s.current > 0 && next_ends_later {
                SlidingCounterState {
                    start: end,
                    previous: s.current,
                    current: 0,
                }
            } else {
                SlidingCounterState {
                    start: aligned(now, w),
                    previous: 0,
                    current: 0,
                }
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
        live: bool,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        let busy = s.previous > 0 || s.current > 0;
        let now = reread(&self.clock, now, s.start, live && busy);
        self.roll(s, now);
        let start = s.start;
        let elapsed = now - start;
        // `k` windows after the start; `None` beyond the clock's range.
        let after = |k: u64| (1..=k).try_fold(start, |t, _| t.checked_add(self.window));
        let w = u128::from(self.window);
        let estimate = |s: &SlidingCounterState| {
            (u128::from(s.previous) * (w - u128::from(elapsed.min(self.window)))).div_ceil(w)
                + u128::from(s.current)
        };
        let reset = if s.current > 0 {
            until(after(2), now)
        } else if s.previous > 0 {
            until(after(1), now)
        } else {
            0
        };
        if self.fits(s.previous, s.current, elapsed, cost) {
            s.current += cost;
            let remaining = u128::from(self.limit).saturating_sub(estimate(s));
            let reset = if s.current > 0 {
                until(after(2), now)
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
                Some(e) => start.checked_add(e),
                // Next window: the current count becomes the previous one.
                None => after(1).and_then(|next| match self.earliest_elapsed(s.current, 0, cost) {
                    Some(e) => next.checked_add(e),
                    None => next.checked_add(self.window),
                }),
            };
            let retry = until(at, now).max(1);
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
        let w = self.window;
        let ended = |k: u64| {
            (1..=k)
                .try_fold(s.start, |t, _| t.checked_add(w))
                .is_some_and(|end| end <= now)
        };
        (s.previous == 0 && s.current == 0) || ended(2) || (ended(1) && s.current == 0)
    }
}

locked_limiter!(SlidingWindowCounter, SlidingCounterState);
