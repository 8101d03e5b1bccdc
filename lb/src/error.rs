//! The crate's error types.

use std::fmt;

/// The error of the `consistent-hash` crate, as
/// [`BuildError::HashTable`] carries it.
pub use sysblocks_consistent_hash::BuildError as HashTableError;

/// A builder (or a call that adds a backend) was given a setting it cannot
/// honour. Settings are reported, never clamped silently.
#[derive(Debug, Clone, PartialEq)]
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
    /// [`ConsistentHashing`](crate::ConsistentHashing)'s table cannot be
    /// built for these settings or these backends: the `consistent-hash`
    /// crate's own error, for example `TooLarge` when virtual nodes times
    /// the total weight exceed its `MAX_POINTS`, or when Maglev would need
    /// a table above its `MAX_TABLE_SIZE`.
    HashTable(HashTableError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::WeightOverflow => f.write_str("the backend weights add up to more than u32::MAX"),
            Self::OutOfRange { setting, expected } => {
                write!(f, "{setting} is out of range: expected {expected}")
            }
            Self::HashTable(e) => write!(f, "the consistent-hashing table cannot be built: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::HashTable(e) => Some(e),
            _ => None,
        }
    }
}

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
        let inner = HashTableError::TooLarge {
            setting: "points",
            max: 16,
        };
        let e = BuildError::HashTable(inner.clone());
        assert_eq!(
            e.to_string(),
            format!("the consistent-hashing table cannot be built: {inner}")
        );
        let source = std::error::Error::source(&e).expect("the table's error");
        assert_eq!(source.to_string(), inner.to_string());
    }
}
