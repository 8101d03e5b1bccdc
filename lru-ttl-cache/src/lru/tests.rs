//! Unit tests of [`LruCache`]: order, growth, weights.

use super::*;
use crate::ManualClock;

fn keys(c: &LruCache<u32, u32>) -> Vec<u32> {
    c.iter().map(|(k, _)| *k).collect()
}

#[test]
fn lru_order_and_eviction() {
    let mut c = LruCache::new(3).unwrap();
    for k in 0..3 {
        assert_eq!(c.insert(k, k * 10), None);
    }
    assert_eq!(keys(&c), [2, 1, 0]);
    assert_eq!(c.get(&0), Some(&0));
    assert_eq!(keys(&c), [0, 2, 1]);
    c.insert(3, 30);
    assert_eq!(keys(&c), [3, 0, 2]);
    assert!(!c.contains_key(&1));
    assert_eq!(c.insert(2, 21), Some(20));
    assert_eq!(keys(&c), [2, 3, 0]);
    assert_eq!(c.peek(&0), Some(&0));
    assert_eq!(keys(&c), [2, 3, 0]);
    assert_eq!(c.remove(&3), Some(30));
    assert_eq!(keys(&c), [2, 0]);
    assert_eq!(c.pop_lru(), Some((0, 0)));
    assert_eq!(keys(&c), [2]);
    *c.get_mut(&2).unwrap() += 1;
    assert_eq!(c.peek(&2), Some(&22));
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.evicted_size, s.replaced), (2, 0, 1, 1));
}

/// More entries than the preallocated table holds: the slab and
/// table grow several times, and the LRU order, weights and deadlines
/// must survive, as must the log's compactions.
#[test]
fn table_growth_keeps_order_weights_and_deadlines() {
    let clock = ManualClock::new();
    let mut c = LruCache::builder()
        .max_capacity(1 << 40)
        .weigher(|k: &u32, _v: &u32| u64::from(k % 3) + 1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let n = 300_000u32;
    let mut last_use = std::collections::HashMap::new();
    let mut t = 0u64;
    for k in 0..n {
        // Every seventh key expires after 1 s, the others never.
        if k % 7 == 0 {
            c.insert_with_ttl(k, k, Duration::from_secs(1));
        } else {
            c.insert(k, k);
        }
        last_use.insert(k, t);
        t += 1;
        // Re-use an older key now and then, so LRU order is not insertion order.
        if k % 5 == 0 && k > 0 {
            let old = (k * 7919) % k;
            assert_eq!(c.get(&old), Some(&old));
            last_use.insert(old, t);
            t += 1;
        }
    }
    assert_eq!(c.len(), n as usize);
    let weight: u64 = (0..n).map(|k| u64::from(k % 3) + 1).sum();
    assert_eq!(c.weighted_size(), weight);
    let mut want: Vec<u32> = (0..n).collect();
    want.sort_by_key(|k| std::cmp::Reverse(last_use[k]));
    assert_eq!(keys(&c), want);
    clock.advance(Duration::from_secs(1));
    c.purge_expired();
    want.retain(|k| k % 7 != 0);
    assert_eq!(keys(&c), want);
    let weight: u64 = want.iter().map(|k| u64::from(k % 3) + 1).sum();
    assert_eq!(c.weighted_size(), weight);
    assert_eq!(c.pop_lru().map(|(k, _)| k), want.last().copied());
}

#[test]
fn weights_and_rejection() {
    let rejected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let r2 = rejected.clone();
    let mut c = LruCache::builder()
        .max_capacity(10)
        .weigher(|_k: &u32, v: &u64| *v)
        .eviction_listener(move |k, _v, cause| r2.lock().unwrap().push((k, cause)))
        .build()
        .unwrap();
    c.insert(1, 4);
    c.insert(2, 4);
    c.insert(3, 11);
    assert_eq!(c.weighted_size(), 8);
    c.insert(4, 4);
    assert_eq!(c.weighted_size(), 8);
    assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [4, 2]);
    c.insert(2, 10);
    assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2]);
    assert_eq!(
        *rejected.lock().unwrap(),
        [
            (3, RemovalCause::Rejected),
            (1, RemovalCause::Size),
            (4, RemovalCause::Size)
        ]
    );
    c.set_capacity(5).unwrap();
    assert!(c.is_empty());
}
