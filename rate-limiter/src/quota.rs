//! `Quota`: a rate (cells per window) and a burst.

use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use crate::BuildError;

/// A rate and a burst, as in `governor`: `cells` per `window`, replenished
/// one at a time every `window / cells` (the emission interval, truncated to
/// whole nanoseconds), with at most `burst` cells admitted at once.
///
/// The constructors never fail; a quota is checked when a limiter is built
/// from it, which reports rate 0, burst 0, a zero period or a rate above one
/// cell per nanosecond as a [`BuildError`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::Quota;
///
/// let q = Quota::per_second(50);
/// assert_eq!(q.emission_interval().unwrap(), Duration::from_millis(20));
/// assert_eq!(q.burst_size(), 50);
/// assert_eq!(Quota::per_minute(60).burst(5).burst_size(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    cells: u32,
    window: Duration,
    burst: u32,
}

impl Quota {
    /// `n` cells per second, burst `n`.
    #[must_use]
    pub const fn per_second(n: u32) -> Self {
        Self {
            cells: n,
            window: Duration::from_secs(1),
            burst: n,
        }
    }

    /// `n` cells per minute, burst `n`.
    #[must_use]
    pub const fn per_minute(n: u32) -> Self {
        Self {
            cells: n,
            window: Duration::from_secs(60),
            burst: n,
        }
    }

    /// `n` cells per hour, burst `n`.
    #[must_use]
    pub const fn per_hour(n: u32) -> Self {
        Self {
            cells: n,
            window: Duration::from_secs(3600),
            burst: n,
        }
    }

    /// One cell every `period`, burst 1.
    #[must_use]
    pub const fn with_period(period: Duration) -> Self {
        Self {
            cells: 1,
            window: period,
            burst: 1,
        }
    }

    /// The same rate with burst `burst`: at most that many cells at once.
    #[must_use]
    pub const fn burst(self, burst: u32) -> Self {
        Self { burst, ..self }
    }

    /// The burst size.
    #[must_use]
    pub const fn burst_size(&self) -> u32 {
        self.burst
    }

    /// The time to replenish one cell (`window / cells`, whole nanoseconds,
    /// as `governor` computes it).
    ///
    /// # Errors
    ///
    /// As [`Quota::validate`] without the burst check.
    pub fn emission_interval(&self) -> Result<Duration, BuildError> {
        Ok(Duration::from_nanos(self.emission_nanos()?))
    }

    pub(crate) fn emission_nanos(&self) -> Result<u64, BuildError> {
        if self.cells == 0 {
            return Err(BuildError::Zero { setting: "rate" });
        }
        if self.window.is_zero() {
            return Err(BuildError::Zero { setting: "period" });
        }
        if self.window.as_nanos() > u128::from(u64::MAX) {
            return Err(BuildError::TooLong { setting: "period" });
        }
        let t = saturating_nanos(self.window / self.cells);
        if t == 0 {
            return Err(BuildError::RateTooHigh);
        }
        Ok(t)
    }

    /// Checks everything a limiter needs and returns the emission interval
    /// and burst in nanoseconds and cells.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for rate, burst or period 0;
    /// [`BuildError::RateTooHigh`] above one cell per nanosecond;
    /// [`BuildError::TooLong`] if the period or `burst` emission intervals
    /// exceed `u64` nanoseconds.
    pub fn validate(&self) -> Result<(), BuildError> {
        self.parts().map(|_| ())
    }

    /// (emission interval ns, burst, burst * interval ns)
    pub(crate) fn parts(&self) -> Result<(u64, u32, u64), BuildError> {
        let t = self.emission_nanos()?;
        if self.burst == 0 {
            return Err(BuildError::Zero { setting: "burst" });
        }
        let tau = t
            .checked_mul(u64::from(self.burst))
            .ok_or(BuildError::TooLong { setting: "burst" })?;
        Ok((t, self.burst, tau))
    }

    /// The window a window-based algorithm uses for `burst` cells at this
    /// rate: `window * burst / cells`, computed exactly and floored to whole
    /// nanoseconds. `Quota::per_second(10)` gives one second.
    pub(crate) fn window_nanos(&self) -> Result<(u64, u32), BuildError> {
        let (_, burst, _) = self.parts()?;
        let w = self.window.as_nanos() * u128::from(burst) / u128::from(self.cells);
        let w = u64::try_from(w).map_err(|_| BuildError::TooLong { setting: "window" })?;
        Ok((w.max(1), burst))
    }
}

/// Division of a `u64` by a divisor fixed when a limiter is built, as a
/// multiplication and shifts: a `div` instruction takes tens of cycles,
/// about as long as the rest of a check. The algorithm is libdivide's
/// unsigned 64-bit one (Granlund and Montgomery, "Division by invariant
/// integers using multiplication", 1994): the quotient is exact for every
/// numerator, which `tests` checks against `/` on edge values and at random.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Divisor {
    d: u64,
    /// `ceil(2^(64 + shift) / d)` (less its top bit with `add`); 0 for a
    /// power of two, which is a shift alone.
    magic: u64,
    shift: u32,
    /// The magic number needs 65 bits: the quotient takes one more add.
    add: bool,
}

impl Divisor {
    /// A divisor of `d`, which must not be 0.
    pub(crate) fn new(d: u64) -> Self {
        assert!(d > 0, "division by zero");
        let shift = 63 - d.leading_zeros();
        if d.is_power_of_two() {
            return Self {
                d,
                magic: 0,
                shift,
                add: false,
            };
        }
        // 2^(64 + shift) / d < 2^64, as d > 2^shift.
        let num = 1u128 << (64 + shift);
        let m = (num / u128::from(d)) as u64;
        let rem = (num % u128::from(d)) as u64;
        if d - rem < 1u64 << shift {
            Self {
                d,
                magic: m + 1,
                shift,
                add: false,
            }
        } else {
            // The 65-bit magic 2^(65 + shift) / d + 1, less its top bit.
            let twice_rem = rem.wrapping_add(rem);
            let carry = u64::from(twice_rem >= d || twice_rem < rem);
            Self {
                d,
                magic: m.wrapping_add(m).wrapping_add(carry).wrapping_add(1),
                shift,
                add: true,
            }
        }
    }

    /// The divisor.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.d
    }

    /// `n / d`.
    #[inline]
    pub(crate) fn div(&self, n: u64) -> u64 {
        if self.magic == 0 {
            return n >> self.shift;
        }
        let q = ((u128::from(self.magic) * u128::from(n)) >> 64) as u64;
        if self.add {
            (((n - q) >> 1) + q) >> self.shift
        } else {
            q >> self.shift
        }
    }

    /// `n - n % d`: the largest multiple of `d` at most `n`.
    #[inline]
    pub(crate) fn floor(&self, n: u64) -> u64 {
        self.div(n) * self.d
    }

    /// `n.div_ceil(d)`.
    #[inline]
    pub(crate) fn div_ceil(&self, n: u64) -> u64 {
        let q = self.div(n);
        q + u64::from(q * self.d != n)
    }
}

#[cfg(test)]
mod tests {
    use super::Divisor;
    use proptest::prelude::*;

    fn check(d: u64, n: u64) {
        let v = Divisor::new(d);
        assert_eq!(v.div(n), n / d, "{n} / {d}");
        assert_eq!(v.floor(n), n - n % d, "{n} floor {d}");
        assert_eq!(v.div_ceil(n), n.div_ceil(d), "{n} div_ceil {d}");
    }

    fn edges() -> Vec<u64> {
        let mut v = vec![0, 1, 2, 3, 5, 7, 10, 1000, 999_999_999, 1_000_000_000];
        for s in 0..64 {
            let p = 1u64 << s;
            v.extend([p - 1, p, p + 1, p.wrapping_mul(3)]);
        }
        v.extend([
            u64::MAX,
            u64::MAX - 1,
            u64::MAX / 3,
            u64::MAX / 2 + 1,
            u64::MAX / 7,
        ]);
        v.retain(|&x| x > 0);
        v
    }

    #[test]
    fn divisor_is_exact_on_edge_values() {
        let e = edges();
        for &d in &e {
            for &n in &e {
                check(d, n);
                check(d, n - 1);
            }
        }
    }

    proptest! {
        #[test]
        fn divisor_is_exact(d in 1u64.., n: u64, small in 1u64..100_000) {
            check(d, n);
            check(small, n);
            check((d >> (d % 64)).max(1), n >> (n % 64));
        }
    }
}
