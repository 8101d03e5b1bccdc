//! `QuantaClock`: the fast default clock of the limiters' `new`
//! constructors.

use std::fmt;

use sysblocks_clock::Clock;

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
}
