//! Behaviour of the concurrent cache with real threads: single flight,
//! failing and panicking loaders, listeners that re-enter, bad input,
//! read-through and write-through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use sysblocks_lru_ttl_cache::{
    BuildError, Cache, LruCache, ManualClock, RemovalCause, Store, WriteThrough,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

#[test]
fn single_flight_with_many_threads() {
    let c: Cache<u32, u32> = Cache::builder().max_capacity(100).build().unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (c, runs, start) = (c.clone(), runs.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                c.get_or_insert_with(1, || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    11
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 11);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn panicking_loader_releases_waiters_and_does_not_poison() {
    let c: Cache<u32, u32> = Cache::builder().max_capacity(100).build().unwrap();
    let entered = Arc::new(Barrier::new(2));
    let c1 = c.clone();
    let e1 = entered.clone();
    let loader = std::thread::spawn(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            c1.get_or_insert_with(5, || {
                e1.wait();
                std::thread::sleep(Duration::from_millis(30));
                panic!("loader failed");
            })
        }))
    });
    entered.wait();
    // This caller waits on the panicking flight, is released, and loads.
    assert_eq!(c.get_or_insert_with(5, || 50), 50);
    assert!(loader.join().unwrap().is_err());
    assert_eq!(c.get(&5), Some(50));
    // A failing loader returns its error and caches nothing.
    assert_eq!(
        c.try_get_or_insert_with(6, || Err::<u32, &str>("down")),
        Err("down")
    );
    assert!(!c.contains_key(&6));
    assert_eq!(c.try_get_or_insert_with(6, || Ok::<u32, &str>(60)), Ok(60));
}

#[test]
fn listener_may_call_back_into_the_cache() {
    let slot: Arc<Mutex<Option<Cache<u32, u32>>>> = Arc::default();
    let s2 = slot.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(2)
        .shards(1)
        .eviction_listener(move |k, v, cause| {
            let cache = s2.lock().unwrap().clone();
            if let Some(c) = cache {
                // Re-enter: read and even write the cache.
                let _ = c.get(&k);
                if cause == RemovalCause::Size && k < 100 {
                    c.insert(k + 100, v);
                }
            }
            seen2.lock().unwrap().push((k, cause));
        })
        .build()
        .unwrap();
    *slot.lock().unwrap() = Some(c.clone());
    c.insert(1, 1);
    c.insert(2, 2);
    c.insert(3, 3); // evicts 1; the listener inserts 101, which evicts 2 ...
    assert!(c.len() <= 2);
    assert!(seen.lock().unwrap().contains(&(1, RemovalCause::Size)));
    assert!(c.contains_key(&101) || seen.lock().unwrap().contains(&(101, RemovalCause::Size)));
    slot.lock().unwrap().take();
}

#[test]
fn bad_input_is_a_typed_error() {
    let e = |r: Result<Cache<u32, u32>, BuildError>| r.unwrap_err();
    assert_eq!(
        e(Cache::builder().max_capacity(0).build()),
        BuildError::Zero {
            setting: "max_capacity"
        }
    );
    assert_eq!(
        e(Cache::builder().max_capacity(10).shards(0).build()),
        BuildError::Zero { setting: "shards" }
    );
    assert_eq!(
        e(Cache::builder()
            .max_capacity(10)
            .time_to_live(Duration::ZERO)
            .build()),
        BuildError::Zero {
            setting: "time_to_live"
        }
    );
    assert_eq!(
        e(Cache::builder()
            .max_capacity(10)
            .time_to_idle(Duration::ZERO)
            .build()),
        BuildError::Zero {
            setting: "time_to_idle"
        }
    );
    assert!(matches!(
        e(Cache::builder().max_capacity(2).shards(3).build()),
        BuildError::Conflict {
            setting: "shards",
            ..
        }
    ));
    assert!(matches!(
        e(Cache::builder().max_capacity(10).shards(usize::MAX).build()),
        BuildError::TooLarge {
            setting: "shards",
            ..
        }
    ));
    // Default shards never exceed a small capacity.
    let c: Cache<u32, u32> = Cache::builder().max_capacity(1).build().unwrap();
    assert_eq!(c.shard_count(), 1);
}

#[test]
fn too_heavy_is_rejected_and_huge_ttl_saturates() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let clock = ManualClock::starting_at(Duration::from_secs(1));
    let c: Cache<u32, u64> = Cache::builder()
        .max_capacity(10)
        .shards(1)
        .weigher(|_, v| *v)
        .time_to_live(Duration::MAX)
        .clock(clock.clone())
        .eviction_listener(move |k, _, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    c.insert(1, 11);
    assert!(!c.contains_key(&1));
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Rejected)]);
    c.insert_with_ttl(2, 3, Duration::MAX);
    clock.advance(Duration::from_secs(1 << 40));
    assert_eq!(c.get(&2), Some(3));
    c.insert(3, 3);
    assert_eq!(c.get(&3), Some(3));
    assert_eq!(c.stats().rejected, 1);
}

#[test]
fn read_through_loader() {
    let loads = Arc::new(AtomicUsize::new(0));
    let l2 = loads.clone();
    let c: Cache<u32, String> = Cache::builder()
        .max_capacity(10)
        .loader(move |k| {
            l2.fetch_add(1, Ordering::SeqCst);
            (*k < 5).then(|| format!("v{k}"))
        })
        .build()
        .unwrap();
    assert_eq!(c.get_or_load(&1).as_deref(), Some("v1"));
    assert_eq!(c.get_or_load(&1).as_deref(), Some("v1"));
    assert_eq!(c.get_or_load(&9), None);
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    let s = c.stats();
    assert_eq!((s.hits, s.insertions), (1, 1));
}

#[derive(Default)]
struct FlakyDb {
    rows: Mutex<HashMap<u32, u32>>,
    fail: std::sync::atomic::AtomicBool,
}

impl Store<u32, u32> for FlakyDb {
    type Error = &'static str;
    fn read(&self, k: &u32) -> Result<Option<u32>, Self::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("down");
        }
        Ok(self.rows.lock().unwrap().get(k).copied())
    }
    fn write(&self, k: &u32, v: &u32) -> Result<(), Self::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("down");
        }
        self.rows.lock().unwrap().insert(*k, *v);
        Ok(())
    }
    fn delete(&self, k: &u32) -> Result<(), Self::Error> {
        if self.fail.load(Ordering::SeqCst) {
            return Err("down");
        }
        self.rows.lock().unwrap().remove(k);
        Ok(())
    }
}

#[test]
fn write_through_store_first() {
    let wt = WriteThrough::new(
        Cache::builder().max_capacity(10).build().unwrap(),
        FlakyDb::default(),
    );
    wt.put(1, 10).unwrap();
    assert_eq!(wt.store().rows.lock().unwrap().get(&1), Some(&10));
    assert_eq!(wt.cache().get(&1), Some(10));
    wt.store().fail.store(true, Ordering::SeqCst);
    assert_eq!(wt.put(1, 11), Err("down"));
    assert_eq!(
        wt.cache().get(&1),
        Some(10),
        "cache unchanged on store error"
    );
    assert_eq!(wt.delete(&1), Err("down"));
    assert_eq!(wt.cache().get(&1), Some(10));
    assert_eq!(wt.get(&2), Err("down"));
    wt.store().fail.store(false, Ordering::SeqCst);
    assert_eq!(wt.get(&2), Ok(None));
    wt.delete(&1).unwrap();
    assert_eq!(wt.cache().get(&1), None);
    assert_eq!(wt.get(&1), Ok(None));
    wt.store().rows.lock().unwrap().insert(3, 30);
    assert_eq!(wt.get(&3), Ok(Some(30)));
    assert_eq!(wt.cache().get(&3), Some(30));
}

#[test]
fn sharded_cache_holds_its_capacity() {
    let c: Cache<u64, u64> = Cache::builder()
        .max_capacity(1000)
        .shards(8)
        .build()
        .unwrap();
    for k in 0..10_000 {
        c.insert(k, k);
    }
    assert!(c.len() <= 1000);
    assert!(c.len() > 900, "shards fill evenly enough: {}", c.len());
    c.clear();
    assert!(c.is_empty());
    assert_eq!(
        c.stats().removed_explicit as usize + c.stats().evicted_size as usize,
        10_000
    );
}

/// Two entries weighing 2^63 under a capacity of `u64::MAX`: their sum
/// does not fit, so the second evicts the first. The weighted size must
/// never wrap (it once wrapped to 0 and nothing was evicted).
#[test]
fn huge_weights_never_wrap_the_weighted_size() {
    let mut lru = LruCache::builder()
        .max_capacity(u64::MAX)
        .weigher(|_k: &u32, v: &u64| *v)
        .build()
        .unwrap();
    lru.insert(1, 1 << 63);
    lru.insert(2, 1 << 63);
    assert_eq!(lru.weighted_size(), 1 << 63);
    assert_eq!(lru.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2]);
    // Replacing with a heavier value evicts the others, never wraps.
    lru.insert(3, (1 << 63) - 1);
    assert_eq!(lru.weighted_size(), u64::MAX);
    lru.insert(3, 1 << 63);
    assert_eq!(lru.weighted_size(), 1 << 63);
    assert_eq!(lru.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [3]);
    lru.insert(4, u64::MAX);
    assert_eq!(lru.weighted_size(), u64::MAX);
    assert_eq!(lru.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [4]);
    assert_eq!(lru.stats().evicted_size, 3);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let c: Cache<u32, u64> = Cache::builder()
        .max_capacity(u64::MAX)
        .shards(1)
        .weigher(|_, v| *v)
        .eviction_listener(move |k, _, cause| s2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    c.insert(1, 1 << 63);
    c.insert(2, 1 << 63);
    assert_eq!(c.weighted_size(), 1 << 63);
    assert!(!c.contains_key(&1));
    assert_eq!(c.get(&2), Some(1 << 63));
    assert_eq!(*seen.lock().unwrap(), [(1, RemovalCause::Size)]);
}

/// `LruCache` calls its listener after the change is complete: a listener
/// that panics leaves every view in agreement, and it keeps being called.
#[test]
fn panicking_listener_leaves_lru_cache_consistent() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    let mut c = LruCache::builder()
        .max_capacity(1)
        .eviction_listener(move |k: u32, _v: u32, cause| {
            c2.lock().unwrap().push((k, cause));
            if k == 1 {
                std::panic::resume_unwind(Box::new("listener failed"));
            }
        })
        .build()
        .unwrap();
    c.insert(1, 10);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.insert(2, 20)));
    assert!(r.is_err(), "the listener's panic reaches the caller");
    assert_eq!(c.iter().collect::<Vec<_>>(), [(&2, &20)]);
    assert_eq!(c.peek(&2), Some(&20));
    assert!(c.contains_key(&2));
    assert_eq!(c.get(&2), Some(&20));
    assert_eq!(c.len(), 1);
    assert_eq!(c.peek(&1), None);
    c.insert(3, 30);
    assert_eq!(c.iter().collect::<Vec<_>>(), [(&3, &30)]);
    assert_eq!(
        *calls.lock().unwrap(),
        [(1, RemovalCause::Size), (2, RemovalCause::Size)]
    );
    assert_eq!(c.get(&3), Some(&30));
}

/// An `init` that asks the cache for its own key, on the loading thread,
/// does not wait on its own load (it once never returned). Run in a child
/// process with a timeout, so that a hang fails the test.
#[test]
fn reentrant_init_does_not_wait_on_itself() {
    run_isolated(
        "reentrant_init_does_not_wait_on_itself",
        &[
            Case {
                name: "same_key",
                run: || {
                    let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
                    let inner = c.clone();
                    let v = c.get_or_insert_with(1, || {
                        // Runs its own init, unshared and not stored.
                        let v = inner.get_or_insert_with(1, || 5);
                        assert!(!inner.contains_key(&1));
                        v + 1
                    });
                    assert_eq!(v, 6);
                    assert_eq!(c.get(&1), Some(6));
                },
            },
            Case {
                name: "cycle_of_two_keys",
                run: || {
                    // One shard: with the default ten shards of one entry,
                    // keys 1 and 2 share one a tenth of the time, and the
                    // second store evicts the first.
                    let c: Cache<u32, u32> =
                        Cache::builder().max_capacity(10).shards(1).build().unwrap();
                    let inner = c.clone();
                    let v = c.get_or_insert_with(1, || {
                        let inner2 = inner.clone();
                        inner.get_or_insert_with(2, || inner2.get_or_insert_with(1, || 7) + 1)
                    });
                    assert_eq!(v, 8);
                    assert_eq!(c.get(&2), Some(8));
                    assert_eq!(c.get(&1), Some(8));
                },
            },
            Case {
                name: "fallible_and_read_through",
                run: || {
                    let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
                    let inner = c.clone();
                    let r = c.try_get_or_insert_with(1, || {
                        inner.try_get_or_insert_with(1, || Err::<u32, &str>("inner"))
                    });
                    assert_eq!(r, Err("inner"));
                    assert!(!c.contains_key(&1));
                    let slot: Arc<Mutex<Option<Cache<u32, u32>>>> = Arc::default();
                    let s2 = slot.clone();
                    let rt: Cache<u32, u32> = Cache::builder()
                        .max_capacity(10)
                        .loader(move |k| {
                            let me = s2.lock().unwrap().clone()?;
                            // A loader that reads its own key through the cache.
                            Some(me.get_or_insert_with(*k, || 3) * 2)
                        })
                        .build()
                        .unwrap();
                    *slot.lock().unwrap() = Some(rt.clone());
                    assert_eq!(rt.get_or_load(&4), Some(6));
                    assert_eq!(rt.get(&4), Some(6));
                    slot.lock().unwrap().take();
                },
            },
        ],
        Limits {
            timeout: Duration::from_secs(10),
            ..Limits::default()
        },
    );
}

/// A per-entry policy: the value says how many seconds it lives after
/// creation, updates keep the deadline, reads of an even value extend it
/// by 5 s; `u8::MAX` means `Duration::MAX`, 0 means zero.
struct ValueSeconds;

impl sysblocks_lru_ttl_cache::Expiry<u32, u8> for ValueSeconds {
    fn expire_after_create(&self, _k: &u32, v: &u8, _now: Duration) -> Option<Duration> {
        Some(if *v == u8::MAX {
            Duration::MAX
        } else {
            Duration::from_secs(u64::from(*v))
        })
    }

    fn expire_after_read(
        &self,
        _k: &u32,
        v: &u8,
        _now: Duration,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        if v % 2 == 0 {
            Some(Duration::from_secs(5))
        } else {
            remaining
        }
    }
}

#[test]
fn expiry_policy_sets_per_entry_deadlines_under_both_policies() {
    use sysblocks_lru_ttl_cache::Policy;
    for policy in [Policy::Lru, Policy::WTinyLfu] {
        let clock = ManualClock::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let c: Cache<u32, u8> = Cache::builder()
            .max_capacity(100)
            .shards(1)
            .policy(policy)
            .time_to_live(Duration::from_secs(30))
            .expire_after(ValueSeconds)
            .clock(clock.clone())
            .eviction_listener(move |k, _v, cause| l.lock().unwrap().push((k, cause)))
            .build()
            .unwrap();
        c.insert(1, 3); // odd: ends at 3 s
        c.insert(2, 4); // even: 4 s, then 5 s after each read
        c.insert(3, u8::MAX); // never, by the policy: the TTL ends it at 30 s
        c.insert(4, 0); // zero: never stored
        assert!(!c.contains_key(&4));
        clock.advance(Duration::from_secs(2));
        assert_eq!(c.get(&1), Some(3));
        assert_eq!(c.get(&2), Some(4)); // now ends at 7 s
        clock.advance(Duration::from_secs(2));
        assert_eq!(c.get(&1), None);
        assert_eq!(c.get(&2), Some(4)); // now ends at 9 s
                                        // An update keeps the policy's deadline (9 s) by default.
        c.insert(2, 6);
        clock.advance(Duration::from_secs(5));
        assert_eq!(c.get(&2), None);
        assert_eq!(c.get(&3), Some(u8::MAX));
        clock.advance(Duration::from_secs(21));
        assert_eq!(c.get(&3), None, "the TTL still applies");
        let mut seen = log.lock().unwrap().clone();
        seen.sort_unstable_by_key(|&(k, cause)| (k, cause as u8));
        assert_eq!(
            seen,
            [
                (1, RemovalCause::Expired),
                (2, RemovalCause::Expired),
                (2, RemovalCause::Replaced),
                (3, RemovalCause::Expired),
                (4, RemovalCause::Expired),
            ],
            "{policy:?}"
        );
        assert_eq!(c.stats().expirations(), 4);

        // The single-threaded cache, with the clock at its end.
        let mut l = LruCache::builder()
            .max_capacity(4)
            .policy(policy)
            .expire_after(ValueSeconds)
            .clock(clock.clone())
            .build()
            .unwrap();
        clock.set(Duration::MAX);
        l.insert(1u32, u8::MAX);
        l.insert(2, 2);
        assert_eq!(l.get(&1), Some(&u8::MAX));
        assert_eq!(
            l.get(&2),
            Some(&2),
            "a deadline past the clock's end saturates"
        );
    }
}

/// `set_capacity` shrinks by each policy's order, with a weigher and a
/// listener, and reports bad capacities without changing the cache.
#[test]
fn set_capacity_shrinks_under_both_policies() {
    use sysblocks_lru_ttl_cache::Policy;
    for policy in [Policy::Lru, Policy::WTinyLfu] {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let c: Cache<u32, u64> = Cache::builder()
            .max_capacity(400)
            .shards(4)
            .policy(policy)
            .weigher(|_k, v| *v)
            .eviction_listener(move |k, _v, cause| l.lock().unwrap().push((k, cause)))
            .build()
            .unwrap();
        for k in 0..200 {
            c.insert(k, 1 + u64::from(k % 3));
        }
        assert!(c.weighted_size() <= 400);
        let before = c.weighted_size();
        assert_eq!(
            c.set_capacity(0),
            Err(BuildError::Zero {
                setting: "max_capacity"
            })
        );
        assert!(matches!(
            c.set_capacity(3),
            Err(BuildError::Conflict { .. })
        ));
        assert_eq!((c.max_capacity(), c.weighted_size()), (400, before));
        log.lock().unwrap().clear();
        c.set_capacity(40).unwrap();
        assert_eq!(c.max_capacity(), 40);
        assert!(c.weighted_size() <= 40, "{policy:?}");
        let evicted = log.lock().unwrap().clone();
        assert!(!evicted.is_empty());
        assert!(evicted.iter().all(|e| e.1 == RemovalCause::Size));
        let left: u64 = c.iter().map(|(_, v)| v).sum();
        assert_eq!(left, c.weighted_size());
        // Growing again lets the cache fill up to the new size.
        c.set_capacity(1000).unwrap();
        for k in 1000..1400 {
            c.insert(k, 1);
        }
        assert!(c.weighted_size() > 40 && c.weighted_size() <= 1000);
        assert!(c.stats().evicted_size >= evicted.len() as u64);
    }
}

/// `iter` sees every live entry once, `retain` and `invalidate_entries_if`
/// remove what they should (as `Explicit`), across shards.
#[test]
fn iter_retain_and_invalidate_across_shards() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let c: Cache<u32, u32> = Cache::builder()
        .max_capacity(1000)
        .shards(8)
        .eviction_listener(move |k, _v, cause| l.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    for k in 0..100 {
        c.insert(k, k * 2);
    }
    let mut all: Vec<(u32, u32)> = c.iter().collect();
    all.sort_unstable();
    assert_eq!(all, (0..100).map(|k| (k, k * 2)).collect::<Vec<_>>());
    c.retain(|k, _| k % 2 == 0);
    assert_eq!(c.len(), 50);
    assert_eq!(c.invalidate_entries_if(|_, v| *v >= 100), 25);
    let mut keys: Vec<u32> = c.iter().map(|(k, _)| k).collect();
    keys.sort_unstable();
    assert_eq!(keys, (0..50).step_by(2).collect::<Vec<_>>());
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 75);
        assert!(log.iter().all(|e| e.1 == RemovalCause::Explicit));
    }
    assert_eq!(c.stats().removed_explicit, 75);
    // Another thread writing while the iteration runs: no entry twice, and
    // every entry present throughout is seen.
    let writer = {
        let c = c.clone();
        std::thread::spawn(move || {
            for k in 1000..3000 {
                c.insert(k, 0);
                c.remove(&(k - 1));
            }
        })
    };
    let seen: Vec<u32> = c.iter().map(|(k, _)| k).collect();
    writer.join().unwrap();
    let mut dedup = seen.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len());
    for k in (0..50).step_by(2) {
        assert!(seen.contains(&k));
    }
}

/// The entry API: fresh or not, single flight across threads, errors.
#[test]
fn entry_api_single_flight_and_freshness() {
    let c: Cache<u32, u32> = Cache::builder().max_capacity(100).build().unwrap();
    let e = c.entry(1).or_insert(10);
    assert!(e.is_fresh());
    assert_eq!((e.key(), e.value()), (&1, &10));
    let e = c.entry(1).or_insert_with(|| unreachable!());
    assert!(!e.is_fresh());
    assert_eq!(e.into_value(), 10);
    assert_eq!(c.entry(2).or_default().into_value(), 0);
    assert_eq!(
        c.entry(3).or_try_insert_with(|| Err::<u32, &str>("down")),
        Err("down")
    );
    assert!(!c.contains_key(&3));

    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (c, runs, start) = (c.clone(), runs.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let e = c.entry(7).or_insert_with(|| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    70
                });
                (e.is_fresh(), e.into_value())
            })
        })
        .collect();
    let results: Vec<(bool, u32)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|r| r.1 == 70));
    assert_eq!(
        results.iter().filter(|r| r.0).count(),
        1,
        "one loader's value is fresh"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// The async loaders (`--features async`), on tokio.
#[cfg(feature = "async")]
mod async_loaders {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use sysblocks_lru_ttl_cache::Cache;

    /// On a single-threaded runtime, waiters and the loader share the one
    /// thread: a waiter that blocked it would hang the test.
    #[tokio::test(flavor = "current_thread")]
    async fn waiters_park_without_blocking_the_thread() {
        let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let (c, runs) = (c.clone(), runs.clone());
                tokio::spawn(async move {
                    c.get_with(1, async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        11
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 11);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(c.get(&1), Some(11));
    }

    /// The loader's error is shared with the waiters of `try_get_with`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn try_get_with_shares_the_error() {
        let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.try_get_with(1, async move {
                    started_tx.send(()).unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<u32, String>("down".into())
                })
                .await
            })
        };
        started_rx.await.unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.try_get_with(1, async { Ok::<u32, String>(5) }).await })
            })
            .collect();
        let lead_err = leader.await.unwrap().unwrap_err();
        assert_eq!(*lead_err, "down");
        for w in waiters {
            let e = w.await.unwrap().unwrap_err();
            assert!(Arc::ptr_eq(&e, &lead_err), "the same error, shared");
        }
        assert!(!c.contains_key(&1));
        // A get_with waiter of a failing load runs its own init instead.
        assert_eq!(c.get_with(1, async { 7 }).await, 7);
    }

    /// A cancelled leader does not strand its waiters: one of them loads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancelled_leader_releases_waiters() {
        let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let leader = {
            let c = c.clone();
            tokio::spawn(async move {
                c.get_with(1, async move {
                    started_tx.send(()).unwrap();
                    std::future::pending::<u32>().await
                })
                .await
            })
        };
        started_rx.await.unwrap();
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move { c.get_with(1, async { 9 }).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        assert!(leader.await.unwrap_err().is_cancelled());
        let v = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is released")
            .unwrap();
        assert_eq!(v, 9);
        assert_eq!(c.get(&1), Some(9));
    }

    /// Blocking and async callers share one flight.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_and_async_callers_share_a_flight() {
        let c: Cache<u32, u32> = Cache::builder().max_capacity(10).build().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let blocking = {
            let (c, runs) = (c.clone(), runs.clone());
            std::thread::spawn(move || {
                c.get_or_insert_with(3, || {
                    started_tx.send(()).unwrap();
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    30
                })
            })
        };
        started_rx.await.unwrap();
        let r = runs.clone();
        let v = c
            .get_with(3, async move {
                r.fetch_add(1, Ordering::SeqCst);
                31
            })
            .await;
        assert_eq!((v, blocking.join().unwrap()), (30, 30));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
