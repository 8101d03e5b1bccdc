//! Envoy's slow start: a backend that joins, or returns after an ejection
//! or failed probes, takes a growing share of its traffic over a window.

use std::time::Duration;

use crate::error::BuildError;

/// Slow start, with Envoy's formula: during `window` after a backend joins
/// the balancer (by [`Balancer::add`](crate::Balancer::add) or discovery)
/// or returns to service (its ejection ends, or its probes pass again), its
/// weight is scaled by
///
/// `max(min_weight_percent / 100, time_factor ^ (1 / aggression))`,
/// `time_factor = max(elapsed, 1 ms) / window`.
///
/// Aggression 1 ramps linearly; above 1 the ramp is fast at first, below 1
/// slow at first. The backends given to the builder start warm (the
/// balancer starts with them, so there is nothing to ramp up against).
///
/// The scale applies to every strategy, as an acceptance test on the
/// strategy's choice: a warming backend the strategy chose is taken with
/// probability equal to its factor, otherwise the strategy chooses again
/// (at most [`SlowStart::MAX_REDRAWS`] times, then the last choice stands).
/// Keyed picks ([`Context::with_key`](crate::Context::with_key)) are never
/// redrawn: a key's placement does not move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowStart {
    /// How long a backend ramps up.
    pub window: Duration,
    /// The ramp's shape: the factor is `time_factor ^ (1 / aggression)`.
    /// Envoy's default is 1 (linear).
    pub aggression: f64,
    /// The least share of its weight a warming backend gets, in percent.
    /// Envoy's default is 10.
    pub min_weight_percent: u8,
}

impl SlowStart {
    /// How many times a pick is redrawn when the chosen backend's slow
    /// start declines it.
    pub const MAX_REDRAWS: u32 = 4;

    /// A ramp over `window` with Envoy's defaults (aggression 1, at least
    /// 10 % of the weight).
    #[must_use]
    pub const fn new(window: Duration) -> Self {
        Self {
            window,
            aggression: 1.0,
            min_weight_percent: 10,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.window.is_zero() {
            return Err(BuildError::Zero {
                setting: "SlowStart::window",
            });
        }
        if !(self.aggression.is_finite() && self.aggression > 0.0) {
            return Err(BuildError::OutOfRange {
                setting: "SlowStart::aggression",
                expected: "a finite number greater than zero",
            });
        }
        if self.min_weight_percent > 100 {
            return Err(BuildError::OutOfRange {
                setting: "SlowStart::min_weight_percent",
                expected: "0..=100",
            });
        }
        Ok(())
    }

    /// The share of its weight a backend gets `elapsed` after it joined or
    /// returned: 1 from the end of the window on.
    #[must_use]
    pub fn weight_factor(&self, elapsed: Duration) -> f64 {
        if elapsed >= self.window {
            return 1.0;
        }
        let time_factor =
            elapsed.max(Duration::from_millis(1)).as_secs_f64() / self.window.as_secs_f64();
        let floor = f64::from(self.min_weight_percent) / 100.0;
        time_factor.powf(1.0 / self.aggression).max(floor).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// Envoy's formula on hand-computed inputs.
    #[test]
    fn envoys_formula() {
        let s = SlowStart::new(Duration::from_secs(10));
        assert!(close(s.weight_factor(Duration::from_secs(2)), 0.2));
        assert!(close(s.weight_factor(Duration::from_secs(5)), 0.5));
        // Below the floor: 10 %.
        assert!(close(s.weight_factor(Duration::from_millis(500)), 0.1));
        assert!(close(s.weight_factor(Duration::ZERO), 0.1));
        assert!(close(s.weight_factor(Duration::from_secs(10)), 1.0));
        assert!(close(s.weight_factor(Duration::MAX), 1.0));
        // Aggression 2: the square root of the time factor.
        let fast = SlowStart {
            aggression: 2.0,
            ..s
        };
        assert!(close(
            fast.weight_factor(Duration::from_secs(4)),
            0.4f64.sqrt()
        ));
        // Aggression 0.5: its square; 0.04 is under the floor of 0 % only.
        let slow = SlowStart {
            aggression: 0.5,
            min_weight_percent: 0,
            ..s
        };
        assert!(close(slow.weight_factor(Duration::from_secs(2)), 0.04));
        // Elapsed under 1 ms counts as 1 ms.
        assert!(close(slow.weight_factor(Duration::ZERO), 1e-8));
    }

    #[test]
    fn bad_settings_are_reported() {
        let s = SlowStart::new(Duration::from_secs(1));
        assert!(s.validate().is_ok());
        for bad in [
            SlowStart::new(Duration::ZERO),
            SlowStart {
                aggression: f64::NAN,
                ..s
            },
            SlowStart {
                aggression: -1.0,
                ..s
            },
            SlowStart {
                aggression: 0.0,
                ..s
            },
            SlowStart {
                aggression: f64::INFINITY,
                ..s
            },
            SlowStart {
                min_weight_percent: 101,
                ..s
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
