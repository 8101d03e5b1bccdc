#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(not(sysblocks_loom))]
pub use self::std_impl::*;

#[cfg(sysblocks_loom)]
pub use self::loom_impl::*;

pub use crossbeam_utils::CachePadded;

/// std's `Arc` in both builds: for shared values whose accesses are not
/// synchronising operations of the crate (a clock, a user callback), which
/// loom need not see and whose type is fixed outside the crate.
pub use std::sync::Arc as StdArc;

#[cfg(not(sysblocks_loom))]
mod std_impl {
    pub use parking_lot::{
        Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult,
    };
    pub use std::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    pub use std::sync::Arc;
    pub use std::thread;

    /// A hint inside spin loops; under loom it yields so that models end.
    #[inline]
    pub fn spin_loop() {
        std::hint::spin_loop();
    }

    /// `std::cell::UnsafeCell` with loom's `with`/`with_mut` surface, so that
    /// loom can check the accesses for data races in the models.
    #[derive(Debug, Default)]
    pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        /// A cell holding `value`.
        pub const fn new(value: T) -> Self {
            Self(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a shared raw pointer to the value; dereferencing it
        /// is the caller's `unsafe` business.
        #[inline]
        pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a mutable raw pointer to the value; dereferencing it
        /// is the caller's `unsafe` business.
        #[inline]
        pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

#[cfg(sysblocks_loom)]
mod loom_impl {
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    pub use loom::cell::UnsafeCell;
    pub use loom::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    pub use loom::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};
    pub use loom::thread;

    /// Under loom a spin loop must yield, or the model never ends.
    #[inline]
    pub fn spin_loop() {
        loom::thread::yield_now();
    }

    /// Runs `f` in every interleaving loom explores, with the preemption
    /// bound 2 unless `LOOM_MAX_PREEMPTIONS` says otherwise.
    pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
        model_with_bound(2, f);
    }

    /// [`model`] with another default preemption bound, for the few models
    /// that need 3; `LOOM_MAX_PREEMPTIONS` still wins when it is set.
    pub fn model_with_bound<F: Fn() + Sync + Send + 'static>(bound: usize, f: F) {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(bound);
        }
        builder.check(f);
    }

    /// loom's `Mutex` with parking_lot's surface: `lock()` returns the guard
    /// (a poisoned lock is entered anyway, as parking_lot has no poisoning).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; the `Option` lets [`Condvar`] hand the inner
    /// guard to loom and take it back while the caller keeps a `&mut`.
    #[derive(Debug)]
    pub struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        /// Locks, blocking the (model) thread until the lock is free.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        /// Locks if the lock is free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(MutexGuard(Some(g))),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(MutexGuard(Some(e.into_inner()))),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }

        /// The value, consuming the mutex.
        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0
                .as_deref()
                .expect("guard is present outside Condvar::wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0
                .as_deref_mut()
                .expect("guard is present outside Condvar::wait")
        }
    }

    /// What parking_lot's timed wait returns.
    #[derive(Debug, Clone, Copy)]
    pub struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        /// Whether the wait ended by its timeout.
        pub fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// loom's `Condvar` with parking_lot's `wait(&mut guard)` surface.
    #[derive(Debug, Default)]
    pub struct Condvar(loom::sync::Condvar);

    impl Condvar {
        /// A condition variable nobody waits on.
        pub fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        /// Releases the lock, waits for a notification, and locks again.
        pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard is present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// loom has no time: a timed wait is a wait that may time out at any
        /// point loom chooses.
        pub fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> WaitTimeoutResult {
            let inner = guard.0.take().expect("guard is present");
            let (g, res) = self
                .0
                .wait_timeout(inner, timeout)
                .unwrap_or_else(|e| e.into_inner());
            guard.0 = Some(g);
            WaitTimeoutResult(res.timed_out())
        }

        /// Wakes one waiter (parking_lot's return value is not modelled).
        pub fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        /// Wakes every waiter (parking_lot's return value is not modelled).
        pub fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }

    /// loom's `RwLock` with parking_lot's non-poisoning surface.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        /// A lock holding `value`.
        pub fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }

        /// Exclusive access if no other thread holds the lock, as
        /// parking_lot's `try_write`.
        pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
            match self.0.try_write() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }
}
