#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(feature = "async")]
mod r#async;
mod atomic;
#[cfg(any(feature = "redis", sysblocks_loom))]
mod breaker;
#[cfg(feature = "async")]
mod check;
mod clock;
mod concurrency;
mod decision;
mod error;
mod gcra;
mod keyed;
mod leaky_bucket;
mod limiter;
mod locked;
mod quota;
#[cfg(feature = "redis")]
pub mod redis;
mod sync;
mod token_bucket;
#[cfg(feature = "tower")]
pub mod tower;
mod windows;

#[cfg(feature = "async")]
pub use check::AsyncCheck;
pub use clock::QuantaClock;
pub use concurrency::{Acquire, ConcurrencyLimiter, OwnedPermit, Permit};
pub use decision::Decision;
pub use error::{BuildError, CheckError};
pub use gcra::Gcra;
pub use keyed::{Keyed, KeyedBuilder};
pub use leaky_bucket::{LeakyBucket, LeakyBucketBuilder};
pub use limiter::{Algorithm, ManualSleeper, RateLimiter, Sleeper, ThreadSleeper};
pub use quota::Quota;
#[cfg(feature = "async")]
pub use r#async::{until_ready_n, until_ready_n_with, Jitter};
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
pub use token_bucket::{TokenBucket, TokenBucketBuilder};
pub use windows::{
    FixedWindow, FixedWindowState, SlidingCounterState, SlidingLogState, SlidingWindowCounter,
    SlidingWindowLog,
};
