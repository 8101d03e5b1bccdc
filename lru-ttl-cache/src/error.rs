//! The crate's error types.

use std::fmt;

/// A builder was given a setting it cannot honour. Settings are reported,
/// never clamped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting that must be positive was zero.
    Zero {
        /// The builder method that set it.
        setting: &'static str,
    },
    /// A setting was larger than the cache can honour.
    TooLarge {
        /// The builder method that set it.
        setting: &'static str,
        /// The largest accepted value.
        max: u64,
    },
    /// Two settings contradict each other.
    Conflict {
        /// The builder method whose value cannot be honoured.
        setting: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::TooLarge { setting, max } => write!(f, "{setting} must be at most {max}"),
            Self::Conflict { setting, reason } => write!(f, "{setting}: {reason}"),
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
            BuildError::Zero {
                setting: "max_capacity"
            }
            .to_string(),
            "max_capacity must be greater than zero"
        );
        assert_eq!(
            BuildError::TooLarge {
                setting: "shards",
                max: 4
            }
            .to_string(),
            "shards must be at most 4"
        );
    }
}
