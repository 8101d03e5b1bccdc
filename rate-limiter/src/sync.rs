//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{
    spin_loop, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, RwLock, StdArc,
};
#[cfg(all(test, sysblocks_loom))]
pub(crate) use sysblocks_sync::{thread, Arc};

/// The lock of one key's multi-word state in the keyed store. It is the
/// public `Algorithm::Cell` of the window limiters, so it is a public type:
/// parking_lot's mutex, or loom's own under the loom cfg.
#[cfg(not(sysblocks_loom))]
pub(crate) type StateLock<T> = parking_lot::Mutex<T>;
/// See the std build's doc.
#[cfg(sysblocks_loom)]
pub(crate) type StateLock<T> = loom::sync::Mutex<T>;

/// Locks a [`StateLock`].
#[cfg(not(sysblocks_loom))]
#[inline]
pub(crate) fn lock_state<T>(m: &StateLock<T>) -> parking_lot::MutexGuard<'_, T> {
    m.lock()
}

/// Locks a [`StateLock`] (entered even if poisoned, as parking_lot's).
#[cfg(sysblocks_loom)]
pub(crate) fn lock_state<T>(m: &StateLock<T>) -> loom::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
