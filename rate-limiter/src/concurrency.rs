//! `ConcurrencyLimiter`: at most N in flight, released by an RAII permit.

use crate::sync::{AtomicU32, Ordering};
use crate::{BuildError, CheckError};

/// Admits at most `max` units in flight at once (Stripe's "concurrent
/// requests limiter"). [`ConcurrencyLimiter::try_acquire_n`] takes units
/// with a lock-free compare-and-swap and returns a [`Permit`] that gives
/// them back when dropped.
///
/// It limits concurrency, not rate, so it has no clock and is not a
/// [`RateLimiter`](crate::RateLimiter).
///
/// # Examples
///
/// ```
/// use sysblocks_rate_limiter::ConcurrencyLimiter;
///
/// let limiter = ConcurrencyLimiter::new(2)?;
/// let a = limiter.try_acquire().expect("one in flight");
/// let _b = limiter.try_acquire().expect("two in flight");
/// assert!(limiter.try_acquire().is_none());
/// drop(a);
/// assert_eq!(limiter.in_flight(), 1);
/// assert!(limiter.try_acquire().is_some());
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    max: u32,
    in_flight: AtomicU32,
}

/// Units held in a [`ConcurrencyLimiter`]; dropping it releases them.
#[derive(Debug)]
#[must_use = "the units are released as soon as the permit is dropped"]
pub struct Permit<'a> {
    limiter: &'a ConcurrencyLimiter,
    units: u32,
}

impl ConcurrencyLimiter {
    /// At most `max` units in flight.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `max` is 0.
    pub fn new(max: u32) -> Result<Self, BuildError> {
        if max == 0 {
            return Err(BuildError::Zero {
                setting: "max in flight",
            });
        }
        Ok(Self {
            max,
            in_flight: AtomicU32::new(0),
        })
    }

    /// The most units in flight at once.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Units in flight now.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Takes one unit if fewer than `max` are in flight.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_n(1).ok().flatten()
    }

    /// Takes `units` if they fit; `Ok(None)` if they do not fit now.
    ///
    /// # Errors
    ///
    /// [`CheckError::CostExceedsLimit`] if `units > max`: they never fit.
    pub fn try_acquire_n(&self, units: u32) -> Result<Option<Permit<'_>>, CheckError> {
        if units > self.max {
            return Err(CheckError::CostExceedsLimit {
                cost: units,
                limit: self.max,
            });
        }
        let mut cur = self.in_flight.load(Ordering::Acquire);
        loop {
            // `cur <= max` always, so this cannot overflow where
            // `cur + units` could.
            if units > self.max - cur {
                return Ok(None);
            }
            match self.in_flight.compare_exchange_weak(
                cur,
                cur + units,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Some(Permit {
                        limiter: self,
                        units,
                    }))
                }
                Err(actual) => {
                    cur = actual;
                    crate::sync::spin_loop();
                }
            }
        }
    }
}

impl Permit<'_> {
    /// Units this permit holds.
    #[must_use]
    pub fn units(&self) -> u32 {
        self.units
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter
            .in_flight
            .fetch_sub(self.units, Ordering::AcqRel);
    }
}
