//! Routing of intermediate keys to the R reduce partitions.

use crate::error::BuildError;

/// Chooses the reduce partition of a key.
///
/// Called once per distinct key per map task, with the key's 64-bit hash
/// (ahash with fixed seeds: the same in every run of one build).
pub trait Partitioner<K: ?Sized>: Send + Sync {
    /// The partition of `key`, which must be below `partitions`; a larger
    /// index fails the map task with
    /// [`TaskError::BadPartition`](crate::TaskError::BadPartition).
    fn partition(&self, key: &K, hash: u64, partitions: usize) -> usize;

    /// Whether partition `i` holds only keys smaller than those of partition
    /// `i + 1`. Then the sorted in-memory result is the partitions
    /// concatenated, and the `part-*` files are globally sorted.
    fn is_ordered(&self) -> bool {
        false
    }
}

/// The default: the key's hash modulo R.
#[derive(Debug, Clone, Copy, Default)]
pub struct HashPartitioner;

impl<K: ?Sized> Partitioner<K> for HashPartitioner {
    #[inline]
    fn partition(&self, _key: &K, hash: u64, partitions: usize) -> usize {
        (hash % partitions as u64) as usize
    }
}

/// Range partitioning for globally sorted output: partition `i` holds the
/// keys `k` with `bounds[i-1] <= k < bounds[i]`.
///
/// Build it from a sample of the keys ([`RangePartitioner::from_sample`]),
/// as Hadoop's `TotalOrderPartitioner` does, or from explicit bounds.
#[derive(Debug, Clone)]
pub struct RangePartitioner<K> {
    bounds: Vec<K>,
}

impl<K: Ord + Clone + Send + Sync> RangePartitioner<K> {
    /// Splits the sample into `partitions` parts of about equal size: the
    /// bounds are the sample's quantiles `i / partitions` (duplicates
    /// dropped, so a skewed sample may give fewer non-empty partitions).
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] when `partitions` is 0,
    /// [`BuildError::Invalid`] when it exceeds
    /// [`Runner::MAX_PARTITIONS`](crate::Runner::MAX_PARTITIONS).
    pub fn from_sample(mut sample: Vec<K>, partitions: usize) -> Result<Self, BuildError> {
        if partitions == 0 {
            return Err(BuildError::Zero {
                setting: "partitions",
            });
        }
        if partitions > crate::Runner::MAX_PARTITIONS {
            return Err(BuildError::Invalid {
                setting: "partitions",
                reason: "more than Runner::MAX_PARTITIONS (65536)",
            });
        }
        sample.sort_unstable();
        let mut bounds: Vec<K> = Vec::with_capacity((partitions - 1).min(sample.len()));
        if !sample.is_empty() {
            let len = sample.len() as u128;
            for i in 1..partitions {
                // `i * len / partitions < len`; in u128, as `i * len` may
                // not fit a usize (a sample of zero-sized keys).
                let k = &sample[(i as u128 * len / partitions as u128) as usize];
                if bounds.last() != Some(k) {
                    bounds.push(k.clone());
                }
            }
        }
        Ok(Self { bounds })
    }

    /// Uses `bounds` (strictly increasing) as the split points: R must be at
    /// least `bounds.len() + 1`.
    ///
    /// # Errors
    ///
    /// [`BuildError::Invalid`] when the bounds are not strictly increasing,
    /// or when they would need more than
    /// [`Runner::MAX_PARTITIONS`](crate::Runner::MAX_PARTITIONS) partitions.
    pub fn from_bounds(bounds: Vec<K>) -> Result<Self, BuildError> {
        if bounds.len() >= crate::Runner::MAX_PARTITIONS {
            return Err(BuildError::Invalid {
                setting: "bounds",
                reason: "more bounds than Runner::MAX_PARTITIONS - 1",
            });
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BuildError::Invalid {
                setting: "bounds",
                reason: "range bounds must be strictly increasing",
            });
        }
        Ok(Self { bounds })
    }

    /// The split points.
    #[must_use]
    pub fn bounds(&self) -> &[K] {
        &self.bounds
    }
}

impl<K: Ord + Clone + Send + Sync> Partitioner<K> for RangePartitioner<K> {
    #[inline]
    fn partition(&self, key: &K, _hash: u64, _partitions: usize) -> usize {
        self.bounds.partition_point(|b| b <= key)
    }

    fn is_ordered(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_from_sample_quantiles() {
        let p = RangePartitioner::from_sample((0..100u32).rev().collect(), 4).unwrap();
        assert_eq!(p.bounds(), &[25, 50, 75]);
        assert_eq!(p.partition(&0, 0, 4), 0);
        assert_eq!(p.partition(&24, 0, 4), 0);
        assert_eq!(p.partition(&25, 0, 4), 1);
        assert_eq!(p.partition(&99, 0, 4), 3);
        assert_eq!(p.partition(&1000, 0, 4), 3);
        assert!(p.is_ordered());
    }

    #[test]
    fn range_bad_settings() {
        assert!(RangePartitioner::<u32>::from_sample(vec![1], 0).is_err());
        assert!(RangePartitioner::from_bounds(vec![1, 1]).is_err());
        let empty = RangePartitioner::<u32>::from_sample(vec![], 3).unwrap();
        assert_eq!(empty.partition(&7, 0, 3), 0);
    }

    #[test]
    fn hash_is_mod_r() {
        assert_eq!(Partitioner::<u8>::partition(&HashPartitioner, &0, 10, 4), 2);
    }
}
