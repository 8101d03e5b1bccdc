//! The window algorithms: fixed window, exact sliding log, and the
//! two-counter sliding approximation.

use std::collections::VecDeque;
use std::fmt;

use sysblocks_clock::Clock;

use crate::atomic::clamp_u32;
use crate::clock::LimiterClock;
use crate::decision::NEVER;
use crate::locked::{locked_limiter, packed_limiter, PackedState, Packing, SPILLED};
use crate::quota::Divisor;
use crate::sync::Mutex;
use crate::{BuildError, CheckError, Decision, Quota};

/// The `Debug` impl, `new` and `with_clock` of a window limiter with fields
/// `window`, `limit`, `clock` and the fields listed after `|window, limit|`
/// with their initial values (the state, starting at its default): the
/// three window algorithms are built the same way.
macro_rules! window_limiter {
    ($ty:ident, |$w:ident, $l:ident| $($field:ident: $init:expr),+ $(,)?) => {
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
                let ($w, $l) = quota.window_nanos()?;
                Ok(Self {
                    window: $w,
                    limit: $l,
                    $($field: $init,)+
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
#[inline]
fn reread(clock: &LimiterClock, now: u64, since: u64, live: bool) -> u64 {
    if live && now < since {
        now.max(clock.now_nanos())
    } else {
        now
    }
}

/// Nanoseconds from `now` to `at`, [`NEVER`] if `at` lies beyond the
/// clock's range (`None`).
#[inline]
fn until(at: Option<u64>, now: u64) -> u64 {
    at.map_or(NEVER, |at| at.saturating_sub(now))
}

/// Bits of a packed count of at most `limit` (at least 1, at most 32).
fn count_bits(limit: u32) -> u32 {
    32 - limit.leading_zeros()
}

/// The window index `k` of an aligned window start `start = k * W` if
/// `k` fits in `bits` bits (at most 64) and `start` is aligned; `None`
/// otherwise.
fn window_index(win: &Divisor, start: u64, bits: u32) -> Option<u64> {
    let k = win.div(start);
    let fits = bits >= 64 || k >> bits == 0;
    (fits && k * win.get() == start).then_some(k)
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
    win: Divisor,
    /// `count_bits(limit)`.
    bits: u32,
    limit: u32,
    state: PackedState<FixedWindowState>,
    clock: LimiterClock,
}

window_limiter!(FixedWindow, |window, limit|
    win: Divisor::new(window),
    bits: count_bits(limit),
    state: PackedState::new(FixedWindowState::default(), 0),
);

/// A fixed window's state in one word: the index `k` of an aligned start
/// `k * W` above the count's bits. A start not aligned to the origin (after
/// a clock step back), or one whose index leaves too few bits (near the end
/// of the clock's range for short windows), does not pack.
impl Packing for FixedWindow {
    type State = FixedWindowState;

    #[inline(always)]
    fn unpack(&self, word: u64) -> FixedWindowState {
        let bits = self.bits;
        FixedWindowState {
            start: (word >> bits) * self.window,
            count: (word & ((1 << bits) - 1)) as u32,
        }
    }

    #[inline(always)]
    fn pack(&self, s: &FixedWindowState, from: u64) -> Option<u64> {
        let bits = self.bits;
        let high = if s.start == self.unpack(from).start {
            from >> bits
        } else {
            window_index(&self.win, s.start, 64 - bits)?
        };
        let word = high << bits | u64::from(s.count);
        (word != SPILLED).then_some(word)
    }

    #[inline(always)]
    fn step(
        &self,
        mut s: FixedWindowState,
        now: u64,
        cost: u32,
        live: bool,
    ) -> (Decision, FixedWindowState) {
        let now = reread(&self.clock, now, s.start, live);
        self.roll(&mut s, now);
        // After the roll `now` is inside the window, so a window that ends
        // in the clock's range ends after `now`.
        let end = until(self.end(&s), now);
        self.decide_in(s, end, cost)
    }

    #[inline(always)]
    fn within(&self, word: u64, now: u64, cost: u32) -> Option<(Decision, u64)> {
        let s = self.unpack(word);
        let end = self.end(&s)?;
        if now < s.start || now >= end {
            return None;
        }
        let (d, next) = self.decide_in(s, end - now, cost);
        // The count is the word's low bits, and stays within them.
        let word = word + u64::from(next.count - s.count);
        (word != SPILLED).then_some((d, word))
    }
}

impl FixedWindow {
    /// The decision on `s`, whose window holds the time of the check and
    /// ends `end` after it ([`NEVER`] if beyond the clock's range).
    #[inline(always)]
    fn decide_in(
        &self,
        mut s: FixedWindowState,
        end: u64,
        cost: u32,
    ) -> (Decision, FixedWindowState) {
        // `count <= limit` always, so this cannot overflow where
        // `count + cost` could.
        if cost <= self.limit - s.count {
            s.count += cost;
            let reset = if s.count == 0 { 0 } else { end };
            (Decision::allow(self.limit, self.limit - s.count, reset), s)
        } else {
            let left = self.limit - s.count;
            (Decision::deny_with_retry(self.limit, left, end, end), s)
        }
    }

    /// The end of the current window, `None` beyond the clock's range.
    #[inline]
    fn end(&self, s: &FixedWindowState) -> Option<u64> {
        s.start.checked_add(self.window)
    }

    /// Moves `s` to the window holding `now`: a window started again at
    /// `now`, count kept (even 0: the window still bounds what it may
    /// admit), if the clock stepped back before its start; once the window
    /// has ended, the next one, aligned to the origin unless that would
    /// start it before the end of the last (after a step back), so that
    /// windows never overlap and each lasts `W`.
    #[inline]
    fn roll(&self, s: &mut FixedWindowState, now: u64) {
        if now < s.start {
            s.start = now;
        } else if let Some(end) = self.end(s).filter(|&end| end <= now) {
            *s = FixedWindowState {
                start: self.win.floor(now).max(end),
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
        let (d, next) = self.step(*s, now, cost, live);
        *s = next;
        Ok(d)
    }

    fn fresh(&self, _now: u64) -> FixedWindowState {
        FixedWindowState::default()
    }

    /// A fresh key at `now` counts nothing in the aligned window holding
    /// `now`: so does this state if it is that window with nothing counted,
    /// or if it ends by that window's start (its next window is then that
    /// one).
    fn state_is_fresh(&self, s: &FixedWindowState, now: u64) -> bool {
        let start = self.win.floor(now);
        (s.count == 0 && s.start == start) || self.end(s).is_some_and(|end| end <= start)
    }
}

packed_limiter!(FixedWindow);
locked_limiter!(algorithm FixedWindow, FixedWindowState);

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

window_limiter!(SlidingWindowLog, |_window, _limit|
    state: Mutex::new(SlidingLogState::default()),
);

impl SlidingWindowLog {
    /// When the entry logged at `t` leaves the window; `None` beyond the
    /// clock's range.
    #[inline]
    fn leaves(&self, t: u64) -> Option<u64> {
        t.checked_add(self.window)
    }

    #[inline]
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
        Ok(self.step(s, now, cost, live))
    }

    /// [`SlidingWindowLog::decide_state`] for a cost at most the limit.
    #[inline]
    fn step(&self, s: &mut SlidingLogState, now: u64, cost: u32, live: bool) -> Decision {
        let mut now = now;
        if let Some(&(last, _)) = s.log.back() {
            if now < last {
                now = self.step_back(s, now, last, live);
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
            Decision::allow(self.limit, clamp_u32(limit - s.total), reset(s))
        } else {
            let retry = self.retry(s, now, cost);
            Decision::deny_with_retry(self.limit, clamp_u32(limit - s.total), retry, reset(s))
        }
    }

    /// `now` earlier than the latest entry `last`, which a monotonic clock
    /// never shows: with `live` the clock is read again (a stale reading
    /// decides on the later time); if it is still earlier, the clock
    /// stepped back, and the entries move back with it (saturating at 0
    /// keeps them in order, and in the window no shorter). Returns the time
    /// to decide on.
    #[cold]
    #[inline(never)]
    fn step_back(&self, s: &mut SlidingLogState, now: u64, last: u64, live: bool) -> u64 {
        let now = reread(&self.clock, now, last, live);
        if now < last {
            let step = last - now;
            for (t, _) in &mut s.log {
                *t = t.saturating_sub(step);
            }
        }
        now
    }

    /// A denial's `retry_after`: oldest entries leave first, so until
    /// enough cost has left for `cost` to fit.
    #[cold]
    #[inline(never)]
    fn retry(&self, s: &SlidingLogState, now: u64, cost: u32) -> u64 {
        let must_leave = s.total + u64::from(cost) - u64::from(self.limit);
        let mut left = 0u64;
        let mut at = Some(now);
        for &(t, c) in &s.log {
            left += u64::from(c);
            if left >= must_leave {
                at = self.leaves(t);
                break;
            }
        }
        until(at, now).max(1)
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
    win: Divisor,
    /// `count_bits(limit)`.
    bits: u32,
    /// Whether `limit * W` fits in `u64`, and with it every product of the
    /// estimate.
    narrow: bool,
    limit: u32,
    state: PackedState<SlidingCounterState>,
    clock: LimiterClock,
}

window_limiter!(SlidingWindowCounter, |window, limit|
    win: Divisor::new(window),
    bits: count_bits(limit),
    narrow: u64::from(limit).checked_mul(window).is_some(),
    state: PackedState::new(SlidingCounterState::default(), 0),
);

/// A sliding counter's state in one word: the index `k` of an aligned
/// start `k * W` above the previous and current counts' bits. A start not
/// aligned to the origin (after a clock step back), or one whose index
/// leaves too few bits (for large limits, or short windows far into the
/// clock's range), does not pack.
impl Packing for SlidingWindowCounter {
    type State = SlidingCounterState;

    #[inline(always)]
    fn unpack(&self, word: u64) -> SlidingCounterState {
        let bits = self.bits;
        let mask = (1 << bits) - 1;
        SlidingCounterState {
            // `2 * bits <= 64`; a shift by 64 would overflow.
            start: (word >> bits >> bits) * self.window,
            previous: ((word >> bits) & mask) as u32,
            current: (word & mask) as u32,
        }
    }

    #[inline(always)]
    fn pack(&self, s: &SlidingCounterState, from: u64) -> Option<u64> {
        let bits = self.bits;
        let high = if s.start == self.unpack(from).start {
            from >> bits >> bits
        } else {
            window_index(&self.win, s.start, 64 - 2 * bits)?
        };
        let word = (high << bits | u64::from(s.previous)) << bits | u64::from(s.current);
        (word != SPILLED).then_some(word)
    }

    /// Admitted iff the estimate's `previous * (W - elapsed) + (current +
    /// cost) * W <= limit * W`, in `u128`: two multiplications, no
    /// division. `remaining`, the limit less the estimate's ceiling
    /// `ceil(previous * (W - elapsed) / W) + current`, is `floor(room / W)`
    /// for `room = (limit - current) * W - previous * (W - elapsed)` (an
    /// integer less the ceiling of a number is the floor of their
    /// difference): the decision keeps `room` and `W`, and its accessor
    /// divides.
    #[inline(always)]
    fn step(
        &self,
        mut s: SlidingCounterState,
        now: u64,
        cost: u32,
        live: bool,
    ) -> (Decision, SlidingCounterState) {
        let busy = s.previous > 0 || s.current > 0;
        let now = reread(&self.clock, now, s.start, live && busy);
        self.roll(&mut s, now);
        self.decide_in(s, now, cost)
    }

    #[inline(always)]
    fn within(&self, word: u64, now: u64, cost: u32) -> Option<(Decision, u64)> {
        let s = self.unpack(word);
        // With both counts zero the roll aligns the window to `now`.
        if s.previous == 0 && s.current == 0 {
            return None;
        }
        let end = s.start.checked_add(self.window)?;
        if now < s.start || now >= end {
            return None;
        }
        let (d, next) = self.decide_in(s, now, cost);
        // The current count is the word's low bits, and stays within them.
        let word = word + u64::from(next.current - s.current);
        (word != SPILLED).then_some((d, word))
    }
}

impl SlidingWindowCounter {
    /// The decision on `s`, whose window holds `now` (see
    /// [`SlidingWindowCounter::step`]).
    #[inline(always)]
    fn decide_in(
        &self,
        mut s: SlidingCounterState,
        now: u64,
        cost: u32,
    ) -> (Decision, SlidingCounterState) {
        let start = s.start;
        let w = self.window;
        let elapsed = now - start;
        let (allowed, slack, per_cell) = if self.narrow {
            // Every product is at most `limit * W`, which fits in `u64`.
            let weighted = u64::from(s.previous) * (w - elapsed.min(w));
            // `current <= limit` always.
            let unused = u64::from(self.limit - s.current) * w;
            let need = u64::from(cost) * w;
            // `weighted + need <= unused`, whose sum could overflow.
            let allowed = need <= unused && weighted <= unused - need;
            let left = if allowed { unused - need } else { unused };
            (allowed, left.saturating_sub(weighted), w)
        } else {
            self.admit_wide(&s, elapsed, cost)
        };
        if allowed {
            s.current += cost;
        }
        let reset = if s.current > 0 {
            until(start.checked_add(w).and_then(|e| e.checked_add(w)), now)
        } else if s.previous > 0 {
            until(start.checked_add(w), now)
        } else {
            0
        };
        let d = if allowed {
            Decision::allow(self.limit, 0, reset)
        } else {
            let retry = self.retry(&s, now, cost);
            Decision::deny_with_retry(self.limit, 0, retry, reset)
        };
        (d.with_slack(slack, per_cell), s)
    }

    /// Moves `s` to the window holding `now`. With both counts zero
    /// there is nothing to carry: the window is the one aligned to the
    /// origin. A clock that stepped back before the start starts the window
    /// again at `now`. Past the end, the next window follows on and takes
    /// the current count as its previous one, unless that is zero or
    /// `now` is past the next window too.
    #[inline(always)]
    fn roll(&self, s: &mut SlidingCounterState, now: u64) {
        let w = self.window;
        if s.previous == 0 && s.current == 0 {
            s.start = self.win.floor(now);
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
                    start: self.win.floor(now),
                    previous: 0,
                    current: 0,
                }
            };
        }
    }

    /// The admission test and `remaining` (as a slack and its divisor) of
    /// [`SlidingWindowCounter::step`] in `u128`, for a `limit * W` beyond
    /// `u64` (a large limit over a window of many seconds).
    #[cold]
    #[inline(never)]
    fn admit_wide(&self, s: &SlidingCounterState, elapsed: u64, cost: u32) -> (bool, u64, u64) {
        let w = u128::from(self.window);
        let weighted = u128::from(s.previous) * (w - u128::from(elapsed.min(self.window)));
        let unused = u128::from(self.limit - s.current) * w;
        let allowed = weighted + u128::from(cost) * w <= unused;
        let left = if allowed {
            unused - u128::from(cost) * w
        } else {
            unused
        };
        let room = left.saturating_sub(weighted);
        match u64::try_from(room) {
            Ok(room) => (allowed, room, self.window),
            // At most the limit.
            Err(_) => (allowed, (room / w) as u64, 1),
        }
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

    /// A denial's `retry_after`: until `cost` fits in this window, or
    /// else in the next, where the current count becomes the previous one.
    #[cold]
    #[inline(never)]
    fn retry(&self, s: &SlidingCounterState, now: u64, cost: u32) -> u64 {
        let start = s.start;
        let at = match self.earliest_elapsed(s.previous, s.current, cost) {
            Some(e) => start.checked_add(e),
            None => start.checked_add(self.window).and_then(|next| {
                match self.earliest_elapsed(s.current, 0, cost) {
                    Some(e) => next.checked_add(e),
                    None => next.checked_add(self.window),
                }
            }),
        };
        until(at, now).max(1)
    }

    fn decide_state(
        &self,
        s: &mut SlidingCounterState,
        now: u64,
        cost: u32,
        live: bool,
    ) -> Result<Decision, CheckError> {
        too_big(cost, self.limit)?;
        let (d, next) = self.step(*s, now, cost, live);
        *s = next;
        Ok(d)
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

packed_limiter!(SlidingWindowCounter);
locked_limiter!(algorithm SlidingWindowCounter, SlidingCounterState);
