//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{
    thread, Arc, AtomicBool, AtomicU64, Condvar, Mutex, Ordering, RwLockReadGuard,
    RwLockWriteGuard, StdArc,
};

#[cfg(not(sysblocks_loom))]
pub(crate) use sysblocks_sync::RwLock;

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

#[cfg(sysblocks_loom)]
pub(crate) use loom_rwlock::RwLock;

/// loom's `RwLock` with parking_lot's surface, `try_write` included (the
/// shard's read path tries the write lock to drain its read buffer; the
/// `sysblocks_sync` adapter has no `try_write`).
#[cfg(sysblocks_loom)]
mod loom_rwlock {
    use super::{RwLockReadGuard, RwLockWriteGuard};

    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            match self.0.try_write() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }
}
