//! Retry schedules: exponential backoff with full jitter, Sidekiq's
//! polynomial schedule, and a fixed delay.

use std::time::Duration;

use crate::error::BuildError;
use sysblocks_clock::saturating_nanos;

/// How long a failed task waits before its next attempt.
///
/// `retry` below counts retries from 0: the wait after the first failed
/// attempt is `delay(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Exponential backoff with "full jitter" (Brooker, *Exponential Backoff
    /// And Jitter*, AWS Architecture Blog, 2015): a delay drawn uniformly
    /// from `[0, min(max, base * 2^retry)]`.
    Exponential {
        /// The ceiling of the first retry's delay.
        base: Duration,
        /// The ceiling of every delay.
        max: Duration,
    },
    /// Sidekiq's default schedule, `retry^4 + 15 + rand(30) * (retry + 1)`
    /// units (Sidekiq counts in seconds: 15, 16, 31, 96, 271, ... seconds
    /// plus jitter; 25 retries span about three weeks).
    Polynomial {
        /// The length of Sidekiq's second (use a smaller one in tests).
        unit: Duration,
    },
    /// The same delay every time.
    Fixed(Duration),
}

impl Default for Backoff {
    /// Exponential, 100 ms doubling up to 1 minute, full jitter.
    fn default() -> Self {
        Self::Exponential {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Exponential backoff with full jitter, checked.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `base` is zero and [`BuildError::Invalid`] if
    /// `max < base`.
    pub fn exponential(base: Duration, max: Duration) -> Result<Self, BuildError> {
        let b = Self::Exponential { base, max };
        b.check()?;
        Ok(b)
    }

    /// Sidekiq's polynomial schedule with `unit` as its second.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `unit` is zero.
    pub fn polynomial(unit: Duration) -> Result<Self, BuildError> {
        let b = Self::Polynomial { unit };
        b.check()?;
        Ok(b)
    }

    /// Checks a schedule built from the variants directly the way the
    /// constructors do (the queue builder calls it). Delays that do not fit
    /// the clock's `u64` nanoseconds saturate there.
    ///
    /// # Errors
    ///
    /// What [`Backoff::exponential`] and [`Backoff::polynomial`] return for
    /// the same settings; a [`Backoff::Fixed`] delay is always valid (zero
    /// retries at once).
    pub fn check(&self) -> Result<(), BuildError> {
        match *self {
            Self::Exponential { base, max } => {
                if base.is_zero() {
                    return Err(BuildError::Zero {
                        setting: "backoff base",
                    });
                }
                if max < base {
                    return Err(BuildError::Invalid {
                        setting: "backoff max",
                        reason: "must be at least the base",
                    });
                }
                Ok(())
            }
            Self::Polynomial { unit } if unit.is_zero() => Err(BuildError::Zero {
                setting: "backoff unit",
            }),
            Self::Polynomial { .. } | Self::Fixed(_) => Ok(()),
        }
    }

    /// The smallest and largest delay the schedule can pick for `retry`
    /// (both inclusive), in nanoseconds.
    #[must_use]
    pub fn bounds_nanos(&self, retry: u32) -> (u64, u64) {
        match *self {
            Self::Exponential { base, max } => {
                let base = saturating_nanos(base);
                let max = saturating_nanos(max);
                let ceiling = if retry >= 64 {
                    max
                } else {
                    base.checked_mul(1u64 << retry).map_or(max, |c| c.min(max))
                };
                (0, ceiling)
            }
            Self::Polynomial { unit } => {
                let unit = saturating_nanos(unit);
                let r = u64::from(retry);
                let fixed = r.saturating_pow(4).saturating_add(15);
                let lo = fixed.saturating_mul(unit);
                let hi = fixed
                    .saturating_add(29u64.saturating_mul(r + 1))
                    .saturating_mul(unit);
                (lo, hi)
            }
            Self::Fixed(d) => {
                let d = saturating_nanos(d);
                (d, d)
            }
        }
    }

    /// The delay before retry number `retry`, with `random` (any 64 random
    /// bits) choosing the jitter. Always within [`Backoff::bounds_nanos`].
    #[must_use]
    pub fn delay_nanos(&self, retry: u32, random: u64) -> u64 {
        match *self {
            Self::Exponential { .. } => {
                let (_, hi) = self.bounds_nanos(retry);
                uniform_inclusive(random, hi)
            }
            Self::Polynomial { unit } => {
                let unit = saturating_nanos(unit);
                let r = u64::from(retry);
                let jitter = uniform_inclusive(random, 29).saturating_mul(r + 1);
                r.saturating_pow(4)
                    .saturating_add(15)
                    .saturating_add(jitter)
                    .saturating_mul(unit)
            }
            Self::Fixed(d) => saturating_nanos(d),
        }
    }
}

/// A uniform draw from `0..=hi` (Lemire's multiply-shift; the bias is below
/// 2^-64 per value, far under anything a schedule can notice).
fn uniform_inclusive(random: u64, hi: u64) -> u64 {
    if hi == u64::MAX {
        return random;
    }
    ((u128::from(random) * (u128::from(hi) + 1)) >> 64) as u64
}

/// SplitMix64 (Steele, Lea, Flood 2014): the seeded generator behind the
/// jitter, so a seeded queue replays the same schedule.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests {
    use super::*;

    /// SplitMix64's first outputs for seed 0, as published with the
    /// reference implementation (and used by e.g. the xoshiro authors to
    /// seed their generators).
    #[test]
    fn splitmix_known_answers() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    /// Sidekiq's documented schedule without jitter: 15, 16, 31, 96, 271 s.
    #[test]
    fn polynomial_matches_sidekiq() {
        let b = Backoff::polynomial(Duration::from_secs(1)).unwrap();
        let lows: Vec<u64> = (0..5)
            .map(|r| b.bounds_nanos(r).0 / 1_000_000_000)
            .collect();
        assert_eq!(lows, [15, 16, 31, 96, 271]);
        // Jitter is rand(30) * (retry + 1): retry 2 can add up to 87 s.
        assert_eq!(b.bounds_nanos(2).1 / 1_000_000_000, 31 + 29 * 3);
        assert_eq!(b.delay_nanos(2, 0), 31_000_000_000);
        assert_eq!(b.delay_nanos(2, u64::MAX), 118_000_000_000);
        // 25 retries at the mean jitter take about three weeks (Sidekiq:
        // "25 retries over approximately 21 days").
        let mean: f64 = (0..25u32)
            .map(|r| {
                let (lo, hi) = b.bounds_nanos(r);
                (lo as f64 + hi as f64) / 2.0
            })
            .sum::<f64>()
            / 86_400e9;
        assert!((20.0..21.5).contains(&mean), "{mean} days");
    }

    #[test]
    fn exponential_ceiling_doubles_then_caps() {
        let b = Backoff::exponential(Duration::from_millis(10), Duration::from_millis(75)).unwrap();
        let his: Vec<u64> = (0..5).map(|r| b.bounds_nanos(r).1 / 1_000_000).collect();
        assert_eq!(his, [10, 20, 40, 75, 75]);
        assert_eq!(b.bounds_nanos(200).1, 75_000_000);
        assert_eq!(b.delay_nanos(1, 0), 0);
        assert_eq!(b.delay_nanos(1, u64::MAX), 20_000_000);
        assert!(Backoff::exponential(Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1)).is_err());
        assert!(Backoff::polynomial(Duration::ZERO).is_err());
    }

    #[test]
    fn full_jitter_spreads_over_the_whole_range() {
        let b = Backoff::exponential(Duration::from_nanos(1000), Duration::from_secs(1)).unwrap();
        let mut rng = SplitMix64::new(7);
        let mut buckets = [0u32; 4];
        for _ in 0..4000 {
            let d = b.delay_nanos(0, rng.next_u64());
            buckets[(d * 4 / 1001) as usize] += 1;
        }
        for n in buckets {
            assert!((800..1200).contains(&n), "{buckets:?}");
        }
    }
}
