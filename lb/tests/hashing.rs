//! Consistent hashing: same decisions as the `consistent-hash` crate's
//! tables, minimal movement on removal and ejection, bounded loads.

use sysblocks_consistent_hash::{HashRing, Maglev, NodeLocator};
use sysblocks_lb::{BackendId, Balancer, BuildError, ConsistentHashing, Context, HashAlgorithm};

fn build(s: ConsistentHashing, weights: &[u32]) -> Balancer<u64, ConsistentHashing> {
    let mut b = Balancer::builder(s);
    for (i, &w) in weights.iter().enumerate() {
        b = b.backend(i as u64, w);
    }
    b.build().unwrap()
}

fn route(b: &Balancer<u64, ConsistentHashing>, key: u64) -> u64 {
    *b.pick(&Context::with_key(key)).unwrap()
}

#[test]
fn ring_decisions_equal_the_crate_ring() {
    let weights = [1, 2, 1, 3, 1];
    let b = build(ConsistentHashing::ring(), &weights);
    let mut ring = HashRing::new();
    for (i, &w) in weights.iter().enumerate() {
        ring.add_weighted(i as u64, w).unwrap();
    }
    for key in 0..20_000u64 {
        assert_eq!(route(&b, key), *ring.get(&key).unwrap(), "key {key}");
    }
}

#[test]
fn maglev_decisions_equal_the_crate_table() {
    let b = build(ConsistentHashing::maglev(), &[1; 7]);
    let m = Maglev::new(0..7u64).unwrap();
    for key in 0..20_000u64 {
        assert_eq!(Some(&route(&b, key)), m.get(&key), "key {key}");
    }
    assert_eq!(m.len(), 7);
}

#[test]
fn removal_and_ejection_move_only_that_backends_keys() {
    for s in [ConsistentHashing::ring, ConsistentHashing::maglev] {
        let b = build(s(), &[1; 10]);
        let before: Vec<u64> = (0..20_000).map(|k| route(&b, k)).collect();
        assert!(b.remove(BackendId(4)));
        let after: Vec<u64> = (0..20_000).map(|k| route(&b, k)).collect();
        let mut moved_others = 0;
        for (x, y) in before.iter().zip(&after) {
            assert_ne!(*y, 4);
            if *x != 4 && x != y {
                moved_others += 1;
            }
        }
        // The ring moves none of the other keys; Maglev a few.
        assert!(
            moved_others <= 20_000 / 50,
            "{moved_others} other keys moved"
        );
    }
}

#[test]
fn same_key_same_backend_and_no_key_rotates() {
    let b = build(ConsistentHashing::default(), &[1; 4]);
    let first = route(&b, 99);
    for _ in 0..100 {
        assert_eq!(route(&b, 99), first);
    }
    let seq: Vec<u64> = (0..8)
        .map(|_| *b.pick(&Context::default()).unwrap())
        .collect();
    assert_eq!(seq, vec![0, 1, 2, 3, 0, 1, 2, 3]);
}

#[test]
fn bounded_loads_cap_in_flight() {
    for alg in [HashAlgorithm::Ring { vnodes: 40 }, HashAlgorithm::Maglev] {
        let c = 1.25;
        let b = build(
            ConsistentHashing::with_algorithm(alg).bounded_load(c),
            &[1; 8],
        );
        // All requests share one hot key: without the bound every one would
        // land on one backend.
        let mut held = Vec::new();
        for m in 1..=400u64 {
            held.push(b.pick(&Context::with_key(7)).unwrap());
            let cap = (c * m as f64 / 8.0).ceil() as u64;
            let max = b.stats().iter().map(|s| s.in_flight).max().unwrap();
            assert!(
                max <= cap,
                "{alg:?}: {max} in flight with cap {cap} after {m}"
            );
        }
        let unbounded = build(ConsistentHashing::with_algorithm(alg), &[1; 8]);
        let held2: Vec<_> = (0..50)
            .map(|_| unbounded.pick(&Context::with_key(7)).unwrap())
            .collect();
        assert_eq!(
            unbounded.stats().iter().map(|s| s.in_flight).max(),
            Some(50)
        );
        drop(held2);
    }
}

#[test]
fn bad_settings_are_reported() {
    let bad = |s: ConsistentHashing| Balancer::<u8, _>::builder(s).build().err();
    assert!(matches!(
        bad(ConsistentHashing::ring().bounded_load(0.5)),
        Some(BuildError::OutOfRange { .. })
    ));
    assert!(bad(ConsistentHashing::ring().bounded_load(f64::NAN)).is_some());
    assert!(matches!(
        bad(ConsistentHashing::with_algorithm(HashAlgorithm::Ring {
            vnodes: 0
        })),
        Some(BuildError::Zero { .. })
    ));
}
