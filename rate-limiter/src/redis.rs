//! Limiters whose state lives in Redis, shared by every process of a fleet
//! (feature `redis`).
//!
//! A limiter inside each process multiplies the limit by the size of the
//! fleet; [`RedisLimiter`] keeps one state per key in Redis instead and
//! decides in one atomic step, a Lua script per check, as redis-cell's
//! `CL.THROTTLE` does. GCRA ([`RedisLimiter::gcra`]) and the
//! sliding-window counter ([`RedisLimiter::sliding_window_counter`]) give
//! exactly the [`Decision`](crate::Decision)s of the local
//! [`Gcra`](crate::Gcra) and
//! [`SlidingWindowCounter`](crate::SlidingWindowCounter) for the same
//! arrival times (`tests/redis_exact.rs` replays one trace through both),
//! with time read from the Redis server so that clients with skewed clocks
//! agree.
//!
//! - One round trip per check (`EVALSHA`, loading the script on
//!   `NOSCRIPT`); [`RedisLimiter::check_many`] pipelines many keys in one.
//! - Each key expires when its state is a fresh key's again, so Redis holds
//!   only the active keys.
//! - Keys are `<prefix>{key}`: the key is the Redis Cluster hash tag.
//! - [`FailurePolicy`]: when Redis does not answer within the timeout or
//!   the connection fails, fail open, fail closed, fall back to a local
//!   limiter with the quota divided by the fleet size, or return the typed
//!   error; the connection manager reconnects by itself.
//! - A local cache of denials answers a key Redis denied until `T` without
//!   a round trip until `T` (bounded entries).
//! - [`BlockingRedisLimiter`] for callers without a runtime.

mod blocking;
mod builder;
mod denials;
mod error;
mod limiter;
mod policy;
mod scripts;

pub use blocking::BlockingRedisLimiter;
pub use builder::{RedisLimiterBuilder, MAX_DENIAL_CACHE, MAX_PREFIX_LEN};
pub use error::{ConnectError, RedisCheckError};
pub use limiter::{RedisLimiter, RedisStats, MAX_KEY_LEN};
pub use policy::FailurePolicy;
pub use scripts::MAX_SPAN_NANOS;
