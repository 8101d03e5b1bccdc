#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic source of time, in nanoseconds since an origin of the clock's
/// choosing.
///
/// Implementations must be cheap to call and must never panic. A clock may be
/// shared between threads; implementations that can go backwards (a test
/// clock set by hand) are allowed, and every sysblocks algorithm treats a
/// step backwards as "no time has passed".
pub trait Clock: Send + Sync + fmt::Debug {
    /// Nanoseconds elapsed since this clock's origin.
    fn now_nanos(&self) -> u64;

    /// [`Clock::now_nanos`] as a [`Duration`].
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Box<C> {
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

/// A shared, type-erased clock, as builders store it.
pub type SharedClock = Arc<dyn Clock>;

/// Converts a [`Duration`] to whole nanoseconds, saturating at `u64::MAX`
/// (about 584 years) instead of overflowing.
#[must_use]
pub fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The real clock: `std::time::Instant` measured from the moment the clock
/// was created. Cloning keeps the origin, so clones agree with each other.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    #[must_use]
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        saturating_nanos(self.origin.elapsed())
    }
}

/// A clock that moves only when told to. Clones share one timeline, so a test
/// can hand a clone to the structure under test and keep one to advance.
///
/// It starts at zero. [`ManualClock::set`] may move it backwards, which is
/// how tests check that the algorithms survive a clock that misbehaves.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock at `start`.
    #[must_use]
    pub fn starting_at(start: Duration) -> Self {
        let clock = Self::new();
        clock.set(start);
        clock
    }

    /// Moves the clock forward by `by`, saturating at `u64::MAX` nanoseconds.
    pub fn advance(&self, by: Duration) {
        let by = saturating_nanos(by);
        // fetch_update never fails with a closure that always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `to`, which may be earlier than now.
    pub fn set(&self, to: Duration) {
        self.nanos.store(saturating_nanos(to), Ordering::Release);
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new();
        let d = c.clone();
        assert_eq!(c.now_nanos(), 0);
        d.advance(Duration::from_micros(3));
        assert_eq!(c.now_nanos(), 3_000);
        c.set(Duration::from_nanos(1));
        assert_eq!(d.now(), Duration::from_nanos(1));
    }

    #[test]
    fn manual_clock_saturates() {
        let c = ManualClock::starting_at(Duration::from_nanos(u64::MAX - 1));
        c.advance(Duration::from_secs(10));
        assert_eq!(c.now_nanos(), u64::MAX);
        c.advance(Duration::MAX);
        assert_eq!(c.now_nanos(), u64::MAX);
    }

    #[test]
    fn monotonic_clock_never_goes_back() {
        let c = MonotonicClock::new();
        let mut last = c.now_nanos();
        for _ in 0..1000 {
            let now = c.now_nanos();
            assert!(now >= last);
            last = now;
        }
    }

    #[test]
    fn shared_clock_forwards() {
        let m = ManualClock::new();
        let shared: SharedClock = Arc::new(m.clone());
        m.advance(Duration::from_secs(2));
        assert_eq!(shared.now(), Duration::from_secs(2));
        let by_ref: &ManualClock = &m;
        assert_eq!(Clock::now_nanos(&by_ref), 2_000_000_000);
    }

    #[test]
    fn saturating_nanos_caps() {
        assert_eq!(saturating_nanos(Duration::MAX), u64::MAX);
        assert_eq!(saturating_nanos(Duration::from_nanos(7)), 7);
    }
}
