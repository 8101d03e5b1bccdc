#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cache;
mod deadlines;
mod error;
mod expiry;
mod flight;
mod lru;
mod read_buffer;
mod recency;
mod settings;
mod stats;
mod sync;
mod tinylfu;
mod write_through;

pub use cache::{Cache, CacheBuilder, CacheIter, Entry, EntrySelector, MAX_SHARDS};
pub use error::BuildError;
pub use expiry::Expiry;
pub use lru::{Iter, LruBuilder, LruCache};
pub use settings::{Policy, MAX_ENTRIES};
pub use stats::{RemovalCause, Stats};
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
pub use write_through::{Store, WriteThrough};
