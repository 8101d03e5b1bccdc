//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

/// The runner's workers are real scoped threads in both configurations;
/// the loom models cover the coordination primitive (the task board), not
/// the whole runner.
pub(crate) use std::thread::{available_parallelism, scope, Builder as ThreadBuilder, Scope};
pub(crate) use sysblocks_sync::{
    AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering, StdArc,
};

/// The cluster backend hands results over from timely's threads, which
/// are real threads in both configurations.
#[cfg(feature = "timely")]
pub(crate) use std::sync::mpsc;
