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
