//! The crate's error types.

use std::fmt;

/// A builder was given a setting it cannot honour. Settings are reported,
/// never clamped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting that must be positive was zero.
    Zero {
        /// The setting (builder method or quota part) that was zero.
        setting: &'static str,
    },
    /// The rate asks for more than one cell per nanosecond, the finest step
    /// the clock can express.
    RateTooHigh,
    /// A duration or product of settings does not fit in 64-bit nanoseconds
    /// (about 584 years).
    TooLong {
        /// The setting that overflowed.
        setting: &'static str,
    },
    /// A count setting is above the most the structure supports.
    TooMany {
        /// The setting.
        setting: &'static str,
        /// The most allowed.
        max: usize,
    },
    /// A setting has a value the limiter cannot use (for example a Redis
    /// key prefix holding a hash-tag brace).
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A token bucket's initial fill is larger than its capacity.
    InitialExceedsCapacity {
        /// The requested initial fill.
        initial: u32,
        /// The capacity.
        capacity: u32,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::RateTooHigh => {
                f.write_str("rate exceeds one cell per nanosecond, the clock's resolution")
            }
            Self::TooLong { setting } => {
                write!(f, "{setting} does not fit in 64-bit nanoseconds")
            }
            Self::TooMany { setting, max } => write!(f, "{setting} must be at most {max}"),
            Self::Invalid { setting, reason } => write!(f, "invalid {setting}: {reason}"),
            Self::InitialExceedsCapacity { initial, capacity } => write!(
                f,
                "initial fill {initial} exceeds the bucket capacity {capacity}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// A check that can never succeed, reported instead of a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckError {
    /// The cost is larger than the limiter can ever admit at once, so
    /// waiting would not help.
    CostExceedsLimit {
        /// The cost asked for.
        cost: u32,
        /// The most this limiter admits in one call.
        limit: u32,
    },
    /// Returned by the waiting forms only: the request could be admitted
    /// only after the last instant the clock can express (`u64::MAX`
    /// nanoseconds after its origin, about 584 years), so waiting would not
    /// help. `check_n` reports the same case as a denial whose
    /// `retry_after` is [`Decision::RETRY_NEVER`](crate::Decision::RETRY_NEVER).
    EndOfClock,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CostExceedsLimit { cost, limit } => write!(
                f,
                "cost {cost} exceeds {limit}, the most this limiter can ever admit at once"
            ),
            Self::EndOfClock => {
                f.write_str("the request could be admitted only after the end of the clock's range")
            }
        }
    }
}

impl std::error::Error for CheckError {}
