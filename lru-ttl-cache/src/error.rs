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
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
        }
    }
}

impl std::error::Error for BuildError {}
