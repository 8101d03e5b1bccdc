//! The crate's error types.

use std::fmt;

/// A constructor or an update was given a setting or node it cannot honour.
/// Settings are reported, never clamped silently.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting that must be positive was zero (a weight, a vnode count,
    /// a probe count).
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
    /// The node is already present (nodes are compared with `Eq`, and two
    /// nodes with the same pinned hash count as the same node).
    DuplicateNode,
    /// A Maglev table size that is not prime.
    NotPrime {
        /// The size given.
        size: u64,
    },
    /// A Maglev table size below 100 entries per node (or below 100 for an
    /// empty node set).
    TableTooSmall {
        /// The size given.
        size: u64,
        /// The smallest size accepted for this node set.
        min: u64,
    },
    /// A bounded-load factor that is below 1, or not finite.
    LoadFactor {
        /// The factor given.
        c: f64,
    },
    /// A count beyond the documented maximum: ring points past
    /// [`MAX_POINTS`](crate::MAX_POINTS), a Maglev table past
    /// [`MAX_TABLE_SIZE`](crate::MAX_TABLE_SIZE), probes past
    /// [`MAX_PROBES`](crate::MAX_PROBES), more than `u32::MAX` nodes.
    /// Checked before anything is allocated.
    TooLarge {
        /// The setting's name.
        setting: &'static str,
        /// The largest value accepted.
        max: u64,
    },
    /// Only the last bucket of a jump hash can be removed.
    NotLastBucket,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::DuplicateNode => f.write_str("the node is already present"),
            Self::NotPrime { size } => write!(f, "table size {size} is not prime"),
            Self::TableTooSmall { size, min } => {
                write!(f, "table size {size} is below the minimum {min}")
            }
            Self::LoadFactor { c } => {
                write!(f, "load factor {c} must be finite and at least 1")
            }
            Self::TooLarge { setting, max } => {
                write!(f, "{setting} exceeds the maximum of {max}")
            }
            Self::NotLastBucket => f.write_str("jump hash can only remove its last bucket"),
        }
    }
}

impl std::error::Error for BuildError {}
