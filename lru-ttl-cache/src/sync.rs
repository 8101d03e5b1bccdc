//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{thread, Arc, AtomicBool, Condvar, Mutex, Ordering, StdArc};
