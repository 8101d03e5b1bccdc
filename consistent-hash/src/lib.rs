#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod hash;
mod jump;
mod locator;
mod maglev;
mod multiprobe;
mod points;
mod rendezvous;
mod ring;

pub use error::BuildError;
pub use hash::{fmix64, hash_key, stable_hash, xxh64, StableHasher};
pub use jump::{jump_hash, JumpHash};
pub use locator::NodeLocator;
pub use maglev::{Maglev, DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, MIN_ENTRIES_PER_NODE};
pub use multiprobe::{MultiProbe, DEFAULT_PROBES, MAX_PROBES};
pub use rendezvous::{pair_hash, Rendezvous};
pub use ring::{vnode_point, BoundedLoads, HashRing, DEFAULT_VNODES, MAX_POINTS};
