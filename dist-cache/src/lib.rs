#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod blocking;
mod builder;
mod client;
mod error;
mod flight;
mod health;
mod membership;
mod near;
mod node;
mod placement;
pub mod resize;
mod sync;
mod write_through;

pub use blocking::BlockingDistCache;
pub use builder::{DistCacheBuilder, MAX_PREFIX_LEN, MAX_REPLICAS, MAX_VALUE_BYTES};
pub use bytes::Bytes;
pub use client::{DistCache, Failover, NodeStatus, Stats, MAX_KEY_BYTES};
pub use error::{BuildError, CacheError, LoadError, WriteError};
pub use health::Ejection;
pub use membership::WarmUp;
pub use near::NearCache;
pub use placement::Placement;
pub use sysblocks_lru_ttl_cache::Store;
pub use write_through::WriteThrough;
