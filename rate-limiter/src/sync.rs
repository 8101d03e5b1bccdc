//! The crate's one door to synchronisation primitives.
//!
//! Normally these are std's atomics and `Arc` and parking_lot's locks. Under
//! `--cfg sysblocks_loom` they are loom's models, with loom's poisoning
//! `Mutex` wrapped to parking_lot's non-poisoning `lock()` surface so the rest
//! of the crate compiles unchanged. No other module imports `std::sync` or
//! `parking_lot` directly; that is what lets loom see every synchronising
//! operation.
// Not every crate uses every primitive the shim offers.
#![allow(unused_imports, dead_code)]

#[cfg(not(sysblocks_loom))]
pub(crate) use self::std_impl::*;

#[cfg(sysblocks_loom)]
pub(crate) use self::loom_impl::*;

#[cfg(not(sysblocks_loom))]
mod std_impl {
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
    pub(crate) use std::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    pub(crate) use std::sync::Arc;
    /// std's `Arc` in both builds: the shared clock
    /// ([`sysblocks_clock::SharedClock`]) is always a std `Arc`.
    pub(crate) use std::sync::Arc as StdArc;
    pub(crate) use std::thread;

    /// The lock of one key's multi-word state in the keyed store. A public
    /// type (it is the `Algorithm::Cell` of the window limiters).
    pub(crate) type StateLock<T> = parking_lot::Mutex<T>;

    /// Locks a [`StateLock`].
    #[inline]
    pub(crate) fn lock_state<T>(m: &StateLock<T>) -> parking_lot::MutexGuard<'_, T> {
        m.lock()
    }

    /// A hint inside spin loops; under loom it yields so models terminate.
    #[inline]
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }
}

#[cfg(sysblocks_loom)]
mod loom_impl {
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    pub(crate) use loom::sync::atomic::{
        fence, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    pub(crate) use loom::sync::Arc;
    pub(crate) use loom::thread;
    /// std's `Arc` in both builds: the shared clock
    /// ([`sysblocks_clock::SharedClock`]) is always a std `Arc`.
    pub(crate) use std::sync::Arc as StdArc;

    /// The lock of one key's multi-word state in the keyed store: loom's
    /// own (public) mutex, since it is the `Algorithm::Cell` of the window
    /// limiters.
    pub(crate) type StateLock<T> = loom::sync::Mutex<T>;

    /// Locks a [`StateLock`] (entered even if poisoned).
    pub(crate) fn lock_state<T>(m: &StateLock<T>) -> loom::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Under loom a spin loop must yield, or the model never ends.
    #[inline]
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }

    /// loom's `Mutex` with parking_lot's surface: `lock()` returns the guard
    /// directly (a poisoned lock is entered anyway, as parking_lot does).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    /// The guard of [`Mutex`]; the `Option` lets [`Condvar`] hand it to loom
    /// and take it back while the caller keeps a `&mut`.
    #[derive(Debug)]
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(MutexGuard(Some(g))),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(MutexGuard(Some(e.into_inner()))),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }

        pub(crate) fn into_inner(self) -> T {
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
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// loom's `Condvar` with parking_lot's `wait(&mut guard)` surface.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Self(loom::sync::Condvar::new())
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            let inner = guard.0.take().expect("guard is present");
            guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
        }

        /// loom has no time: a timed wait is a wait that may wake spuriously.
        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _timeout: Duration,
        ) -> WaitTimeoutResult {
            let inner = guard.0.take().expect("guard is present");
            let (g, res) = self
                .0
                .wait_timeout(inner, _timeout)
                .unwrap_or_else(|e| e.into_inner());
            guard.0 = Some(g);
            WaitTimeoutResult(res.timed_out())
        }

        pub(crate) fn notify_one(&self) -> bool {
            self.0.notify_one();
            true
        }

        pub(crate) fn notify_all(&self) -> usize {
            self.0.notify_all();
            0
        }
    }

    /// loom's `RwLock` with parking_lot's non-poisoning surface.
    #[derive(Debug, Default)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(loom::sync::RwLock::new(value))
        }

        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }
}

#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use super::*;

    /// The shim's lock wrapper really excludes: two increments under the lock
    /// always give two, in every interleaving loom explores.
    #[test]
    fn loom_shim_mutex_excludes() {
        loom::model(|| {
            let m = Arc::new(Mutex::new(0u32));
            let m2 = Arc::clone(&m);
            let t = thread::spawn(move || {
                let mut g = m2.lock();
                *g += 1;
            });
            {
                let mut g = m.lock();
                *g += 1;
            }
            t.join().unwrap();
            assert_eq!(*m.lock(), 2);
        });
    }

    /// A waiter on the shim's `Condvar` is always woken by a notify that
    /// follows the state change under the lock (no lost wake-up).
    #[test]
    fn loom_shim_condvar_wakes() {
        loom::model(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let p2 = Arc::clone(&pair);
            let t = thread::spawn(move || {
                *p2.0.lock() = true;
                p2.1.notify_all();
            });
            let mut g = pair.0.lock();
            while !*g {
                pair.1.wait(&mut g);
            }
            drop(g);
            t.join().unwrap();
        });
    }
}
