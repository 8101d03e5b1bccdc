//! loom models of W-TinyLFU's shared read path (run with `--cfg
//! sysblocks_loom`; without it this file is empty): lookups under the
//! shard's read lock, their hits buffered (a ring of two under loom) and
//! replayed into the policy by a reader's `try_write` or by the next
//! write. The ring alone is modelled in `src/read_buffer.rs`.
#![cfg(sysblocks_loom)]

use std::collections::HashSet;

use loom::sync::Arc;
use loom::thread;
use sysblocks_lru_ttl_cache::{Cache, Policy, RemovalCause};

type Log = Arc<loom::sync::Mutex<Vec<(u8, u8, RemovalCause)>>>;

fn tinylfu(cap: u64, log: &Log) -> Cache<u8, u8> {
    let l = Arc::clone(log);
    Cache::builder()
        .max_capacity(cap)
        .shards(1)
        .policy(Policy::WTinyLfu)
        .eviction_listener(move |k, v, c| l.lock().unwrap().push((k, v, c)))
        .build()
        .unwrap()
}

/// Two readers hit and miss concurrently, enough to fill the ring and
/// race for its drain: every lookup is counted once, as a hit or a miss,
/// and a write afterwards replays what is left without losing an entry.
#[test]
fn loom_concurrent_hits_keep_exact_stats() {
    sysblocks_sync::model(|| {
        let log: Log = Arc::default();
        let c = tinylfu(2, &log);
        c.insert(1, 10);
        c.insert(2, 20);
        let c1 = c.clone();
        let t = thread::spawn(move || [c1.get(&1), c1.get(&3)]);
        let mine = [c.get(&2), c.get(&1)];
        let theirs = t.join().unwrap();
        assert_eq!(mine, [Some(20), Some(10)]);
        assert_eq!(theirs, [Some(10), None]);
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (3, 1));
        c.insert(3, 30);
        assert!(c.len() <= 2);
        let present: HashSet<u8> = [1u8, 2, 3]
            .into_iter()
            .filter(|k| c.contains_key(k))
            .collect();
        let evicted: Vec<u8> = log.lock().unwrap().iter().map(|e| e.0).collect();
        assert_eq!(present.len() + evicted.len(), 3, "{present:?} {evicted:?}");
        assert_eq!(c.stats().hits, 3);
    });
}

/// Hits race with inserts that evict, and with a removal, which moves the
/// last slot into the removed one: a buffered hit finds its entry again
/// by hash or is dropped if it has gone, nothing panics, and every key is
/// in exactly one place afterwards.
#[test]
fn loom_hits_race_with_eviction_and_removal() {
    for remove in [false, true] {
        sysblocks_sync::model(move || {
            let log: Log = Arc::default();
            let c = tinylfu(2, &log);
            c.insert(1, 10);
            c.insert(2, 20);
            let c1 = c.clone();
            let t = thread::spawn(move || [c1.get(&1), c1.get(&2)]);
            if remove {
                c.remove(&1);
            }
            c.insert(3, 30);
            let got = t.join().unwrap();
            assert!(got[0].is_none() || got[0] == Some(10));
            assert!(got[1].is_none() || got[1] == Some(20));
            let hits = got.iter().filter(|g| g.is_some()).count() as u64;
            assert_eq!(c.stats().hits, hits);
            assert_eq!(c.stats().misses, 2 - hits);
            // One more write replays whatever is still buffered.
            c.insert(4, 40);
            assert!(c.len() <= 2);
            let log = log.lock().unwrap();
            for k in 1u8..=4 {
                let gone = log
                    .iter()
                    .filter(|e| e.0 == k && e.2 != RemovalCause::Replaced)
                    .count();
                assert_eq!(
                    usize::from(c.contains_key(&k)) + gone,
                    1,
                    "key {k}: {log:?}"
                );
            }
        });
    }
}
