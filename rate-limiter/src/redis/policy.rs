//! `FailurePolicy`: what a check does when Redis is unavailable, and the
//! local limiter of its fallback.

use std::time::Duration;

use sysblocks_clock::SharedClock;

use super::limiter::Algo;
use crate::sync::StdArc;
use crate::{BuildError, Decision, Gcra, Keyed, Quota, SlidingWindowCounter};

/// Keys the local fallback limiter holds at most.
const FALLBACK_KEYS: usize = 1 << 16;

/// What a check does when Redis is unavailable: it did not answer within
/// the limiter's timeout, or the connection failed (the connection manager
/// reconnects by itself meanwhile). Errors that concern one key or request
/// (a wrong type at the key, a bad key) are returned whatever the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Return [`RedisCheckError::Timeout`](super::RedisCheckError::Timeout) or
    /// [`RedisCheckError::Connection`](super::RedisCheckError::Connection) to the caller (the default).
    #[default]
    Error,
    /// Admit the request (`remaining` 0, `reset_after` 0): availability
    /// over the limit.
    FailOpen,
    /// Deny the request, with `retry_after` (and `reset_after`) one
    /// emission interval (GCRA) or `window / limit` (sliding counter).
    FailClosed,
    /// Decide with a limiter in this process, of the same algorithm, whose
    /// quota is the shared one divided by `fleet_size` (the number of
    /// processes expected to share the Redis limit; at least one cell of
    /// burst), keyed with at most 65,536 keys. While Redis is down the fleet
    /// as a whole then admits about the shared quota.
    LocalFallback {
        /// Processes sharing the limit.
        fleet_size: u32,
    },
}

/// The local limiter of [`FailurePolicy::LocalFallback`].
pub(super) enum Fallback {
    Gcra(Box<Keyed<Box<[u8]>, Gcra>>),
    SlidingCounter(Box<Keyed<Box<[u8]>, SlidingWindowCounter>>),
}

impl Fallback {
    pub(super) fn new(algo: Algo, fleet: u32, clock: &SharedClock) -> Result<Self, BuildError> {
        let too_long = BuildError::TooLong {
            setting: "fallback emission interval",
        };
        Ok(match algo {
            Algo::Gcra { t, burst } => {
                let period = t.checked_mul(u64::from(fleet)).ok_or(too_long)?;
                let quota =
                    Quota::with_period(Duration::from_nanos(period)).burst((burst / fleet).max(1));
                let g = Gcra::with_shared_clock(quota, StdArc::clone(clock))?;
                Self::Gcra(Box::new(Keyed::builder(g).max_keys(FALLBACK_KEYS).build()?))
            }
            Algo::SlidingCounter { window, limit } => {
                let b = (limit / fleet).max(1);
                let period = (window / u64::from(b)).max(1);
                let quota = Quota::with_period(Duration::from_nanos(period)).burst(b);
                let s = SlidingWindowCounter::with_clock(quota, StdArc::clone(clock))?;
                Self::SlidingCounter(Box::new(Keyed::builder(s).max_keys(FALLBACK_KEYS).build()?))
            }
        })
    }

    pub(super) fn check(&self, key: &[u8], cost: u32) -> Decision {
        let key: Box<[u8]> = key.into();
        let r = match self {
            Self::Gcra(k) => k.check_key_n(&key, cost),
            Self::SlidingCounter(k) => k.check_key_n(&key, cost),
        };
        r.unwrap_or_else(Decision::from_error)
    }
}

pub(super) enum Policy {
    Error,
    Open,
    Closed,
    Local(Fallback),
}
