//! Health settings: passive outlier detection (Envoy's consecutive-failure
//! ejection) and active health checks (a user probe on an interval).

use std::time::Duration;

use crate::error::BuildError;

/// Passive outlier detection, with Envoy's defaults: after
/// `consecutive_failures` failures in a row (5) a backend is ejected for
/// `base_ejection_time` (30 s) times the number of times it has been
/// ejected, capped at `max_ejection_time` (300 s); at most
/// `max_ejection_percent` (10 %) of the backends are ejected at once, but
/// always at least one. A readmitted backend starts with a clean failure
/// streak; a success anywhere in a streak resets it.
///
/// Envoy also lowers the ejection multiplier again while a host stays
/// healthy; this crate does not (the multiplier only grows).
///
/// An ejection ends at a clock reading, `now + ejection time` (saturating),
/// so it never ends early: a clock that steps back (the default
/// [`MonotonicClock`](crate::MonotonicClock) never does) delays the
/// readmission by the step, and an ejection whose end saturates at the
/// clock's end, `u64::MAX` ns (a `base_ejection_time` of `Duration::MAX`,
/// or a clock already there), lasts for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierDetection {
    /// Failures in a row that eject a backend.
    pub consecutive_failures: u32,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// The cap on an ejection's length.
    pub max_ejection_time: Duration,
    /// The most backends ejected at once, in percent of all backends
    /// (rounded down, but at least one).
    pub max_ejection_percent: u8,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierDetection {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.consecutive_failures == 0 {
            return Err(BuildError::Zero {
                setting: "OutlierDetection::consecutive_failures",
            });
        }
        if self.base_ejection_time.is_zero() {
            return Err(BuildError::Zero {
                setting: "OutlierDetection::base_ejection_time",
            });
        }
        if self.max_ejection_time < self.base_ejection_time {
            return Err(BuildError::OutOfRange {
                setting: "OutlierDetection::max_ejection_time",
                expected: "at least base_ejection_time",
            });
        }
        if self.max_ejection_percent > 100 {
            return Err(BuildError::OutOfRange {
                setting: "OutlierDetection::max_ejection_percent",
                expected: "0..=100",
            });
        }
        Ok(())
    }

    /// How many of `n` backends may be ejected at once.
    pub(crate) fn max_ejected(&self, n: usize) -> usize {
        (n * usize::from(self.max_ejection_percent) / 100).max(1)
    }

    /// The length of the `times`-th ejection (1-based).
    pub(crate) fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection_time
            .checked_mul(times)
            .unwrap_or(Duration::MAX)
            .min(self.max_ejection_time)
    }
}

/// Active health checking: [`Balancer::check_health`](crate::Balancer::check_health)
/// probes each backend at most once per `interval`; `unhealthy_threshold`
/// failed probes in a row take a backend out, `healthy_threshold` passed
/// probes in a row bring it back. The defaults are HAProxy's (`inter 2s`,
/// `fall 3`, `rise 2`).
///
/// A probe is due at a clock reading, the last probe's plus `interval`
/// (saturating), so it never runs early: a clock that steps back delays it
/// by the step. An `interval` of `Duration::MAX` probes each backend once
/// and then no more before the clock's end. At the clock's end, `u64::MAX`
/// ns, no interval can be measured any more and every call probes every
/// backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthCheck {
    /// Time between two probes of one backend.
    pub interval: Duration,
    /// Failed probes in a row that mark a healthy backend unhealthy.
    pub unhealthy_threshold: u32,
    /// Passed probes in a row that mark an unhealthy backend healthy.
    pub healthy_threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

impl HealthCheck {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.interval.is_zero() {
            return Err(BuildError::Zero {
                setting: "HealthCheck::interval",
            });
        }
        if self.unhealthy_threshold == 0 {
            return Err(BuildError::Zero {
                setting: "HealthCheck::unhealthy_threshold",
            });
        }
        if self.healthy_threshold == 0 {
            return Err(BuildError::Zero {
                setting: "HealthCheck::healthy_threshold",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_ejection_times() {
        let od = OutlierDetection::default();
        assert_eq!(od.ejection_time(1), Duration::from_secs(30));
        assert_eq!(od.ejection_time(2), Duration::from_secs(60));
        assert_eq!(od.ejection_time(10), Duration::from_secs(300));
        assert_eq!(od.ejection_time(11), Duration::from_secs(300));
        assert_eq!(od.ejection_time(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn at_most_ten_percent_but_at_least_one() {
        let od = OutlierDetection::default();
        assert_eq!(od.max_ejected(1), 1);
        assert_eq!(od.max_ejected(9), 1);
        assert_eq!(od.max_ejected(10), 1);
        assert_eq!(od.max_ejected(25), 2);
        assert_eq!(od.max_ejected(100), 10);
        let none = OutlierDetection {
            max_ejection_percent: 0,
            ..od
        };
        assert_eq!(none.max_ejected(100), 1);
    }

    #[test]
    fn bad_settings_are_reported() {
        let od = OutlierDetection::default();
        assert!(od.validate().is_ok());
        for bad in [
            OutlierDetection {
                consecutive_failures: 0,
                ..od
            },
            OutlierDetection {
                base_ejection_time: Duration::ZERO,
                ..od
            },
            OutlierDetection {
                max_ejection_time: Duration::from_secs(1),
                ..od
            },
            OutlierDetection {
                max_ejection_percent: 101,
                ..od
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let hc = HealthCheck::default();
        assert!(hc.validate().is_ok());
        for bad in [
            HealthCheck {
                interval: Duration::ZERO,
                ..hc
            },
            HealthCheck {
                unhealthy_threshold: 0,
                ..hc
            },
            HealthCheck {
                healthy_threshold: 0,
                ..hc
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
