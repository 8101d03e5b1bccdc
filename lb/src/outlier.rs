//! Envoy's statistical outlier detection: success-rate and
//! failure-percentage ejection, decided once per interval from each
//! backend's requests and failures in that interval.

use crate::error::BuildError;

/// Success-rate ejection (Envoy's `success_rate_*` settings and defaults).
///
/// Once per interval, the backends with at least `request_volume` requests
/// in it count; when at least `minimum_hosts` count, their success rates
/// (percent) give a mean and a (population) standard deviation, and each
/// counted backend whose rate is below `mean - stdev_factor * stdev` is
/// ejected. Envoy's example: rates 50, 100, 100, 100 and 100 have mean 90
/// and deviation 20, so the threshold is `90 - 1.9 x 20 = 52` and the
/// first backend goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SuccessRateEjection {
    /// Backends with enough requests needed for the check to run (Envoy: 5).
    pub minimum_hosts: u32,
    /// Requests in the interval for a backend to count (Envoy: 100).
    pub request_volume: u32,
    /// How many standard deviations below the mean eject (Envoy's
    /// `success_rate_stdev_factor` of 1900 is 1.9 here).
    pub stdev_factor: f64,
}

impl Default for SuccessRateEjection {
    fn default() -> Self {
        Self {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1.9,
        }
    }
}

impl SuccessRateEjection {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.minimum_hosts == 0 {
            return Err(BuildError::Zero {
                setting: "SuccessRateEjection::minimum_hosts",
            });
        }
        if self.request_volume == 0 {
            return Err(BuildError::Zero {
                setting: "SuccessRateEjection::request_volume",
            });
        }
        if !(self.stdev_factor.is_finite() && self.stdev_factor >= 0.0) {
            return Err(BuildError::OutOfRange {
                setting: "SuccessRateEjection::stdev_factor",
                expected: "a finite number, zero or more",
            });
        }
        Ok(())
    }
}

/// Failure-percentage ejection (Envoy's `failure_percentage_*` settings
/// and defaults): once per interval, when at least `minimum_hosts` backends
/// had `request_volume` requests or more in it, each of them whose failures
/// are `threshold` percent of its requests or more is ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailurePercentageEjection {
    /// The failure percentage that ejects (Envoy: 85).
    pub threshold: u8,
    /// Backends with enough requests needed for the check to run (Envoy: 5).
    pub minimum_hosts: u32,
    /// Requests in the interval for a backend to count (Envoy: 50).
    pub request_volume: u32,
}

impl Default for FailurePercentageEjection {
    fn default() -> Self {
        Self {
            threshold: 85,
            minimum_hosts: 5,
            request_volume: 50,
        }
    }
}

impl FailurePercentageEjection {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.threshold > 100 {
            return Err(BuildError::OutOfRange {
                setting: "FailurePercentageEjection::threshold",
                expected: "0..=100",
            });
        }
        if self.minimum_hosts == 0 {
            return Err(BuildError::Zero {
                setting: "FailurePercentageEjection::minimum_hosts",
            });
        }
        if self.request_volume == 0 {
            return Err(BuildError::Zero {
                setting: "FailurePercentageEjection::request_volume",
            });
        }
        Ok(())
    }
}

/// Envoy's success-rate threshold: `mean - factor * stdev` of `rates`
/// (population deviation). `rates` is not empty.
pub(crate) fn success_rate_threshold(rates: &[f64], factor: f64) -> f64 {
    let n = rates.len() as f64;
    let mean = rates.iter().sum::<f64>() / n;
    let variance = rates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    mean - factor * variance.sqrt()
}

/// One interval's counts of one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) requests: u64,
    pub(crate) failures: u64,
}

impl Window {
    /// Packs a request into the counter word: requests in the high half,
    /// failures in the low half, so one `fetch_add` records both.
    pub(crate) fn increment(failed: bool) -> u64 {
        (1 << 32) | u64::from(failed)
    }

    pub(crate) fn unpack(word: u64) -> Self {
        Self {
            requests: word >> 32,
            failures: word & 0xffff_ffff,
        }
    }

    fn success_percent(self) -> f64 {
        100.0 * (self.requests - self.failures.min(self.requests)) as f64 / self.requests as f64
    }
}

/// The indices (into `windows`; `None` for backends not under watch, the
/// ejected ones) of the backends the two checks eject, the lowest success
/// rate first.
pub(crate) fn outliers(
    windows: &[Option<Window>],
    success_rate: Option<&SuccessRateEjection>,
    failure_percentage: Option<&FailurePercentageEjection>,
) -> Vec<usize> {
    let mut out: Vec<(usize, f64)> = Vec::new();
    if let Some(sr) = success_rate {
        let valid: Vec<(usize, f64)> = counted(windows, sr.request_volume);
        if valid.len() >= sr.minimum_hosts as usize {
            let rates: Vec<f64> = valid.iter().map(|&(_, r)| r).collect();
            let threshold = success_rate_threshold(&rates, sr.stdev_factor);
            out.extend(valid.into_iter().filter(|&(_, r)| r < threshold));
        }
    }
    if let Some(fp) = failure_percentage {
        let valid = counted(windows, fp.request_volume);
        if valid.len() >= fp.minimum_hosts as usize {
            for (i, r) in valid {
                let failed = 100.0 - r;
                if failed >= f64::from(fp.threshold) && !out.iter().any(|&(j, _)| j == i) {
                    out.push((i, r));
                }
            }
        }
    }
    out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    out.into_iter().map(|(i, _)| i).collect()
}

/// The backends with at least `volume` requests, with their success rates.
fn counted(windows: &[Option<Window>], volume: u32) -> Vec<(usize, f64)> {
    windows
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            let w = (*w)?;
            (w.requests >= u64::from(volume)).then(|| (i, w.success_percent()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(requests: u64, failures: u64) -> Option<Window> {
        Some(Window { requests, failures })
    }

    /// The example in Envoy's `successRateEjectionThreshold`: rates 50 and
    /// four 100s, mean 90, variance 400, deviation 20, threshold 52.
    #[test]
    fn envoys_threshold_example() {
        let t = success_rate_threshold(&[50.0, 100.0, 100.0, 100.0, 100.0], 1.9);
        assert!((t - 52.0).abs() < 1e-9, "{t}");
        // 90, 95 and three 100s: mean 97, variance 16, threshold 89.4.
        let t = success_rate_threshold(&[90.0, 95.0, 100.0, 100.0, 100.0], 1.9);
        assert!((t - 89.4).abs() < 1e-9, "{t}");
    }

    #[test]
    fn success_rate_needs_hosts_and_volume() {
        let sr = SuccessRateEjection::default();
        let five = [
            win(100, 50),
            win(100, 0),
            win(100, 0),
            win(100, 0),
            win(100, 0),
        ];
        assert_eq!(outliers(&five, Some(&sr), None), vec![0]);
        // 90 % is above the threshold of 89.4.
        let near = [
            win(100, 10),
            win(100, 5),
            win(100, 0),
            win(100, 0),
            win(100, 0),
        ];
        assert!(outliers(&near, Some(&sr), None).is_empty());
        // One host under the request volume: four count, fewer than five.
        let mut thin = five;
        thin[4] = win(99, 0);
        assert!(outliers(&thin, Some(&sr), None).is_empty());
        // An ejected host (None) does not count either.
        thin[4] = None;
        assert!(outliers(&thin, Some(&sr), None).is_empty());
    }

    #[test]
    fn failure_percentage_at_the_threshold() {
        let fp = FailurePercentageEjection::default();
        let w = [
            win(100, 85),
            win(100, 84),
            win(50, 50),
            win(49, 49),
            win(100, 0),
            win(100, 0),
        ];
        // 85 % and 100 % go; 84 % stays; 49 requests do not count.
        assert_eq!(outliers(&w, None, Some(&fp)), vec![2, 0]);
        let too_few = &w[..4];
        assert!(outliers(too_few, None, Some(&fp)).is_empty());
    }

    #[test]
    fn both_checks_report_a_backend_once() {
        let w = [
            win(100, 100),
            win(100, 0),
            win(100, 0),
            win(100, 0),
            win(100, 0),
        ];
        let sr = SuccessRateEjection::default();
        let fp = FailurePercentageEjection::default();
        assert_eq!(outliers(&w, Some(&sr), Some(&fp)), vec![0]);
    }

    #[test]
    fn packed_counts() {
        let word = Window::increment(true) + Window::increment(false) * 2;
        assert_eq!(
            Window::unpack(word),
            Window {
                requests: 3,
                failures: 1
            }
        );
    }

    #[test]
    fn bad_settings_are_reported() {
        let sr = SuccessRateEjection::default();
        assert!(sr.validate().is_ok());
        for f in [f64::NAN, -0.1, f64::INFINITY, f64::NEG_INFINITY] {
            let bad = SuccessRateEjection {
                stdev_factor: f,
                ..sr
            };
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        for bad in [
            SuccessRateEjection {
                minimum_hosts: 0,
                ..sr
            },
            SuccessRateEjection {
                request_volume: 0,
                ..sr
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let fp = FailurePercentageEjection::default();
        assert!(fp.validate().is_ok());
        for bad in [
            FailurePercentageEjection {
                threshold: 101,
                ..fp
            },
            FailurePercentageEjection {
                minimum_hosts: 0,
                ..fp
            },
            FailurePercentageEjection {
                request_volume: 0,
                ..fp
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
