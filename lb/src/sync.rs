//! The crate's one door to synchronisation primitives: [`sysblocks_sync`]
//! (loom's models under `--cfg sysblocks_loom`) plus three pieces of
//! `pick`'s fast path. [`ArcCell`] is the snapshot that `pick` reads without
//! locking ([`arc_swap::ArcSwap`]; under loom a `Mutex<Arc<T>>`, whose load
//! has the same contract). [`Shared`]/[`WeakShared`] are std's `Arc`/`Weak`:
//! a backend's strong count *is* its in-flight count plus one, so a pick is
//! one increment and one decrement; loom has no `Weak`, so under loom they
//! are a model with the same atomic steps. [`PerThread`] is a per-object
//! thread-local slot (under loom, a list keyed by loom's thread id). No
//! other module imports `std::sync`, `parking_lot`, `arc_swap` or `loom`.

/// The health checker's thread exists only outside loom.
#[cfg(not(sysblocks_loom))]
pub(crate) use sysblocks_sync::Condvar;
pub(crate) use sysblocks_sync::{
    fence, spin_loop, Arc, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, StdArc,
};

#[cfg(not(sysblocks_loom))]
pub(crate) use self::std_impl::*;

#[cfg(sysblocks_loom)]
pub(crate) use self::loom_impl::*;

impl<T: Send> std::fmt::Debug for PerThread<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PerThread")
    }
}

#[cfg(not(sysblocks_loom))]
mod std_impl {
    pub(crate) use std::sync::Weak as WeakShared;
    use sysblocks_sync::Arc;

    use std::cell::RefCell;

    /// The strong handle a pick owns; see the module docs.
    pub(crate) type Shared<T> = Arc<T>;

    /// One value per thread and per owner object.
    pub(crate) struct PerThread<T: Send>(thread_local::ThreadLocal<Padded<T>>);

    /// The per-thread values sit side by side; the padding keeps each
    /// thread's (its borrow flag is written on every use) on its own lines.
    type Padded<T> = sysblocks_sync::CachePadded<RefCell<T>>;

    impl<T: Send + Default> PerThread<T> {
        pub(crate) fn new() -> Self {
            Self(thread_local::ThreadLocal::new())
        }

        /// Runs `f` on this thread's value; `None` when the value is
        /// already borrowed further up this thread's stack (re-entry).
        #[inline]
        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
            let cell: &RefCell<T> = self.0.get_or_default();
            let mut value = cell.try_borrow_mut().ok()?;
            Some(f(&mut value))
        }
    }

    /// An `Arc<T>` that readers load without locking and writers replace;
    /// `ArcSwap`'s own `new`, `load`, `load_full` and `store` are the surface
    /// the loom model copies.
    pub(crate) type ArcCell<T> = arc_swap::ArcSwap<T>;
}

#[cfg(sysblocks_loom)]
mod loom_impl {
    use std::ops::Deref;
    use sysblocks_sync::{Arc, AtomicUsize, Mutex, Ordering};

    struct Counted<T> {
        strong: AtomicUsize,
        value: T,
    }

    /// The model of std's `Arc` strong handle: a counter beside the value,
    /// incremented by `upgrade`, decremented (`Release`) on drop. The value
    /// itself is freed when the last handle of either kind goes.
    pub(crate) struct Shared<T>(Arc<Counted<T>>);

    impl<T> Shared<T> {
        pub(crate) fn new(value: T) -> Self {
            Self(Arc::new(Counted {
                strong: AtomicUsize::new(1),
                value,
            }))
        }

        pub(crate) fn downgrade(this: &Self) -> WeakShared<T> {
            WeakShared(Arc::clone(&this.0))
        }

        /// Relaxed, as std's: callers that need ordering add a fence.
        pub(crate) fn strong_count(this: &Self) -> usize {
            this.0.strong.load(Ordering::Relaxed)
        }
    }

    impl<T> Deref for Shared<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.0.value
        }
    }

    impl<T> Drop for Shared<T> {
        fn drop(&mut self) {
            self.0.strong.fetch_sub(1, Ordering::Release);
        }
    }

    /// The model of std's `Weak`.
    pub(crate) struct WeakShared<T>(Arc<Counted<T>>);

    impl<T> WeakShared<T> {
        /// As `std::sync::Weak::upgrade`: a relaxed load, then a CAS from a
        /// non-zero count.
        pub(crate) fn upgrade(&self) -> Option<Shared<T>> {
            let mut n = self.0.strong.load(Ordering::Relaxed);
            loop {
                if n == 0 {
                    return None;
                }
                match self.0.strong.compare_exchange_weak(
                    n,
                    n + 1,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Some(Shared(Arc::clone(&self.0))),
                    Err(seen) => n = seen,
                }
            }
        }

        pub(crate) fn strong_count(&self) -> usize {
            self.0.strong.load(Ordering::Relaxed)
        }
    }

    /// One value per loom thread and per owner object. The list and the
    /// slots are std mutexes, invisible to loom: a slot is only ever locked
    /// by its own thread, and the list is held across no loom operation, so
    /// neither blocks nor adds an ordering between threads that the std
    /// version (a thread-local) would not have.
    pub(crate) struct PerThread<T>(
        #[allow(clippy::type_complexity)]
        std::sync::Mutex<Vec<(loom::thread::ThreadId, std::sync::Arc<std::sync::Mutex<T>>)>>,
    );

    impl<T: Default> PerThread<T> {
        pub(crate) fn new() -> Self {
            Self(std::sync::Mutex::new(Vec::new()))
        }

        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
            let id = loom::thread::current().id();
            let slot = {
                let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
                match slots.iter().find(|(t, _)| *t == id) {
                    Some((_, slot)) => std::sync::Arc::clone(slot),
                    None => {
                        let slot = std::sync::Arc::new(std::sync::Mutex::new(T::default()));
                        slots.push((id, std::sync::Arc::clone(&slot)));
                        slot
                    }
                }
            };
            let mut value = slot.try_lock().ok()?;
            Some(f(&mut value))
        }
    }

    /// A `Mutex<Arc<T>>`: the model of the lock-free cell.
    #[derive(Debug)]
    pub(crate) struct ArcCell<T>(Mutex<Arc<T>>);

    impl<T> ArcCell<T> {
        pub(crate) fn new(value: Arc<T>) -> Self {
            Self(Mutex::new(value))
        }

        /// Under loom a load is a clone of the `Arc`.
        pub(crate) fn load(&self) -> Arc<T> {
            Arc::clone(&self.0.lock())
        }

        pub(crate) fn load_full(&self) -> Arc<T> {
            self.load()
        }

        pub(crate) fn store(&self, value: Arc<T>) {
            let old = std::mem::replace(&mut *self.0.lock(), value);
            drop(old);
        }
    }
}
