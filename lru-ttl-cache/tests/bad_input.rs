//! Bad input, swept at the edges of every public setting and argument:
//! capacities 0, 1 and MAX (entries and weight), weighers returning 0 and
//! `u64::MAX`, TTL and TTI of `Duration::ZERO` and `Duration::MAX`, shard
//! counts 0, 1, MAX and not powers of two, a clock at `u64::MAX` ns and one
//! stepping back, huge values and many inserts, and callbacks that fail,
//! panic or re-enter. Each case runs in a child process under an
//! address-space limit and a timeout (sysblocks-testkit), and ends in a
//! typed error or in the documented behaviour, which it asserts.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysblocks_lru_ttl_cache::{
    BuildError, Cache, LruCache, ManualClock, Policy, RemovalCause, MAX_ENTRIES, MAX_SHARDS,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

type Seen<K> = Arc<Mutex<Vec<(K, RemovalCause)>>>;

fn keys<V>(c: &LruCache<u32, V>) -> Vec<u32> {
    c.iter().map(|(k, _)| *k).collect()
}

fn zero(setting: &'static str) -> BuildError {
    BuildError::Zero { setting }
}

/// A weighted `LruCache` whose values are their own weights.
fn weighted_lru(cap: u64) -> (LruCache<u32, u64>, Seen<u32>) {
    let seen: Seen<u32> = Arc::default();
    let s2 = Arc::clone(&seen);
    let c = LruCache::builder()
        .max_capacity(cap)
        .weigher(|_k: &u32, v: &u64| *v)
        .eviction_listener(move |k, _v, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    (c, seen)
}

/// A weighted one-shard `Cache` whose values are their own weights.
fn weighted_cache(cap: u64) -> (Cache<u32, u64>, Seen<u32>) {
    let seen: Seen<u32> = Arc::default();
    let s2 = Arc::clone(&seen);
    let c = Cache::builder()
        .max_capacity(cap)
        .shards(1)
        .weigher(|_k: &u32, v: &u64| *v)
        .eviction_listener(move |k, _v, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    (c, seen)
}

const SEC: Duration = Duration::from_secs(1);

// ----- LruCache ---------------------------------------------------------------

fn lru_capacity_zero() {
    assert_eq!(
        LruCache::<u32, u32>::new(0).unwrap_err(),
        zero("max_capacity")
    );
    assert_eq!(
        LruCache::<u32, u32>::builder().build().unwrap_err(),
        zero("max_capacity")
    );
    let e = LruCache::<u32, u64>::builder()
        .max_capacity(0)
        .weigher(|_, v| *v)
        .build()
        .unwrap_err();
    assert_eq!(e, zero("max_capacity"));
}

fn lru_capacity_one() {
    let mut c = LruCache::new(1).unwrap();
    assert_eq!(c.insert(1u32, 1u32), None);
    assert_eq!(c.insert(2, 2), None);
    assert_eq!(keys(&c), [2]);
    assert_eq!(c.stats().evicted_size, 1);
    assert_eq!(c.insert(2, 3), Some(2));
    assert_eq!(c.len(), 1);
}

fn lru_capacity_max() {
    // Unweighted, the capacity is an entry count: at most MAX_ENTRIES.
    let max = BuildError::TooLarge {
        setting: "max_capacity",
        max: MAX_ENTRIES,
    };
    assert_eq!(LruCache::<u32, u32>::new(u64::MAX).unwrap_err(), max);
    assert_eq!(LruCache::<u32, u32>::new(MAX_ENTRIES + 1).unwrap_err(), max);
    let mut c = LruCache::new(MAX_ENTRIES).unwrap();
    for k in 0..1000u32 {
        c.insert(k, k);
    }
    assert_eq!(c.len(), 1000);
    assert_eq!(c.capacity(), MAX_ENTRIES);
}

fn lru_weighted_capacity_one() {
    let (mut c, seen) = weighted_lru(1);
    c.insert(1, 1);
    c.insert(2, 2);
    assert_eq!(keys(&c), [1]);
    assert_eq!(*seen.lock().unwrap(), [(2, RemovalCause::Rejected)]);
    assert_eq!(c.stats().rejected, 1);
}

fn lru_weighted_capacity_max() {
    let (mut c, seen) = weighted_lru(u64::MAX);
    c.insert(1, 1 << 63);
    c.insert(2, 1 << 63);
    assert_eq!(c.weighted_size(), 1 << 63);
    assert_eq!(keys(&c), [2]);
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Size)]);
}

fn lru_weigher_zero() {
    // Weight 0 counts against no capacity: such entries leave only by
    // expiry, removal or the MAX_ENTRIES bound.
    let mut c = LruCache::builder()
        .max_capacity(1)
        .weigher(|_k: &u32, _v: &u32| 0)
        .build()
        .unwrap();
    for k in 0..10_000 {
        c.insert(k, k);
    }
    assert_eq!(c.len(), 10_000);
    assert_eq!(c.weighted_size(), 0);
    assert_eq!(c.stats().evicted_size, 0);
    c.set_capacity(1).unwrap();
    assert_eq!(c.len(), 10_000);
}

fn lru_weigher_max() {
    // Heavier than a capacity below u64::MAX: rejected.
    let (mut c, seen) = weighted_lru(u64::MAX - 1);
    c.insert(1, u64::MAX);
    assert!(c.is_empty());
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Rejected)]);
    // Exactly the capacity: stored, alone.
    let (mut c, seen) = weighted_lru(u64::MAX);
    c.insert(1, 1);
    c.insert(2, u64::MAX);
    assert_eq!(keys(&c), [2]);
    assert_eq!(c.weighted_size(), u64::MAX);
    c.insert(3, u64::MAX);
    assert_eq!(keys(&c), [3]);
    // A replacement that no longer fits is rejected, and the old value
    // leaves with it.
    c.set_capacity(10).unwrap();
    assert!(c.is_empty());
    c.insert(4, 5);
    assert_eq!(c.insert(4, u64::MAX), Some(5));
    assert!(c.is_empty());
    assert_eq!(c.weighted_size(), 0);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (1, RemovalCause::Size),
            (2, RemovalCause::Size),
            (3, RemovalCause::Size),
            (4, RemovalCause::Rejected),
        ]
    );
}

fn lru_durations_zero() {
    let e = LruCache::<u32, u32>::builder()
        .max_capacity(1)
        .time_to_live(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, zero("time_to_live"));
    let e = LruCache::<u32, u32>::builder()
        .max_capacity(1)
        .time_to_idle(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, zero("time_to_idle"));
}

fn lru_durations_max() {
    // Deadlines saturate: Duration::MAX means never.
    let clock = ManualClock::new();
    let mut c = LruCache::builder()
        .max_capacity(2)
        .time_to_live(Duration::MAX)
        .time_to_idle(Duration::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1u32, 1u32);
    clock.advance(Duration::MAX);
    c.purge_expired();
    assert_eq!(c.get(&1), Some(&1));
    assert_eq!(c.stats().expired, 0);
}

fn lru_insert_with_ttl_edges() {
    let seen: Seen<u32> = Arc::default();
    let s2 = Arc::clone(&seen);
    let clock = ManualClock::new();
    let mut c = LruCache::builder()
        .max_capacity(4)
        .clock(clock.clone())
        .eviction_listener(move |k, _v: u32, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    c.insert(1, 1);
    // Zero: nothing stored, and the old entry for the key goes.
    assert_eq!(c.insert_with_ttl(1, 2, Duration::ZERO), Some(1));
    assert!(c.is_empty());
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Expired)]);
    c.insert_with_ttl(2, 2, Duration::MAX);
    c.insert_with_ttl(3, 3, Duration::from_nanos(1));
    clock.advance(Duration::MAX);
    assert_eq!(c.get(&2), Some(&2));
    assert_eq!(c.get(&3), None);
    assert_eq!(keys(&c), [2]);
}

fn lru_clock_at_max() {
    // At the end of the clock no more time can pass: a deadline that
    // saturates there is never reached, one before it is.
    let clock = ManualClock::starting_at(Duration::from_nanos(u64::MAX));
    let mut c = LruCache::builder()
        .max_capacity(4)
        .time_to_live(SEC)
        .time_to_idle(SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1u32, 1u32);
    clock.advance(Duration::MAX);
    c.purge_expired();
    assert_eq!(c.get(&1), Some(&1));
    assert_eq!(c.peek(&1), Some(&1));
    assert_eq!(keys(&c), [1]);
    clock.set(Duration::from_nanos(u64::MAX - 3));
    // The clock stepped back: no time passed, still at the end.
    c.insert_with_ttl(2, 2, Duration::from_nanos(1));
    assert_eq!(c.get(&2), Some(&2));
}

fn lru_clock_steps_back() {
    // A step back counts as no time passing: deadlines are measured from
    // the latest time seen.
    let clock = ManualClock::starting_at(Duration::from_secs(100));
    let mut c = LruCache::builder()
        .max_capacity(4)
        .time_to_live(10 * SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1u32, 1u32);
    clock.set(Duration::from_secs(90));
    assert_eq!(c.get(&1), Some(&1));
    c.insert(2, 2); // written "at" 100 s, the latest time seen
    clock.set(Duration::from_secs(109));
    assert_eq!(keys(&c), [2, 1]);
    clock.set(Duration::from_secs(110));
    assert_eq!(c.get(&1), None);
    assert_eq!(c.get(&2), None);
    c.purge_expired();
    assert!(c.is_empty());
    clock.set(Duration::ZERO);
    c.insert(3, 3);
    clock.set(Duration::from_secs(119));
    assert_eq!(c.get(&3), Some(&3));
    clock.set(Duration::from_secs(120));
    assert_eq!(c.get(&3), None);
}

fn lru_set_capacity_edges() {
    let mut c = LruCache::new(3).unwrap();
    for k in 0..3u32 {
        c.insert(k, k);
    }
    assert_eq!(c.set_capacity(0).unwrap_err(), zero("max_capacity"));
    assert!(matches!(
        c.set_capacity(u64::MAX),
        Err(BuildError::TooLarge { .. })
    ));
    assert_eq!((c.capacity(), c.len()), (3, 3));
    c.set_capacity(1).unwrap();
    assert_eq!(keys(&c), [2]);
    let (mut w, _) = weighted_lru(1);
    w.set_capacity(u64::MAX).unwrap();
    w.insert(1, u64::MAX);
    assert_eq!(w.weighted_size(), u64::MAX);
}

fn lru_huge_values_and_many_inserts() {
    // 64 MiB under a 1 MiB byte capacity: rejected and handed back.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let mut c = LruCache::builder()
        .max_capacity(1 << 20)
        .weigher(|_k: &u32, v: &Vec<u8>| v.len() as u64)
        .eviction_listener(move |k, v: Vec<u8>, cause| s2.lock().unwrap().push((k, v.len(), cause)))
        .build()
        .unwrap();
    c.insert(1, vec![7; 64 << 20]);
    assert!(c.is_empty());
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, 64 << 20, RemovalCause::Rejected)]
    );
    // A million inserts into 1,000 entries.
    let mut c = LruCache::new(1000).unwrap();
    for k in 0..1_000_000u32 {
        c.insert(k, k);
    }
    assert_eq!(c.len(), 1000);
    assert_eq!(keys(&c), (999_000..1_000_000).rev().collect::<Vec<_>>());
}

fn lru_listener_panics() {
    let calls: Seen<u32> = Arc::default();
    let c2 = Arc::clone(&calls);
    let mut c = LruCache::builder()
        .max_capacity(1)
        .time_to_live(SEC)
        .clock(ManualClock::new())
        .eviction_listener(move |k: u32, _v: u32, cause| {
            c2.lock().unwrap().push((k, cause));
            std::panic::resume_unwind(Box::new("listener failed"));
        })
        .build()
        .unwrap();
    c.insert(1, 1);
    assert!(catch_unwind(AssertUnwindSafe(|| c.insert(2, 2))).is_err());
    assert_eq!(keys(&c), [2]);
    assert_eq!((c.peek(&2), c.len()), (Some(&2), 1));
    assert_eq!(c.get(&2), Some(&2));
    assert!(catch_unwind(AssertUnwindSafe(|| c.clear())).is_err());
    assert!(c.is_empty() && c.get(&2).is_none() && keys(&c).is_empty());
    assert_eq!(
        *calls.lock().unwrap(),
        [(1, RemovalCause::Size), (2, RemovalCause::Explicit)]
    );
}

fn lru_weigher_panics() {
    let mut c = LruCache::builder()
        .max_capacity(10)
        .weigher(|k: &u32, _v: &u32| if *k == 13 { panic!("no weight") } else { 1 })
        .build()
        .unwrap();
    c.insert(1, 1);
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    assert!(catch_unwind(AssertUnwindSafe(|| c.insert(13, 13))).is_err());
    std::panic::set_hook(quiet);
    assert_eq!(keys(&c), [1]);
    assert_eq!((c.len(), c.weighted_size()), (1, 1));
    c.insert(2, 2);
    assert_eq!(keys(&c), [2, 1]);
}

// ----- Cache ------------------------------------------------------------------

fn cache_capacity_zero() {
    let e = Cache::<u32, u32>::builder()
        .max_capacity(0)
        .build()
        .unwrap_err();
    assert_eq!(e, zero("max_capacity"));
    let e = Cache::<u32, u32>::builder().build().unwrap_err();
    assert_eq!(e, zero("max_capacity"));
}

fn cache_capacity_one() {
    let c: Cache<u32, u32> = Cache::builder().max_capacity(1).build().unwrap();
    assert_eq!(c.shard_count(), 1);
    c.insert(1, 1);
    c.insert(2, 2);
    assert_eq!((c.get(&1), c.get(&2), c.len()), (None, Some(2), 1));
}

fn cache_capacity_max() {
    // Unweighted, each shard's share is an entry count, at most
    // MAX_ENTRIES.
    for shards in [None, Some(1)] {
        let mut b = Cache::<u32, u32>::builder().max_capacity(u64::MAX);
        if let Some(n) = shards {
            b = b.shards(n);
        }
        assert!(matches!(
            b.build(),
            Err(BuildError::TooLarge {
                setting: "max_capacity",
                ..
            })
        ));
    }
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(2 * MAX_ENTRIES)
        .shards(2)
        .build()
        .unwrap();
    assert_eq!(c.max_capacity(), 2 * MAX_ENTRIES);
    c.insert(1, 1);
    assert_eq!(c.get(&1), Some(1));
}

fn cache_weighted_capacity_max() {
    let (c, seen) = weighted_cache(u64::MAX);
    c.insert(1, 1 << 63);
    c.insert(2, 1 << 63);
    assert_eq!(c.weighted_size(), 1 << 63);
    assert_eq!((c.get(&1), c.get(&2)), (None, Some(1 << 63)));
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Size)]);
    // With default shards the capacity is split: an entry heavier than
    // its shard's share is rejected.
    let c: Cache<u32, u64> = Cache::builder()
        .max_capacity(u64::MAX)
        .weigher(|_, v| *v)
        .build()
        .unwrap();
    let n = c.shard_count() as u64;
    if n > 1 {
        // Every shard's share is `u64::MAX / n` or one more.
        c.insert(1, u64::MAX / n + 2);
        assert!(c.is_empty());
        assert_eq!(c.stats().rejected, 1);
    }
    c.insert(2, u64::MAX / n);
    assert_eq!(c.get(&2), Some(u64::MAX / n));
}

fn cache_weigher_zero_and_max() {
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(1)
        .weigher(|_, _| 0)
        .build()
        .unwrap();
    for k in 0..10_000 {
        c.insert(k, k);
    }
    assert_eq!((c.len(), c.weighted_size()), (10_000, 0));
    let (c, seen) = weighted_cache(u64::MAX - 1);
    c.insert(1, u64::MAX);
    assert!(c.is_empty());
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Rejected)]);
    let (c, _) = weighted_cache(u64::MAX);
    c.insert(1, u64::MAX);
    c.insert(2, u64::MAX);
    assert_eq!((c.len(), c.get(&2)), (1, Some(u64::MAX)));
}

fn cache_shards_edges() {
    let b = || Cache::<u32, u32>::builder().max_capacity(1 << 20);
    assert_eq!(b().shards(0).build().unwrap_err(), zero("shards"));
    let too_many = BuildError::TooLarge {
        setting: "shards",
        max: MAX_SHARDS as u64,
    };
    assert_eq!(b().shards(MAX_SHARDS + 1).build().unwrap_err(), too_many);
    assert_eq!(b().shards(usize::MAX).build().unwrap_err(), too_many);
    assert!(matches!(
        Cache::<u32, u32>::builder()
            .max_capacity(2)
            .shards(3)
            .build(),
        Err(BuildError::Conflict {
            setting: "shards",
            ..
        })
    ));
    // One shard: an exact global LRU.
    let c = b().max_capacity(2).shards(1).build().unwrap();
    c.insert(1, 1);
    c.insert(2, 2);
    c.get(&1);
    c.insert(3, 3);
    assert_eq!((c.get(&1), c.get(&2), c.get(&3)), (Some(1), None, Some(3)));
    // MAX_SHARDS shards of one entry each.
    let c = Cache::<u32, u32>::builder()
        .max_capacity(MAX_SHARDS as u64)
        .shards(MAX_SHARDS)
        .build()
        .unwrap();
    assert_eq!(c.shard_count(), MAX_SHARDS);
    for k in 0..200_000 {
        c.insert(k, k);
    }
    assert!(c.len() <= MAX_SHARDS);
    // Not powers of two: the capacity is split exactly.
    for n in [3usize, 7, 1000] {
        let c = Cache::<u32, u32>::builder()
            .max_capacity(10_007)
            .shards(n)
            .build()
            .unwrap();
        assert_eq!(c.shard_count(), n);
        for k in 0..100_000 {
            c.insert(k, k);
        }
        assert!(c.len() <= 10_007, "{n} shards hold {}", c.len());
        assert!(
            c.len() > 9_000,
            "{n} shards fill evenly enough: {}",
            c.len()
        );
    }
}

fn cache_durations_edges() {
    let b = || Cache::<u32, u32>::builder().max_capacity(4);
    assert_eq!(
        b().time_to_live(Duration::ZERO).build().unwrap_err(),
        zero("time_to_live")
    );
    assert_eq!(
        b().time_to_idle(Duration::ZERO).build().unwrap_err(),
        zero("time_to_idle")
    );
    let clock = ManualClock::new();
    let c = b()
        .shards(1)
        .time_to_live(Duration::MAX)
        .time_to_idle(Duration::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1, 1);
    c.insert_with_ttl(2, 2, Duration::MAX);
    c.insert_with_ttl(3, 3, Duration::from_nanos(1));
    c.insert(4, 4);
    c.insert_with_ttl(4, 5, Duration::ZERO);
    assert!(!c.contains_key(&4));
    clock.advance(Duration::MAX);
    c.purge_expired();
    assert_eq!((c.get(&1), c.get(&2), c.get(&3)), (Some(1), Some(2), None));
    assert_eq!(c.stats().expired, 2);
}

fn cache_clock_at_max_and_back() {
    let clock = ManualClock::starting_at(Duration::from_nanos(u64::MAX));
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(4)
        .shards(1)
        .time_to_live(SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1, 1);
    clock.advance(Duration::MAX);
    assert_eq!(c.get(&1), Some(1));
    let clock = ManualClock::starting_at(Duration::from_secs(100));
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(4)
        .shards(1)
        .time_to_idle(10 * SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    c.insert(1, 1);
    clock.set(Duration::from_secs(50));
    assert_eq!(c.get(&1), Some(1)); // read "at" 100 s
    clock.set(Duration::from_secs(109));
    assert_eq!(c.get(&1), Some(1)); // idle until 119 s
    clock.set(Duration::from_secs(118));
    assert!(c.contains_key(&1));
    clock.set(Duration::from_secs(119));
    assert_eq!(c.get(&1), None);
}

fn cache_huge_values_and_many_inserts() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    let c: Cache<u32, Vec<u8>> = Cache::builder()
        .max_capacity(1 << 20)
        .weigher(|_, v: &Vec<u8>| v.len() as u64)
        .eviction_listener(move |k, v, cause| s2.lock().unwrap().push((k, v.len(), cause)))
        .build()
        .unwrap();
    c.insert(1, vec![7; 64 << 20]);
    assert!(c.is_empty());
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, 64 << 20, RemovalCause::Rejected)]
    );
    let c: Cache<u32, u32> = Cache::builder().max_capacity(1000).build().unwrap();
    for k in 0..1_000_000 {
        c.insert(k, k);
    }
    assert!(c.len() <= 1000);
    assert_eq!(c.get(&999_999), Some(999_999));
}

fn cache_reentrant_init() {
    let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
    let inner = c.clone();
    let v = c.get_or_insert_with(1, || inner.get_or_insert_with(1, || 5) + 1);
    assert_eq!((v, c.get(&1)), (6, Some(6)));
}

fn cache_failing_and_absent_loads() {
    // One shard: of the default ten one-entry shards, keys 1 and 4 share
    // one a tenth of the time, and `len` would be 1.
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(10)
        .shards(1)
        .loader(|k| (*k == 1).then_some(10))
        .build()
        .unwrap();
    assert_eq!(c.get_or_load(&2), None);
    assert!(c.is_empty());
    assert_eq!(c.get_or_load(&1), Some(10));
    assert_eq!(
        c.try_get_or_insert_with(3, || Err::<u32, &str>("down")),
        Err("down")
    );
    assert!(!c.contains_key(&3));
    let r = catch_unwind(AssertUnwindSafe(|| {
        c.get_or_insert_with(4, || std::panic::resume_unwind(Box::new("loader failed")))
    }));
    assert!(r.is_err());
    assert!(!c.contains_key(&4));
    assert_eq!(c.get_or_insert_with(4, || 40), 40);
    assert_eq!(c.len(), 2);
}

fn cache_loaded_value_too_heavy() {
    let (c, seen) = weighted_cache(10);
    assert_eq!(c.get_or_insert_with(1, || 11), 11);
    assert!(c.is_empty());
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Rejected)]);
}

fn cache_listener_panics() {
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(1)
        .shards(1)
        .eviction_listener(|_, _, _| std::panic::resume_unwind(Box::new("listener failed")))
        .build()
        .unwrap();
    c.insert(1, 1);
    assert!(catch_unwind(AssertUnwindSafe(|| c.insert(2, 2))).is_err());
    assert_eq!((c.get(&1), c.get(&2), c.len()), (None, Some(2), 1));
    assert!(catch_unwind(AssertUnwindSafe(|| c.insert(3, 3))).is_err());
    assert_eq!((c.get(&2), c.get(&3), c.len()), (None, Some(3), 1));
}

#[test]
fn lru_cache_bad_input() {
    run_isolated(
        "lru_cache_bad_input",
        &[
            Case {
                name: "capacity_zero",
                run: lru_capacity_zero,
            },
            Case {
                name: "capacity_one",
                run: lru_capacity_one,
            },
            Case {
                name: "capacity_max",
                run: lru_capacity_max,
            },
            Case {
                name: "weighted_capacity_one",
                run: lru_weighted_capacity_one,
            },
            Case {
                name: "weighted_capacity_max",
                run: lru_weighted_capacity_max,
            },
            Case {
                name: "weigher_zero",
                run: lru_weigher_zero,
            },
            Case {
                name: "weigher_max",
                run: lru_weigher_max,
            },
            Case {
                name: "durations_zero",
                run: lru_durations_zero,
            },
            Case {
                name: "durations_max",
                run: lru_durations_max,
            },
            Case {
                name: "insert_with_ttl_edges",
                run: lru_insert_with_ttl_edges,
            },
            Case {
                name: "clock_at_max",
                run: lru_clock_at_max,
            },
            Case {
                name: "clock_steps_back",
                run: lru_clock_steps_back,
            },
            Case {
                name: "set_capacity_edges",
                run: lru_set_capacity_edges,
            },
            Case {
                name: "huge_values_and_many_inserts",
                run: lru_huge_values_and_many_inserts,
            },
            Case {
                name: "listener_panics",
                run: lru_listener_panics,
            },
            Case {
                name: "weigher_panics",
                run: lru_weigher_panics,
            },
        ],
        Limits::default(),
    );
}

#[test]
fn cache_bad_input() {
    run_isolated(
        "cache_bad_input",
        &[
            Case {
                name: "capacity_zero",
                run: cache_capacity_zero,
            },
            Case {
                name: "capacity_one",
                run: cache_capacity_one,
            },
            Case {
                name: "capacity_max",
                run: cache_capacity_max,
            },
            Case {
                name: "weighted_capacity_max",
                run: cache_weighted_capacity_max,
            },
            Case {
                name: "weigher_zero_and_max",
                run: cache_weigher_zero_and_max,
            },
            Case {
                name: "shards_edges",
                run: cache_shards_edges,
            },
            Case {
                name: "durations_edges",
                run: cache_durations_edges,
            },
            Case {
                name: "clock_at_max_and_back",
                run: cache_clock_at_max_and_back,
            },
            Case {
                name: "huge_values_and_many_inserts",
                run: cache_huge_values_and_many_inserts,
            },
            Case {
                name: "reentrant_init",
                run: cache_reentrant_init,
            },
            Case {
                name: "failing_and_absent_loads",
                run: cache_failing_and_absent_loads,
            },
            Case {
                name: "loaded_value_too_heavy",
                run: cache_loaded_value_too_heavy,
            },
            Case {
                name: "listener_panics",
                run: cache_listener_panics,
            },
        ],
        Limits::default(),
    );
}

// ----- W-TinyLFU ----------------------------------------------------------------

fn tinylfu_lru(cap: u64) -> Result<LruCache<u32, u64>, BuildError> {
    LruCache::builder()
        .max_capacity(cap)
        .policy(Policy::WTinyLfu)
        .build()
}

/// Zero is an error; 1 and `MAX_ENTRIES` work (the sketch and slab grow with
/// the entries, not the capacity); above is an error, as for LRU.
fn tinylfu_capacity_edges() {
    assert_eq!(tinylfu_lru(0).unwrap_err(), zero("max_capacity"));
    assert!(matches!(
        tinylfu_lru(MAX_ENTRIES + 1),
        Err(BuildError::TooLarge { .. })
    ));
    let mut one = tinylfu_lru(1).unwrap();
    for k in 0..100 {
        one.insert(k, 0);
        assert_eq!(one.len(), 1);
    }
    let mut max = tinylfu_lru(MAX_ENTRIES).unwrap();
    for k in 0..10_000 {
        max.insert(k, 0);
    }
    assert_eq!(max.len(), 10_000);
    assert_eq!(max.get(&9_999), Some(&0));
    for cap in [0, 1] {
        assert_eq!(
            Cache::<u32, u64>::builder()
                .max_capacity(cap)
                .policy(Policy::WTinyLfu)
                .build()
                .map(|c| c.max_capacity()),
            if cap == 0 {
                Err(zero("max_capacity"))
            } else {
                Ok(1)
            }
        );
    }
}

/// Weights 0 and `u64::MAX` at capacities 1 and `u64::MAX`: the total never
/// passes the capacity, a too-heavy entry is `Rejected`, a replacing insert
/// with a new weight re-enters (its old value is `Replaced`).
fn tinylfu_weights_edges() {
    for cap in [1, 10, u64::MAX] {
        let seen: Seen<u32> = Arc::default();
        let s2 = Arc::clone(&seen);
        let mut c = LruCache::builder()
            .max_capacity(cap)
            .policy(Policy::WTinyLfu)
            .weigher(|_k: &u32, v: &u64| *v)
            .eviction_listener(move |k, _v, cause| s2.lock().unwrap().push((k, cause)))
            .build()
            .unwrap();
        c.insert(1, 0);
        c.insert(2, u64::MAX);
        c.insert(3, cap);
        c.insert(3, cap / 2);
        c.insert(4, 1);
        for k in 5..50 {
            c.insert(k, k as u64 % 3);
            c.get(&(k / 2));
            assert!(c.weighted_size() <= cap);
        }
        let total: u64 = c.iter().map(|(_, v)| *v).sum();
        assert_eq!(total, c.weighted_size());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.contains(&(2, RemovalCause::Rejected)), cap < u64::MAX);
    }
}

/// Per-entry TTLs of zero (not stored, `Expired`) and `Duration::MAX`
/// (never expires, even with the clock at its end), TTI and a clock that
/// steps back: the same documented behaviour as under LRU.
fn tinylfu_durations_edges() {
    let clock = ManualClock::new();
    let seen: Seen<u32> = Arc::default();
    let s2 = Arc::clone(&seen);
    let mut c = LruCache::builder()
        .max_capacity(4)
        .policy(Policy::WTinyLfu)
        .time_to_idle(Duration::MAX)
        .clock(clock.clone())
        .eviction_listener(move |k, _v, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    c.insert_with_ttl(1, 1, Duration::ZERO);
    assert!(c.is_empty());
    c.insert_with_ttl(2, 2, Duration::MAX);
    c.insert_with_ttl(3, 3, SEC);
    clock.advance(Duration::MAX);
    c.purge_expired();
    assert_eq!(c.get(&2), Some(&2));
    assert_eq!(c.get(&3), None);
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, RemovalCause::Expired), (3, RemovalCause::Expired)]
    );
}

/// `set_capacity` to 0 is an error and changes nothing; shrinking evicts
/// down to the new capacity; growing back works.
fn tinylfu_set_capacity_edges() {
    let mut c = tinylfu_lru(100).unwrap();
    for k in 0..100 {
        c.insert(k, 0);
        c.get(&(k / 3));
    }
    assert_eq!(c.set_capacity(0).unwrap_err(), zero("max_capacity"));
    assert_eq!(c.len(), 100);
    c.set_capacity(1).unwrap();
    assert_eq!(c.len(), 1);
    c.set_capacity(MAX_ENTRIES).unwrap();
    for k in 0..1000 {
        c.insert(k, 0);
    }
    assert_eq!(c.len(), 1000);
    while c.pop_lru().is_some() {}
    assert!(c.is_empty());
}

#[test]
fn wtinylfu_bad_input() {
    run_isolated(
        "wtinylfu_bad_input",
        &[
            Case {
                name: "capacity_edges",
                run: tinylfu_capacity_edges,
            },
            Case {
                name: "weights_edges",
                run: tinylfu_weights_edges,
            },
            Case {
                name: "durations_edges",
                run: tinylfu_durations_edges,
            },
            Case {
                name: "set_capacity_edges",
                run: tinylfu_set_capacity_edges,
            },
        ],
        Limits::default(),
    );
}
