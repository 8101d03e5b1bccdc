//! loom models of the concurrent cache (run with `--cfg sysblocks_loom`;
//! without it this file is empty).
#![cfg(sysblocks_loom)]

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use loom::sync::atomic::AtomicU8;
use loom::sync::atomic::Ordering::SeqCst;
use loom::sync::Arc;
use loom::thread;
use sysblocks_lru_ttl_cache::{Cache, RemovalCause};

type Log = Arc<loom::sync::Mutex<Vec<(u8, u8, RemovalCause)>>>;

fn logged(cap: u64, log: &Log) -> Cache<u8, u8> {
    let l = Arc::clone(log);
    Cache::builder()
        .max_capacity(cap)
        .shards(1)
        .eviction_listener(move |k, v, c| l.lock().unwrap().push((k, v, c)))
        .build()
        .unwrap()
}

/// Concurrent insert/get/remove on a tiny cache: `len` and
/// `weighted_size` agree with what is present, nothing is lost (every
/// inserted key is present, removed, or reported evicted) and nothing is
/// resurrected (a key reported as evicted by size is not present unless
/// inserted again).
#[test]
fn loom_concurrent_ops_stay_consistent() {
    for cap in [1u64, 2] {
        sysblocks_sync::model(move || {
            let log: Log = Arc::default();
            let c = logged(cap, &log);
            let c1 = c.clone();
            let t = thread::spawn(move || {
                c1.insert(1, 10);
                c1.get(&2)
            });
            c.insert(2, 20);
            let removed = c.remove(&1);
            let got2 = t.join().unwrap();
            assert!(got2.is_none() || got2 == Some(20));
            let present: HashSet<u8> = [1u8, 2].into_iter().filter(|k| c.contains_key(k)).collect();
            assert_eq!(c.len(), present.len());
            assert_eq!(c.weighted_size(), present.len() as u64);
            assert!(c.len() as u64 <= cap);
            let log = log.lock().unwrap();
            for k in [1u8, 2] {
                let evicted = log
                    .iter()
                    .filter(|e| e.0 == k && e.2 == RemovalCause::Size)
                    .count();
                let explicit = usize::from(k == 1 && removed.is_some());
                // Each key was inserted once: it is in exactly one place.
                assert_eq!(
                    usize::from(present.contains(&k)) + evicted + explicit,
                    1,
                    "key {k}"
                );
            }
            if let Some(v) = removed {
                assert_eq!(v, 10);
            }
        });
    }
}

/// Two concurrent misses on one key run the loader once; both get its value.
#[test]
fn loom_single_flight_runs_one_loader() {
    sysblocks_sync::model(|| {
        let c: Cache<u8, u8> = Cache::builder().max_capacity(2).shards(1).build().unwrap();
        let runs = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (c1, r1) = (c.clone(), Arc::clone(&runs));
        let t = thread::spawn(move || {
            c1.get_or_insert_with(7, || {
                r1.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                70
            })
        });
        let r2 = Arc::clone(&runs);
        let mine = c.get_or_insert_with(7, || {
            r2.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
            70
        });
        assert_eq!(mine, 70);
        assert_eq!(t.join().unwrap(), 70);
        assert_eq!(runs.load(loom::sync::atomic::Ordering::SeqCst), 1);
    });
}

/// A failing loader releases the waiter, which then loads itself.
#[test]
fn loom_failed_loader_releases_waiters() {
    sysblocks_sync::model(|| {
        let c: Cache<u8, u8> = Cache::builder().max_capacity(2).shards(1).build().unwrap();
        let c1 = c.clone();
        let t = thread::spawn(move || c1.try_get_or_insert_with(7, || Err::<u8, ()>(())));
        let mine = c.try_get_or_insert_with(7, || Ok::<u8, ()>(5));
        assert_eq!(mine, Ok(5));
        // The failing caller either got its error or found the value.
        let theirs = t.join().unwrap();
        assert!(theirs == Err(()) || theirs == Ok(5));
        assert_eq!(c.get(&7), Some(5));
    });
}

/// The listener runs after the shard lock is released: it calls back into
/// the same shard, which would deadlock (and loom would report it) if it
/// ran under the lock.
#[test]
fn loom_listener_runs_outside_the_shard_lock() {
    sysblocks_sync::model(|| {
        let slot: Arc<loom::sync::Mutex<Option<Cache<u8, u8>>>> = Arc::default();
        let s2 = Arc::clone(&slot);
        let calls = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let calls2 = Arc::clone(&calls);
        let c: Cache<u8, u8> = Cache::builder()
            .max_capacity(1)
            .shards(1)
            .eviction_listener(move |k, _v, _cause| {
                let cache = s2.lock().unwrap().clone();
                if let Some(cache) = cache {
                    // Re-enters the shard lock.
                    let _ = cache.contains_key(&k);
                    calls2.fetch_add(1, loom::sync::atomic::Ordering::SeqCst);
                }
            })
            .build()
            .unwrap();
        *slot.lock().unwrap() = Some(c.clone());
        let c1 = c.clone();
        let t = thread::spawn(move || c1.insert(1, 1));
        c.insert(2, 2);
        t.join().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(calls.load(loom::sync::atomic::Ordering::SeqCst), 1);
        // Break the cycle cache -> listener -> slot -> cache.
        slot.lock().unwrap().take();
    });
}

/// A write racing with a load in flight for its key: once the write (a
/// remove or an insert) has returned, the loaded value, which may predate
/// it, is never seen: not stored, and not handed to a call that starts
/// after the write (it loads again, or finds the written value).
#[test]
fn loom_invalidation_hides_the_stale_load() {
    for insert in [false, true] {
        sysblocks_sync::model(move || {
            let c: Cache<u8, u8> = Cache::builder().max_capacity(2).shards(1).build().unwrap();
            // The source of truth the loaders read; it is 1 until the write.
            let db = Arc::new(AtomicU8::new(1));
            let (c1, db1) = (c.clone(), Arc::clone(&db));
            let t = thread::spawn(move || c1.get_or_insert_with(7, || db1.load(SeqCst)));
            db.store(2, SeqCst);
            if insert {
                c.insert(7, 2);
            } else {
                c.remove(&7);
            }
            let db2 = Arc::clone(&db);
            assert_eq!(c.get_or_insert_with(7, move || db2.load(SeqCst)), 2);
            // The racing caller may see either value: its call overlapped
            // the write.
            let theirs = t.join().unwrap();
            assert!(theirs == 1 || theirs == 2);
            assert_eq!(c.get(&7), Some(2));
        });
    }
}

/// A loader that panics while another thread waits on its flight: the
/// waiter is released and loads itself; nobody deadlocks, and the
/// panicking caller sees its panic (or, if it came second, the value).
#[test]
fn loom_panicking_loader_releases_the_waiter() {
    sysblocks_sync::model(|| {
        let c: Cache<u8, u8> = Cache::builder().max_capacity(2).shards(1).build().unwrap();
        let c1 = c.clone();
        let t = thread::spawn(move || {
            // `resume_unwind` skips the panic hook: no message per interleaving.
            let load = || -> u8 { std::panic::resume_unwind(Box::new("loader failed")) };
            std::panic::catch_unwind(AssertUnwindSafe(|| c1.get_or_insert_with(7, load)))
        });
        assert_eq!(c.get_or_insert_with(7, || 5), 5);
        match t.join().unwrap() {
            Ok(v) => assert_eq!(v, 5),
            Err(payload) => assert_eq!(payload.downcast_ref::<&str>(), Some(&"loader failed")),
        }
        assert_eq!(c.get(&7), Some(5));
    });
}
