//! `TokenBucket`: capacity, a discrete refill of `amount` tokens every
//! `interval`, and an initial fill, on one atomic word.

use std::fmt;
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock};

use crate::atomic::{atomic_limiter, clamp_u32, StateWord, Step};
use crate::clock::LimiterClock;
use crate::decision::NEVER;
use crate::quota::Divisor;
use crate::sync::{AtomicBool, Ordering};
use crate::{BuildError, Decision, Quota};

/// A token bucket: holds at most `capacity` tokens, gains `amount` tokens at
/// every multiple of `interval` on the clock (a discrete refill, as the
/// `ratelimit` crate does), starts with `initial` tokens, and a request of
/// `n` takes `n` tokens or is denied.
///
/// The state is one `u64` updated lock-free: the count of tokens ever
/// taken, biased so that `available = min(capacity, produced(now) +
/// capacity - taken)` where `produced(now) = floor(now / interval) *
/// amount`. Integer arithmetic only, so decisions are exact.
///
/// In any interval of length `t` it admits at most
/// `capacity + amount * ceil(t / interval)` tokens.
///
/// A clock that steps back so far that the count of tokens taken runs
/// more than a refill ahead of `produced(now) + capacity` counts as no
/// time passed since the latest time the count proves: the bucket is
/// empty, as then or stricter, and its next refill is at least a whole
/// `interval` after the step. The count is a `u64`: within `capacity`
/// tokens of its end (a clock near `u64::MAX` nanoseconds at one token per
/// nanosecond) the bucket admits only what it can still record, and denies
/// the rest with [`Decision::RETRY_NEVER`]; the same for a refill tick
/// beyond `u64::MAX` nanoseconds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::{ManualClock, RateLimiter, TokenBucket};
///
/// let clock = ManualClock::new();
/// let bucket = TokenBucket::builder()
///     .capacity(10)
///     .refill(2, Duration::from_millis(100))
///     .initial(3)
///     .clock(clock.clone())
///     .build()?;
/// assert!(bucket.check_n(3)?.is_allowed());
/// let d = bucket.check();
/// assert!(!d.is_allowed());
/// assert_eq!(d.retry_after(), Some(Duration::from_millis(100)));
/// clock.advance(Duration::from_millis(100));
/// assert_eq!(bucket.check_n(2)?.remaining(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenBucket {
    capacity: u32,
    /// Tokens per refill, as a divisor for the refills a count of tokens
    /// needs.
    amount: Divisor,
    /// The refill interval in nanoseconds, as a divisor for the tick that
    /// holds an instant.
    interval: Divisor,
    initial: u32,
    /// Instants before this one take [`TokenBucket::step`]'s fast path:
    /// their tick's counts and refill times cannot overflow (0: none do).
    fast_before: u64,
    state: StateWord,
    /// Set while checks race on `state` (see `cas_loop_hinted`).
    contended: AtomicBool,
    clock: LimiterClock,
}

impl fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("capacity", &self.capacity)
            .field("amount", &self.amount.get())
            .field("interval_nanos", &self.interval.get())
            .field("initial", &self.initial)
            .field("taken", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenBucket`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenBucketBuilder {
    capacity: u32,
    amount: u32,
    interval: Duration,
    initial: Option<u32>,
    clock: Option<LimiterClock>,
}

impl TokenBucketBuilder {
    /// Most tokens the bucket holds (required, > 0).
    pub fn capacity(mut self, capacity: u32) -> Self {
        self.capacity = capacity;
        self
    }

    /// Adds `amount` tokens at every multiple of `interval` (required, both
    /// > 0, at most one token per nanosecond).
    pub fn refill(mut self, amount: u32, interval: Duration) -> Self {
        self.amount = amount;
        self.interval = interval;
        self
    }

    /// Tokens at creation (default: `capacity`, a full bucket).
    pub fn initial(mut self, initial: u32) -> Self {
        self.initial = Some(initial);
        self
    }

    /// The clock (default: a new [`QuantaClock`](crate::QuantaClock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(LimiterClock::new(clock));
        self
    }

    /// Builds the bucket.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero capacity, amount or interval;
    /// [`BuildError::RateTooHigh`] for more than one token per nanosecond;
    /// [`BuildError::TooLong`] for an interval beyond `u64` nanoseconds;
    /// [`BuildError::InitialExceedsCapacity`].
    pub fn build(self) -> Result<TokenBucket, BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::Zero {
                setting: "capacity",
            });
        }
        if self.amount == 0 {
            return Err(BuildError::Zero {
                setting: "refill amount",
            });
        }
        if self.interval.is_zero() {
            return Err(BuildError::Zero {
                setting: "refill interval",
            });
        }
        if self.interval.as_nanos() > u128::from(u64::MAX) {
            return Err(BuildError::TooLong {
                setting: "refill interval",
            });
        }
        let interval = saturating_nanos(self.interval);
        if u64::from(self.amount) > interval {
            return Err(BuildError::RateTooHigh);
        }
        let initial = self.initial.unwrap_or(self.capacity);
        if initial > self.capacity {
            return Err(BuildError::InitialExceedsCapacity {
                initial,
                capacity: self.capacity,
            });
        }
        let clock = self.clock.unwrap_or_else(LimiterClock::quanta);
        let mut bucket = TokenBucket {
            capacity: self.capacity,
            amount: Divisor::new(u64::from(self.amount)),
            interval: Divisor::new(interval),
            initial,
            fast_before: fast_before(self.capacity, self.amount, interval),
            state: StateWord::new(0),
            contended: AtomicBool::new(false),
            clock,
        };
        let now = bucket.clock.now_nanos();
        bucket.state = StateWord::new(bucket.fresh_word(now));
        Ok(bucket)
    }
}

impl TokenBucket {
    /// A builder; `capacity` and `refill` are required.
    pub fn builder() -> TokenBucketBuilder {
        TokenBucketBuilder {
            capacity: 0,
            amount: 0,
            interval: Duration::ZERO,
            initial: None,
            clock: None,
        }
    }

    /// Capacity `quota.burst`, one token per emission interval, full at
    /// start, on the default [`QuantaClock`](crate::QuantaClock).
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn new(quota: Quota) -> Result<Self, BuildError> {
        Self::with_clock(quota, crate::QuantaClock::new())
    }

    /// [`TokenBucket::new`] on `clock`.
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`].
    pub fn with_clock(quota: Quota, clock: impl Clock + 'static) -> Result<Self, BuildError> {
        let (t, burst, _) = quota.parts()?;
        Self::builder()
            .capacity(burst)
            .refill(1, Duration::from_nanos(t))
            .clock(clock)
            .build()
    }

    /// Tokens produced by `now`: `amount` per whole `interval`.
    #[inline]
    fn produced(&self, now: u64) -> u64 {
        self.interval.div(now).saturating_mul(self.amount.get())
    }

    #[inline]
    fn max_cost(&self) -> u32 {
        self.capacity
    }

    /// `top = produced(now) + capacity` (saturating) is the most `taken`
    /// may reach by an admission now: `available = top - max(taken,
    /// produced(now))`, so the word never overflows; within `capacity`
    /// tokens of the end of the count (`u64::MAX`) the bucket admits only
    /// what the word can still record. A word up to one tick's `amount`
    /// above `top` is a bucket whose next refill is already spent (what a
    /// step back leaves, see [`TokenBucket::rebase`]); one further above
    /// goes there first, out of line.
    #[inline(always)]
    fn step(&self, word: u64, now: u64, cost: u32, live: bool) -> Step {
        if now < self.fast_before {
            if let Some(step) = self.step_fast(word, now, cost) {
                return step;
            }
        }
        self.step_general(word, now, cost, live)
    }

    /// [`TokenBucket::step_general`]'s admission for an instant before
    /// `fast_before` and a word at most `top`, in plain arithmetic (no count or time there can overflow);
    /// `None` for a denial or a word to rebase, which the general step
    /// decides. The same decision and word as the general step.
    #[inline(always)]
    fn step_fast(&self, word: u64, now: u64, cost: u32) -> Option<Step> {
        let cap = u64::from(self.capacity);
        let amount = self.amount.get();
        let tick = self.interval.div(now);
        let produced = tick * amount;
        let top = produced + cap;
        // A word above `top` (a refill already spent, or one to rebase)
        // has no token: a denial, or a rebase, for the general step.
        if word > top {
            return None;
        }
        let taken = word.max(produced);
        let available = top - taken;
        let cost64 = u64::from(cost);
        if available < cost64 {
            return None;
        }
        let left = available - cost64;
        // Tokens the bucket lacks for full: `taken + cost - produced`.
        let missing = cap - left;
        let reset = if missing == 0 {
            0
        } else {
            let ticks = if missing <= amount {
                1
            } else {
                self.amount.div_ceil(missing)
            };
            (tick + ticks) * self.interval.get() - now
        };
        // `left <= capacity`, a `u32`.
        let d = Decision::allow(self.capacity, left as u32, reset);
        Some((d, if cost == 0 { word } else { taken + cost64 }))
    }

    #[inline(always)]
    fn step_general(&self, word: u64, now: u64, cost: u32, live: bool) -> Step {
        let cap = u64::from(self.capacity);
        let amount = self.amount.get();
        let tick = self.interval.div(now);
        let (word, now, tick) = if word
            > tick
                .saturating_mul(amount)
                .saturating_add(cap)
                .saturating_add(amount)
        {
            self.rebase(word, now, live)
        } else {
            (word, now, tick)
        };
        let produced = tick.saturating_mul(amount);
        let top = produced.saturating_add(cap);
        // Tokens beyond capacity are lost: the floor of `taken` rises.
        let taken = word.max(produced);
        let available = top.saturating_sub(taken);
        let cost64 = u64::from(cost);
        // Time until `top` reaches `taken + n`. Once `top` saturates it
        // never grows again: a token missing now is missing for the rest
        // of the clock's range.
        let time_to = |n: u64| match taken.checked_add(n) {
            Some(need) if need <= top => 0,
            Some(need) if top < u64::MAX => self.time_to(tick, now, need - top),
            _ => NEVER,
        };
        if available >= cost64 {
            let left = available - cost64;
            let d = Decision::allow(self.capacity, clamp_u32(left), time_to(cost64 + cap));
            (d, if cost == 0 { word } else { taken + cost64 })
        } else {
            let d = Decision::deny_with_retry(
                self.capacity,
                clamp_u32(available),
                time_to(cost64),
                time_to(cap),
            );
            (d, word)
        }
    }

    /// A word more than a tick's `amount` above `produced(now) + capacity`,
    /// which a monotonic clock never shows (an admission never takes
    /// `taken` past `top`). With `live` the clock is read again first (a
    /// stale reading decides on the later time); otherwise, or if the word
    /// is still that far ahead, the clock stepped back, and no time has
    /// passed since the latest time the word proves. The bucket was empty
    /// then or later, and its next refill was up to one `interval` away;
    /// refills come at multiples of `interval`, so the rebased word is an
    /// empty bucket whose next refill is a whole `interval` away or more:
    /// `top` if `now` is at a tick's start, `top + amount` (that tick's
    /// refill spent) otherwise. It differs from the stored word, so even a
    /// denial stores it and time counts again from the step. Returns the
    /// word, time and tick to decide on.
    #[cold]
    #[inline(never)]
    fn rebase(&self, word: u64, now: u64, live: bool) -> (u64, u64, u64) {
        let now = if live {
            now.max(self.clock.now_nanos())
        } else {
            now
        };
        let tick = self.interval.div(now);
        let amount = self.amount.get();
        let top = tick
            .saturating_mul(amount)
            .saturating_add(u64::from(self.capacity));
        if word <= top.saturating_add(amount) {
            return (word, now, tick);
        }
        let spent = if tick * self.interval.get() == now {
            0
        } else {
            amount
        };
        (top.saturating_add(spent), now, tick)
    }

    /// Time from `now` (in tick `tick`) until `missing` more tokens have
    /// been produced; [`NEVER`] if that tick starts beyond `u64::MAX`
    /// nanoseconds.
    #[inline]
    fn time_to(&self, tick: u64, now: u64, missing: u64) -> u64 {
        if missing == 0 {
            return 0;
        }
        let ticks = self.amount.div_ceil(missing);
        tick.checked_add(ticks)
            .and_then(|t| t.checked_mul(self.interval.get()))
            .map_or(NEVER, |at| at - now)
    }

    fn fresh_word(&self, now: u64) -> u64 {
        self.produced(now)
            .saturating_add(u64::from(self.capacity - self.initial))
    }

    /// Full and initially full: nothing tells it from a new key. With
    /// `initial < capacity` a stale key is dropped once full, which makes it
    /// stricter (back to `initial` tokens), never more permissive.
    fn word_is_fresh(&self, taken: u64, now: u64) -> bool {
        taken <= self.produced(now)
    }
}

/// The first instant whose tick `k` may be too far into the clock's range
/// for [`TokenBucket::step_fast`]: below it `k * amount + capacity +
/// amount` and `(k + capacity) * interval` (the latest refill time a
/// reset can name) fit in `u64`. 0 if no tick is that safe.
fn fast_before(capacity: u32, amount: u32, interval: u64) -> u64 {
    let (cap, amount) = (u64::from(capacity), u64::from(amount));
    let by_count = (u64::MAX - cap - amount) / amount;
    let by_time = (u64::MAX / interval).saturating_sub(cap);
    // Instants before `max_tick * interval` have ticks below `max_tick`.
    by_count.min(by_time).saturating_mul(interval)
}

atomic_limiter!(TokenBucket);
