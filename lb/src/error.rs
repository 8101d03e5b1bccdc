//! The crate's error types.

use std::fmt;

/// A builder (or a call that adds a backend) was given a setting it cannot
/// honour. Settings are reported, never clamped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting that must be positive was zero (a backend weight, a decay
    /// time constant, a threshold, an interval).
    Zero {
        /// The setting, named as the method that set it.
        setting: &'static str,
    },
    /// The backends' weights add up to more than `u32::MAX`, so the sums the
    /// weighted strategies keep could overflow.
    WeightOverflow,
    /// A setting was out of its documented range.
    OutOfRange {
        /// The setting, named as the method that set it.
        setting: &'static str,
        /// The documented range, in words.
        expected: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::WeightOverflow => f.write_str("the backend weights add up to more than u32::MAX"),
            Self::OutOfRange { setting, expected } => {
                write!(f, "{setting} is out of range: expected {expected}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_setting() {
        assert_eq!(
            BuildError::Zero { setting: "weight" }.to_string(),
            "weight must be greater than zero"
        );
        assert!(BuildError::WeightOverflow.to_string().contains("u32::MAX"));
        let e = BuildError::OutOfRange {
            setting: "max_ejection_percent",
            expected: "0..=100",
        };
        assert_eq!(
            e.to_string(),
            "max_ejection_percent is out of range: expected 0..=100"
        );
    }
}
