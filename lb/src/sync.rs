//! The crate's one door to synchronisation primitives.
//!
//! Normally these are std's atomics and `Arc`, parking_lot's `Mutex`, and an
//! [`arc_swap::ArcSwap`] behind [`ArcCell`] for the snapshot of backends that
//! `pick` reads without locking. Under `--cfg sysblocks_loom` they are loom's
//! models; [`ArcCell`] becomes a loom `Mutex<Arc<T>>` whose `load` clones the
//! `Arc`, which has the same contract (a load returns the value of some store
//! that happened before, or a later one) and lets loom see every step. No
//! other module imports `std::sync`, `parking_lot`, `arc_swap` or `loom`.

#[cfg(not(sysblocks_loom))]
pub(crate) use self::std_impl::*;

#[cfg(sysblocks_loom)]
pub(crate) use self::loom_impl::*;

#[cfg(not(sysblocks_loom))]
mod std_impl {
    pub(crate) use parking_lot::Mutex;
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    pub(crate) use std::sync::Arc;

    /// What [`ArcCell::load`] hands out: keeps the loaded value alive.
    pub(crate) type Guard<T> = arc_swap::Guard<Arc<T>>;

    /// An `Arc<T>` that readers load without locking and writers replace.
    #[derive(Debug)]
    pub(crate) struct ArcCell<T>(arc_swap::ArcSwap<T>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self(arc_swap::ArcSwap::new(value))
        }

        #[inline]
        pub(crate) fn load(&self) -> Guard<T> {
            self.0.load()
        }

        pub(crate) fn store(&self, value: Arc<T>) {
            self.0.store(value);
        }
    }
}

#[cfg(sysblocks_loom)]
mod loom_impl {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    pub(crate) use loom::sync::Arc;

    /// loom's `Mutex` with parking_lot's surface: `lock()` returns the guard
    /// directly (a poisoned lock is entered anyway, as parking_lot does).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn try_lock(&self) -> Option<loom::sync::MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// Under loom a load is a clone of the `Arc`.
    pub(crate) type Guard<T> = Arc<T>;

    /// A `Mutex<Arc<T>>`: the model of the lock-free cell.
    #[derive(Debug)]
    pub(crate) struct ArcCell<T>(Mutex<Arc<T>>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self(Mutex::new(value))
        }

        pub(crate) fn load(&self) -> Guard<T> {
            Arc::clone(&self.0.lock())
        }

        pub(crate) fn store(&self, value: Arc<T>) {
            let old = std::mem::replace(&mut *self.0.lock(), value);
            drop(old);
        }
    }
}
