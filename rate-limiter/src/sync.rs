//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{
    fence, spin_loop, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, RwLock, StdArc,
};
#[cfg(all(test, sysblocks_loom))]
pub(crate) use sysblocks_sync::{thread, Arc};

/// The lock of one key's multi-word state in the keyed store: the public
/// `Algorithm::Cell` of the window limiters (parking_lot's mutex, or the
/// shim's loom model under the loom cfg).
pub(crate) type StateLock<T> = Mutex<T>;

/// Locks a [`StateLock`].
#[inline]
pub(crate) fn lock_state<T>(m: &StateLock<T>) -> sysblocks_sync::MutexGuard<'_, T> {
    m.lock()
}
