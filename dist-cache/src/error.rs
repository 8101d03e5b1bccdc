//! The crate's error types: settings refused at build time, and failures
//! of one operation. After any of them the client keeps working.

use std::fmt;
use std::time::Duration;

/// A builder or a membership change was given something it cannot honour.
/// Settings are reported, never clamped silently.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// The node list is empty (or a removal would leave it empty).
    NoNodes,
    /// The node is already present.
    DuplicateNode {
        /// The node's address, as given.
        node: String,
    },
    /// A node to remove is not present.
    UnknownNode {
        /// The node's address, as given.
        node: String,
    },
    /// A setting that must be positive was zero.
    Zero {
        /// The setting's name.
        setting: &'static str,
    },
    /// A setting above its documented maximum.
    TooLarge {
        /// The setting's name.
        setting: &'static str,
        /// The largest value accepted.
        max: u64,
    },
    /// A setting with a value of the wrong shape.
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The placement algorithm refused the node set.
    Placement(sysblocks_consistent_hash::BuildError),
    /// The near cache refused its settings.
    NearCache(sysblocks_lru_ttl_cache::BuildError),
    /// A node address that is not a valid Redis URL.
    Address {
        /// The address, as given.
        node: String,
        /// The parser's error.
        source: redis::RedisError,
    },
    /// [`DistCacheBuilder::build`](crate::DistCacheBuilder::build) was
    /// called outside a tokio runtime.
    NoRuntime,
    /// The blocking client's runtime could not start.
    Runtime(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => f.write_str("no nodes: a cache needs at least one Redis node"),
            Self::DuplicateNode { node } => write!(f, "node {node} is listed twice"),
            Self::UnknownNode { node } => write!(f, "node {node} is not a member"),
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::TooLarge { setting, max } => write!(f, "{setting} exceeds the maximum of {max}"),
            Self::Invalid { setting, reason } => write!(f, "invalid {setting}: {reason}"),
            Self::Placement(e) => write!(f, "placement: {e}"),
            Self::NearCache(e) => write!(f, "near cache: {e}"),
            Self::Address { node, source } => write!(f, "bad node address {node}: {source}"),
            Self::NoRuntime => f.write_str("build() must run inside a tokio runtime"),
            Self::Runtime(e) => write!(f, "cannot start the runtime: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Placement(e) => Some(e),
            Self::NearCache(e) => Some(e),
            Self::Address { source, .. } => Some(source),
            Self::Runtime(e) => Some(e),
            _ => None,
        }
    }
}

impl From<sysblocks_consistent_hash::BuildError> for BuildError {
    fn from(e: sysblocks_consistent_hash::BuildError) -> Self {
        Self::Placement(e)
    }
}

/// One cache operation failed. The client stays usable.
#[derive(Debug)]
#[non_exhaustive]
pub enum CacheError {
    /// A value longer than the configured limit
    /// ([`DistCacheBuilder::max_value_bytes`](crate::DistCacheBuilder::max_value_bytes)).
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A key longer than [`MAX_KEY_BYTES`](crate::MAX_KEY_BYTES).
    KeyTooLarge {
        /// The key's length in bytes.
        len: usize,
    },
    /// No node could take the operation: all candidates are ejected or
    /// failed.
    Unavailable {
        /// The last failure seen, if a node was tried.
        last: Option<Box<CacheError>>,
    },
    /// A node did not answer within the operation timeout.
    Timeout {
        /// The node's address.
        node: String,
        /// The timeout.
        after: Duration,
    },
    /// A node (or the connection to it) reported an error.
    Redis {
        /// The node's address.
        node: String,
        /// The client library's error.
        source: redis::RedisError,
    },
    /// A node answered with a reply of an unexpected type.
    Unexpected {
        /// The node's address.
        node: String,
        /// The command sent.
        command: &'static str,
        /// The reply, as the client library prints it.
        reply: String,
    },
    /// A TTL under a millisecond (Redis counts in milliseconds).
    InvalidTtl {
        /// The TTL given.
        ttl: Duration,
    },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the limit of {max}")
            }
            Self::KeyTooLarge { len } => write!(
                f,
                "key of {len} bytes exceeds the limit of {}",
                crate::MAX_KEY_BYTES
            ),
            Self::Unavailable { last: None } => f.write_str("no node available"),
            Self::Unavailable { last: Some(e) } => write!(f, "no node available (last: {e})"),
            Self::Timeout { node, after } => {
                write!(f, "node {node} did not answer within {after:?}")
            }
            Self::Redis { node, source } => write!(f, "node {node}: {source}"),
            Self::Unexpected {
                node,
                command,
                reply,
            } => write!(f, "node {node} answered {command} with {reply}"),
            Self::InvalidTtl { ttl } => write!(f, "TTL {ttl:?} is under a millisecond"),
        }
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Redis { source, .. } => Some(source),
            Self::Unavailable { last: Some(e) } => Some(&**e),
            _ => None,
        }
    }
}

impl CacheError {
    /// Whether the error says something about the node's health (a
    /// timeout, a connection or server error, an unexpected reply), as
    /// opposed to the caller's input.
    #[must_use]
    pub fn is_node_failure(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. } | Self::Redis { .. } | Self::Unexpected { .. }
        )
    }
}

/// [`get_or_load`](crate::DistCache::get_or_load) failed: the loader's
/// error (cache failures there count as misses and never surface).
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The key or value was refused (too large).
    Cache(CacheError),
    /// The loader's error.
    Load(E),
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cache(e) => write!(f, "cache: {e}"),
            Self::Load(e) => write!(f, "loader: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Cache(e) => Some(e),
            Self::Load(e) => Some(e),
        }
    }
}

/// A write-through operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum WriteError<E> {
    /// The store refused the write; the cache is unchanged.
    Store(E),
    /// The store accepted the write but the cache could not be updated.
    /// The cache entry was deleted if that was possible; otherwise it may
    /// serve the old value until its TTL ends.
    Cache(CacheError),
    /// The store call panicked or was cancelled.
    Join(String),
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "store: {e}"),
            Self::Cache(e) => write!(f, "cache (after the store accepted): {e}"),
            Self::Join(e) => write!(f, "store call failed: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for WriteError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            Self::Cache(e) => Some(e),
            Self::Join(_) => None,
        }
    }
}
