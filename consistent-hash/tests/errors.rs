//! Bad input: typed errors, never panics; empty sets return `None`.

use sysblocks_consistent_hash::{
    hash_key, BoundedLoads, BuildError, HashRing, JumpHash, Maglev, MultiProbe, NodeLocator,
    Rendezvous,
};

#[test]
fn empty_sets_return_none() {
    let h = hash_key("k");
    assert_eq!(HashRing::<u32>::new().locate(h), None);
    assert!(HashRing::<u32>::new().replicas("k", 3).is_empty());
    assert_eq!(JumpHash::<u32>::new([]).unwrap().get("k"), None);
    assert_eq!(Rendezvous::<u32>::new().get("k"), None);
    assert!(Rendezvous::<u32>::new().top("k", 2).is_empty());
    assert_eq!(Maglev::<u32>::new([]).unwrap().get("k"), None);
    assert_eq!(MultiProbe::<u32>::new().get("k"), None);
    let mut bl = BoundedLoads::new(HashRing::<u32>::new(), 1.5).unwrap();
    assert_eq!(bl.assign("k"), None);
    // Removing the last node empties the set again.
    let mut r = HashRing::new();
    r.add(1u32).unwrap();
    assert!(r.remove(&1));
    assert_eq!(r.locate(h), None);
    let mut m = Maglev::new([1u32]).unwrap();
    assert!(m.remove(&1).unwrap());
    assert_eq!(m.locate(h), None);
    assert!(m.is_empty());
}

#[test]
fn zero_weights_and_settings() {
    let zero = |s| BuildError::Zero { setting: s };
    assert_eq!(HashRing::<u32>::with_vnodes(0).unwrap_err(), zero("vnodes"));
    assert_eq!(HashRing::new().add_weighted(1u32, 0), Err(zero("weight")));
    assert_eq!(Rendezvous::new().add_weighted(1u32, 0), Err(zero("weight")));
    assert_eq!(
        Maglev::new_weighted([(1u32, 0)]).unwrap_err(),
        zero("weight")
    );
    assert_eq!(
        MultiProbe::<u32>::with_probes(0).unwrap_err(),
        zero("probes")
    );
}

#[test]
fn duplicates() {
    let d = BuildError::DuplicateNode;
    let mut r = HashRing::new();
    r.add("a").unwrap();
    assert_eq!(r.add_weighted("a", 3), Err(d.clone()));
    assert_eq!(JumpHash::new(["a", "a"]).unwrap_err(), d);
    let mut rv = Rendezvous::new();
    rv.add("a").unwrap();
    assert_eq!(rv.add("a"), Err(d.clone()));
    assert_eq!(Maglev::new(["a", "b", "a"]).unwrap_err(), d);
    let mut mg = Maglev::new(["a"]).unwrap();
    assert_eq!(mg.add("a"), Err(d.clone()));
    let mut mp = MultiProbe::new();
    mp.add("a").unwrap();
    assert_eq!(mp.add("a"), Err(d));
}

#[test]
fn maglev_table_sizes() {
    assert_eq!(
        Maglev::with_table_size(["a"], 65_536).unwrap_err(),
        BuildError::NotPrime { size: 65_536 }
    );
    assert_eq!(
        Maglev::with_table_size(["a"], 1).unwrap_err(),
        BuildError::NotPrime { size: 1 }
    );
    assert_eq!(
        Maglev::with_table_size(["a", "b"], 197).unwrap_err(),
        BuildError::TableTooSmall {
            size: 197,
            min: 200
        }
    );
    let mut m = Maglev::with_table_size(["a", "b"], 211).unwrap();
    assert_eq!(m.table_size(), 211);
    assert_eq!(
        m.add("c"),
        Err(BuildError::TableTooSmall {
            size: 211,
            min: 300
        })
    );
    assert_eq!(m.nodes(), &["a", "b"]);
    // The default grows past 65537 for large node sets, and stays prime.
    let big = Maglev::new(0..1000u32).unwrap();
    assert!(big.table_size() >= 100_000);
    assert!(is_prime(big.table_size()));
}

#[test]
fn load_factor_below_one_or_not_finite() {
    for c in [0.99, 0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = BoundedLoads::new(HashRing::<u32>::new(), c).unwrap_err();
        assert!(matches!(err, BuildError::LoadFactor { .. }), "{c}");
        assert!(!err.to_string().is_empty());
    }
    assert!(BoundedLoads::new(HashRing::<u32>::new(), 1.0).is_ok());
}

#[test]
fn jump_removes_only_the_last_bucket() {
    let mut j = JumpHash::new(["a", "b", "c"]).unwrap();
    assert_eq!(j.remove(&"a"), Err(BuildError::NotLastBucket));
    assert_eq!(j.remove(&"z"), Ok(false));
    assert_eq!(j.remove(&"c"), Ok(true));
    assert_eq!(j.nodes(), &["a", "b"]);
}

#[test]
fn errors_display() {
    let all = [
        BuildError::Zero { setting: "weight" },
        BuildError::DuplicateNode,
        BuildError::NotPrime { size: 4 },
        BuildError::TableTooSmall { size: 7, min: 100 },
        BuildError::LoadFactor { c: 0.5 },
        BuildError::TooLarge {
            setting: "points",
            max: 1 << 24,
        },
        BuildError::NotLastBucket,
    ];
    for e in all {
        let s = e.to_string();
        assert!(!s.is_empty());
        let _: &dyn std::error::Error = &e;
    }
    assert_eq!(
        BuildError::Zero { setting: "weight" }.to_string(),
        "weight must be greater than zero"
    );
}

/// Trial division, independent of the crate's own check.
fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}
