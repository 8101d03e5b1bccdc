//! Heap taken by an empty cache right after `build`, measured with a
//! counting global allocator (its own test binary, one test, so nothing
//! else allocates while it measures). The reservation made up front must
//! stay small whatever the capacity: a weighted capacity is bytes, not
//! entries, and a cache that may grow large need not pay for it until it
//! does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sysblocks_lru_ttl_cache::{Cache, LruCache, MAX_ENTRIES};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Live heap bytes that `make`'s result holds.
fn heap_of<T>(make: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let v = make();
    let after = LIVE.load(Ordering::Relaxed);
    (v, usize::try_from(after - before).unwrap_or(0))
}

/// What "small" means here: far below what one shard's worth of reserved
/// slots per core would take, and the same for every capacity.
const SMALL: usize = 2 << 20;

#[test]
fn an_empty_cache_holds_little_heap_whatever_its_capacity() {
    for cap in [1u64 << 20, 1 << 40, u64::MAX] {
        let (c, bytes) = heap_of(|| {
            Cache::<String, Vec<u8>>::builder()
                .max_capacity(cap)
                .weigher(|k, v| (k.len() + v.len()) as u64)
                .build()
                .unwrap()
        });
        assert!(
            bytes < SMALL,
            "weighted Cache, capacity {cap}, {} shards: {bytes} bytes after build",
            c.shard_count()
        );
        // It still works, and grows on demand.
        for k in 0..1000u32 {
            c.insert(k.to_string(), vec![0; 10]);
        }
        assert_eq!(c.len(), 1000);

        let (c, bytes) = heap_of(|| {
            LruCache::<String, Vec<u8>>::builder()
                .max_capacity(cap)
                .weigher(|k, v| (k.len() + v.len()) as u64)
                .build()
                .unwrap()
        });
        assert!(
            bytes < SMALL,
            "weighted LruCache, capacity {cap}: {bytes} bytes"
        );
        drop(c);
    }
    for cap in [1u64 << 20, MAX_ENTRIES] {
        let (c, bytes) = heap_of(|| {
            Cache::<String, Vec<u8>>::builder()
                .max_capacity(cap)
                .build()
                .unwrap()
        });
        assert!(
            bytes < SMALL,
            "unweighted Cache, capacity {cap}, {} shards: {bytes} bytes after build",
            c.shard_count()
        );
        let (c, bytes) = heap_of(|| LruCache::<String, Vec<u8>>::new(cap).unwrap());
        assert!(
            bytes < SMALL,
            "unweighted LruCache, capacity {cap}: {bytes} bytes"
        );
        drop(c);
    }
}
