//! The settings [`LruBuilder`](crate::LruBuilder) and
//! [`CacheBuilder`](crate::CacheBuilder) share (capacity, weigher, time to
//! live, time to idle, clock), validated in one place so that both report
//! the same error for the same settings.

use std::time::Duration;

use sysblocks_clock::{saturating_nanos, MonotonicClock, SharedClock};

use crate::error::BuildError;
use crate::expiry::Expiry;
use crate::sync::StdArc;

/// The most entries one [`LruCache`](crate::LruCache) (or one shard of a
/// [`Cache`](crate::Cache)) holds, whatever its weighted capacity: slots are
/// `u32` indices. An unweighted capacity above this is a [`BuildError`].
pub const MAX_ENTRIES: u64 = (u32::MAX - 1) as u64;

/// Slots reserved up front by a whole cache (all its shards together), at
/// most: a cache with a huge capacity that stays small does not pay for
/// it, and the reservation does not grow with the shard count. Past it
/// the slab grows on demand.
const MAX_PREALLOC: u64 = 1 << 12;

/// The eviction policy of a cache (of each shard of a [`Cache`](crate::Cache)),
/// chosen with the builders' `policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Exact least recently used (the default): evicts the entry unused
    /// the longest. It reproduces the published LRU hit ratios exactly.
    #[default]
    Lru,
    /// W-TinyLFU with Caffeine's hill-climbing window: a small LRU window
    /// in front of a segmented LRU main space, whose admission compares
    /// recent frequencies (a count-min sketch). Scan-resistant and adaptive
    /// to recency- and frequency-biased workloads; see the crate docs for
    /// the hit ratios it reaches.
    WTinyLfu,
}

/// The weigher a builder stores: entry weight in capacity units.
pub(crate) type Weigher<K, V> = StdArc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// The per-entry expiry policy a builder stores.
pub(crate) type ExpiryPolicy<K, V> = StdArc<dyn Expiry<K, V>>;

/// The shared settings as a builder collects them, unchecked.
pub(crate) struct Settings<K, V> {
    pub(crate) capacity: Option<u64>,
    pub(crate) weigher: Option<Weigher<K, V>>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) tti: Option<Duration>,
    pub(crate) clock: Option<SharedClock>,
    pub(crate) policy: Policy,
    pub(crate) expire_after: Option<ExpiryPolicy<K, V>>,
}

/// The shared settings once validated.
pub(crate) struct Valid<K, V> {
    /// The whole capacity (a sharded cache splits it between its shards).
    pub(crate) capacity: u64,
    pub(crate) weigher: Option<Weigher<K, V>>,
    /// Nanoseconds.
    pub(crate) ttl: Option<u64>,
    /// Nanoseconds.
    pub(crate) tti: Option<u64>,
    pub(crate) clock: SharedClock,
    pub(crate) policy: Policy,
    pub(crate) expire_after: Option<ExpiryPolicy<K, V>>,
}

impl<K, V> Valid<K, V> {
    /// Slots one of `shards` shards of `capacity` each reserves up front:
    /// none with a weigher (the capacity is a weight, not an entry count),
    /// else its capacity up to its share of [`MAX_PREALLOC`].
    pub(crate) fn reserve(&self, capacity: u64, shards: usize) -> usize {
        if self.weigher.is_some() {
            return 0;
        }
        let share = MAX_PREALLOC / (shards as u64).max(1);
        // At most `MAX_PREALLOC`, so it fits a `usize`.
        capacity.min(share) as usize
    }
}

impl<K, V> Settings<K, V> {
    /// Nothing set.
    pub(crate) fn new() -> Self {
        Self {
            capacity: None,
            weigher: None,
            ttl: None,
            tti: None,
            clock: None,
            policy: Policy::Lru,
            expire_after: None,
        }
    }

    /// Checks the capacity, then the time to live, then the time to idle;
    /// the clock defaults to a [`MonotonicClock`]. `bound_entries`: whether
    /// [`MAX_ENTRIES`] bounds an unweighted capacity here (a sharded cache
    /// checks it per shard instead).
    pub(crate) fn validate(self, bound_entries: bool) -> Result<Valid<K, V>, BuildError> {
        let weighted = !bound_entries || self.weigher.is_some();
        Ok(Valid {
            capacity: validate_capacity(self.capacity, weighted)?,
            ttl: validate_duration(self.ttl, "time_to_live")?,
            tti: validate_duration(self.tti, "time_to_idle")?,
            weigher: self.weigher,
            clock: self
                .clock
                .unwrap_or_else(|| StdArc::new(MonotonicClock::new())),
            policy: self.policy,
            expire_after: self.expire_after,
        })
    }
}

/// A capacity: set and not zero; at most [`MAX_ENTRIES`] unless `weighted`
/// (the capacity is then a weight, not an entry count).
pub(crate) fn validate_capacity(capacity: Option<u64>, weighted: bool) -> Result<u64, BuildError> {
    match capacity {
        None | Some(0) => Err(BuildError::Zero {
            setting: "max_capacity",
        }),
        Some(c) if !weighted && c > MAX_ENTRIES => Err(BuildError::TooLarge {
            setting: "max_capacity",
            max: MAX_ENTRIES,
        }),
        Some(c) => Ok(c),
    }
}

fn validate_duration(
    d: Option<Duration>,
    setting: &'static str,
) -> Result<Option<u64>, BuildError> {
    match d {
        Some(d) if d.is_zero() => Err(BuildError::Zero { setting }),
        Some(d) => Ok(Some(saturating_nanos(d))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LruCache;

    #[test]
    fn bad_settings_are_errors() {
        assert_eq!(
            LruCache::<u32, u32>::new(0).unwrap_err(),
            BuildError::Zero {
                setting: "max_capacity"
            }
        );
        let e = LruCache::<u32, u32>::builder()
            .max_capacity(1)
            .time_to_live(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            BuildError::Zero {
                setting: "time_to_live"
            }
        );
        let e = LruCache::<u32, u32>::builder()
            .max_capacity(1)
            .time_to_idle(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(
            e,
            BuildError::Zero {
                setting: "time_to_idle"
            }
        );
        assert!(matches!(
            LruCache::<u32, u32>::new(u64::MAX),
            Err(BuildError::TooLarge { .. })
        ));
        let mut c = LruCache::<u32, u32>::new(2).unwrap();
        assert!(c.set_capacity(0).is_err());
        assert_eq!(c.capacity(), 2);
    }
}
