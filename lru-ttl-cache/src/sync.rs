//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{
    thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLock, RwLockReadGuard,
    RwLockWriteGuard, StdArc,
};

/// A value used only through `&mut`, so that a type holding it is `Sync`
/// when the value is merely `Send` (an [`LruCache`](crate::LruCache)'s
/// `FnMut` listener, now that shards are shared under a read lock). It is
/// std's `Mutex` only for its `get_mut`, which never locks: nothing
/// synchronises through it, so loom need not see it.
pub(crate) struct Exclusive<T>(std::sync::Mutex<T>);

impl<T> Exclusive<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    #[inline]
    pub(crate) fn get_mut(&mut self) -> &mut T {
        // Never locked, so never poisoned; recover anyway.
        self.0.get_mut().unwrap_or_else(|e| e.into_inner())
    }
}
