//! The Redis limiters' error types.

use std::fmt;
use std::time::Duration;

use super::scripts::CORRUPT;

/// Why a Redis-backed check could not decide. A denial is not an error:
/// it is a [`Decision`](crate::Decision) that is not allowed.
///
/// [`RedisCheckError::Timeout`], [`RedisCheckError::Connection`] and
/// [`RedisCheckError::CircuitOpen`] mean Redis is unavailable: a limiter with a
/// [`FailurePolicy`](super::FailurePolicy) other than
/// [`FailurePolicy::Error`](super::FailurePolicy::Error) decides by its
/// policy instead of returning them. The others concern one request or one
/// key and are always returned; the limiter keeps working for the next
/// check after any of them.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisCheckError {
    /// The key is empty.
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`](super::MAX_KEY_LEN).
    KeyTooLong {
        /// The key's length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The cost is larger than the limiter can ever admit at once.
    CostExceedsLimit {
        /// The cost asked for.
        cost: u32,
        /// The most this limiter admits in one call.
        limit: u32,
    },
    /// Redis did not answer within the limiter's timeout.
    Timeout(Duration),
    /// The connection failed or is being re-established (the connection
    /// manager reconnects by itself; a later check may succeed).
    Connection(redis::RedisError),
    /// No round trip was tried: one failed for want of Redis less than
    /// the limiter's failure cooldown ago
    /// ([`RedisLimiterBuilder::failure_cooldown`](super::RedisLimiterBuilder::failure_cooldown)).
    /// A check is sent again, as a probe, after this long.
    CircuitOpen(Duration),
    /// The Redis key holds a value of another type (`WRONGTYPE`): something
    /// else uses the limiter's key space. Delete the key or change the
    /// prefix.
    WrongType,
    /// The Redis key holds a string the limiter did not write.
    CorruptState,
    /// Redis answered with an error the limiter does not expect (out of
    /// memory, a read-only replica, a script that could not be loaded, ...).
    Server(redis::RedisError),
    /// Redis answered with a reply of a shape the script never produces.
    UnexpectedReply(String),
}

impl RedisCheckError {
    /// Whether this error means Redis is unavailable (a timeout, a
    /// connection failure, or a breaker still open after one), the case a [`FailurePolicy`](super::FailurePolicy)
    /// covers.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Timeout(_) | Self::Connection(_) | Self::CircuitOpen(_)
        )
    }

    /// Sorts an error of the `redis` crate.
    pub(crate) fn from_redis(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            return Self::Connection(e);
        }
        match e.code() {
            Some("WRONGTYPE") => Self::WrongType,
            Some(c) if c == CORRUPT => Self::CorruptState,
            _ => {
                // An error raised inside a script may carry the original
                // code after a prefix.
                let text = e.to_string();
                if text.contains("WRONGTYPE") {
                    Self::WrongType
                } else if text.contains(CORRUPT) {
                    Self::CorruptState
                } else {
                    Self::Server(e)
                }
            }
        }
    }
}

impl fmt::Display for RedisCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyKey => f.write_str("the key is empty"),
            Self::KeyTooLong { len, max } => {
                write!(
                    f,
                    "the key is {len} bytes long, more than the {max} allowed"
                )
            }
            Self::CostExceedsLimit { cost, limit } => write!(
                f,
                "cost {cost} exceeds {limit}, the most this limiter can ever admit at once"
            ),
            Self::Timeout(t) => write!(f, "Redis did not answer within {t:?}"),
            Self::Connection(e) => write!(f, "Redis connection failed: {e}"),
            Self::CircuitOpen(t) => write!(
                f,
                "Redis failed moments ago; no round trip is tried for another {t:?}"
            ),
            Self::WrongType => {
                f.write_str("the Redis key holds a value of another type (WRONGTYPE)")
            }
            Self::CorruptState => {
                f.write_str("the Redis key holds a string the limiter did not write")
            }
            Self::Server(e) => write!(f, "Redis answered with an error: {e}"),
            Self::UnexpectedReply(r) => write!(f, "unexpected reply from Redis: {r}"),
        }
    }
}

impl std::error::Error for RedisCheckError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connection(e) | Self::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`BlockingRedisLimiter::connect`](super::BlockingRedisLimiter::connect)
/// failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The limiter's settings are invalid.
    Build(crate::BuildError),
    /// The URL is invalid or the first connection failed.
    Redis(redis::RedisError),
    /// The runtime could not be created.
    Runtime(std::io::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => write!(f, "invalid limiter settings: {e}"),
            Self::Redis(e) => write!(f, "cannot connect to Redis: {e}"),
            Self::Runtime(e) => write!(f, "cannot start the runtime: {e}"),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            Self::Redis(e) => Some(e),
            Self::Runtime(e) => Some(e),
        }
    }
}
