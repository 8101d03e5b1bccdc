//! A counting global allocator for heap-size cases (bytes per node, bytes
//! per entry), shared by the criterion benches and `compare`.
//!
//! Each binary installs it with
//! `#[global_allocator] static ALLOC: benches::alloc::Counting = benches::alloc::Counting;`.
//! It counts only while [`heap_of`] runs, so outside it costs one relaxed
//! load per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// Counts live heap bytes while a [`heap_of`] measurement runs; otherwise it
/// forwards to [`System`] only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counters are bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        if COUNTING.load(Ordering::Relaxed) {
            let size = layout.size() as isize;
            let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let delta = new_size as isize - layout.size() as isize;
            let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Whether [`Counting`] is this process's global allocator (it has seen an
/// allocation). Without it [`heap_of`] would report zeros.
#[must_use]
pub fn installed() -> bool {
    drop(Box::new(0u8));
    INSTALLED.load(Ordering::Relaxed)
}

/// Runs `build` and returns its value with the heap bytes it still holds
/// (allocated minus freed while building). Measure from one thread at a
/// time: the counter is process-wide.
pub fn heap_of<T>(build: impl FnOnce() -> T) -> (T, isize) {
    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let v = build();
    COUNTING.store(false, Ordering::SeqCst);
    (v, LIVE.load(Ordering::SeqCst))
}

/// Runs `work` and returns its value with the peak of live heap bytes
/// allocated during it (above what was live when it started), from every
/// thread of the process.
pub fn peak_of<T>(work: impl FnOnce() -> T) -> (T, isize) {
    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let v = work();
    COUNTING.store(false, Ordering::SeqCst);
    (v, PEAK.load(Ordering::SeqCst))
}
