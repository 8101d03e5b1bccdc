//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every atomic and lock the crate's own
//! protocols use (the ejection state in `health`, the invalidation
//! counters of the near cache in `near`).
//!
//! `Arc` is std's in both builds: it only shares handles (nodes, the
//! topology, a `dyn Clock`, key bytes), none of which loom needs to see,
//! and loom's `Arc` cannot hold unsized values.

pub(crate) use sysblocks_sync::{
    AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, RwLock, StdArc as Arc,
};

/// loom's threads and model runner, for the models beside the code.
#[cfg(all(test, sysblocks_loom))]
pub(crate) use sysblocks_sync::{model, thread};
