//! The crate's one door to synchronisation primitives: [`sysblocks_sync`],
//! which is std and parking_lot normally and loom's models under
//! `--cfg sysblocks_loom`. No other module imports `std::sync` or
//! `parking_lot`, so loom sees every synchronising operation.

pub(crate) use sysblocks_sync::{
    fence, spin_loop, thread, Arc, AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering,
    StdArc, UnsafeCell,
};

/// A number no earlier call in this process returned: the identity of a
/// queue, which its deliveries carry. A std atomic in both builds: only
/// uniqueness matters, so loom need not see it (and a `static` cannot hold
/// one of loom's atomics). 2^64 queues are out of reach, so it never wraps.
pub(crate) fn unique_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
