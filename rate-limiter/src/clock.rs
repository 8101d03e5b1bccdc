//! `QuantaClock`: the fast default clock of the limiters' `new`
//! constructors.

use std::any::Any;
use std::fmt;

use sysblocks_clock::{Clock, SharedClock};

use crate::sync::StdArc;

/// A monotonic clock read from the CPU's time-stamp counter through the
/// `quanta` crate (the clock `governor` uses by default), scaled to
/// nanoseconds since the clock was created. Reading it costs a few
/// nanoseconds, against about twenty for `std::time::Instant`, which
/// matters when a check itself costs about as much. Where no usable TSC
/// exists, quanta falls back to the OS monotonic clock.
#[derive(Clone)]
pub struct QuantaClock {
    clock: quanta::Clock,
    origin: u64,
}

impl QuantaClock {
    /// A clock whose origin is now.
    #[must_use]
    pub fn new() -> Self {
        let clock = quanta::Clock::new();
        let origin = clock.raw();
        Self { clock, origin }
    }
}

impl Default for QuantaClock {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for QuantaClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuantaClock").finish_non_exhaustive()
    }
}

impl Clock for QuantaClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        // delta_as_nanos returns 0 for a reading at or before the origin.
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }
}

/// The clock a limiter reads: the default [`QuantaClock`] held inline, so
/// reading it is a direct, inlined call (as in `governor`, whose clock is a
/// type parameter), or any other clock behind a shared pointer.
#[derive(Clone)]
pub(crate) enum LimiterClock {
    Quanta(QuantaClock),
    Shared(SharedClock),
}

impl LimiterClock {
    /// Holds `clock` inline if it is a [`QuantaClock`], shared otherwise.
    pub(crate) fn new<C: Clock + 'static>(clock: C) -> Self {
        match (&clock as &dyn Any).downcast_ref::<QuantaClock>() {
            Some(q) => Self::Quanta(q.clone()),
            None => Self::Shared(StdArc::new(clock)),
        }
    }

    /// A new default clock.
    pub(crate) fn quanta() -> Self {
        Self::Quanta(QuantaClock::new())
    }

    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            Self::Quanta(q) => q.now_nanos(),
            Self::Shared(c) => c.now_nanos(),
        }
    }
}

impl fmt::Debug for LimiterClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Quanta(q) => q.fmt(f),
            Self::Shared(c) => c.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quanta_clock_moves_forward_in_nanoseconds() {
        let c = QuantaClock::new();
        let a = c.now_nanos();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = c.now_nanos();
        assert!(b >= a + 1_000_000, "{a} -> {b}");
        assert!(b < a + 10_000_000_000, "{a} -> {b}");
    }

    #[test]
    fn limiter_clock_holds_quanta_inline_and_others_shared() {
        assert!(matches!(
            LimiterClock::new(QuantaClock::new()),
            LimiterClock::Quanta(_)
        ));
        let manual = sysblocks_clock::ManualClock::new();
        let c = LimiterClock::new(manual.clone());
        assert!(matches!(c, LimiterClock::Shared(_)));
        manual.advance(std::time::Duration::from_nanos(42));
        assert_eq!(c.now_nanos(), 42);
    }
}
