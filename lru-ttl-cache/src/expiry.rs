//! [`Expiry`]: a per-entry expiry policy, the extension point for
//! deadlines that depend on the entry (moka's and Caffeine's `Expiry`).

use std::time::Duration;

/// Decides, entry by entry, how long an entry lives: after it is created,
/// after it is updated, after it is read. Set it with the builders'
/// `expire_after`.
///
/// Each method returns the time left from `now` (the cache's
/// [`Clock`](crate::Clock) reading, as a duration since the clock's
/// start); `None` means the policy sets no deadline. `remaining` is the
/// time the policy's current deadline had left (`None`: none), so
/// returning it unchanged keeps the deadline. The defaults: no deadline
/// at creation, and reads and updates keep the current one.
///
/// The policy's deadline is one of an entry's deadlines: the builder's
/// `time_to_live` (or the TTL of `insert_with_ttl`) and `time_to_idle`
/// still apply, and the earliest of them ends the entry. An entry that
/// expires leaves with [`RemovalCause::Expired`](crate::RemovalCause::Expired).
///
/// Edge cases, never a panic: a duration that does not fit the clock
/// (such as `Duration::MAX`) saturates and means "never"; a zero duration
/// at creation stores nothing (the listener sees `Expired`, as for a zero
/// TTL); a zero duration after an update or a read makes the entry
/// expired from now on (the read that asked still returns the value).
///
/// The methods run under the cache's lock (a shard's, for a
/// [`Cache`](crate::Cache)): they must be quick and must not use the
/// cache.
///
/// ```
/// use sysblocks_lru_ttl_cache::{Cache, Expiry, ManualClock};
/// use std::time::Duration;
///
/// /// Sessions live 30 s; a "sticky" one is extended on every read.
/// struct Sessions;
/// impl Expiry<String, bool> for Sessions {
///     fn expire_after_create(&self, _k: &String, _sticky: &bool, _now: Duration) -> Option<Duration> {
///         Some(Duration::from_secs(30))
///     }
///     fn expire_after_read(
///         &self, _k: &String, sticky: &bool, _now: Duration, remaining: Option<Duration>,
///     ) -> Option<Duration> {
///         if *sticky { Some(Duration::from_secs(30)) } else { remaining }
///     }
/// }
///
/// let clock = ManualClock::new();
/// let cache = Cache::builder()
///     .max_capacity(100)
///     .expire_after(Sessions)
///     .clock(clock.clone())
///     .build()?;
/// cache.insert("a".to_string(), true);
/// cache.insert("b".to_string(), false);
/// clock.advance(Duration::from_secs(20));
/// assert_eq!(cache.get("a"), Some(true)); // extended to 50 s
/// assert_eq!(cache.get("b"), Some(false)); // still ends at 30 s
/// clock.advance(Duration::from_secs(20));
/// assert_eq!(cache.get("a"), Some(true));
/// assert_eq!(cache.get("b"), None);
/// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
/// ```
pub trait Expiry<K, V>: Send + Sync {
    /// The lifetime of an entry whose key was not present (an insert, a
    /// load). Default: `None`, no deadline from the policy.
    fn expire_after_create(&self, key: &K, value: &V, now: Duration) -> Option<Duration> {
        let _ = (key, value, now);
        None
    }

    /// The time left after a read of the entry (`get`, a hit of a
    /// loader). Default: `remaining`, unchanged.
    fn expire_after_read(
        &self,
        key: &K,
        value: &V,
        now: Duration,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value, now);
        remaining
    }

    /// The time left after the entry's value was replaced (`value` is the
    /// new one). Default: `remaining`, unchanged.
    fn expire_after_update(
        &self,
        key: &K,
        value: &V,
        now: Duration,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        let _ = (key, value, now);
        remaining
    }
}
