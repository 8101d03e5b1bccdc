//! Bad input, swept at the edges of every setting and argument: 0, 1 and
//! the maximum of each integer, NaN, infinite and negative factors, empty
//! node sets, huge weights, table sizes and probe counts. Each case runs in
//! a child process under an address-space limit and a timeout
//! (`sysblocks_testkit::run_isolated`), so a panic, an abort on a runaway
//! allocation or a hang fails it; each ends in a typed error or in the
//! behaviour the docs state, and asserts which.

use sysblocks_consistent_hash::{
    hash_key, jump_hash, stable_hash, xxh64, BoundedLoads, BuildError, HashRing, JumpHash, Maglev,
    MultiProbe, NodeLocator, Rendezvous, DEFAULT_VNODES, MAX_POINTS, MAX_PROBES, MAX_TABLE_SIZE,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

fn too_large(setting: &'static str, max: u64) -> BuildError {
    BuildError::TooLarge { setting, max }
}

fn zero(setting: &'static str) -> BuildError {
    BuildError::Zero { setting }
}

/// Keys spread over the whole hash range, the ends included.
fn keys() -> impl Iterator<Item = u64> {
    [0, 1, u64::MAX - 1, u64::MAX]
        .into_iter()
        .chain((0..200u64).map(|k| hash_key(&k)))
}

/// The largest prime at most `n` (trial division; `n` is small here).
fn prime_at_most(mut n: u64) -> u64 {
    let is_prime = |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
    while !is_prime(n) {
        n -= 1;
    }
    n
}

#[test]
fn ring() {
    run_isolated(
        "ring",
        &[
            Case {
                name: "vnodes_0",
                run: || assert_eq!(HashRing::<u32>::with_vnodes(0).unwrap_err(), zero("vnodes")),
            },
            Case {
                name: "vnodes_1",
                run: || {
                    let mut r = HashRing::with_vnodes(1).unwrap();
                    r.add(7u32).unwrap();
                    assert_eq!(r.points(), 1);
                    assert!(keys().all(|k| r.locate(k) == Some(&7)));
                },
            },
            Case {
                // Defect 17's first form: one vnode, weight u32::MAX, was
                // accepted (4.3 billion points) and aborted on ~103 GB.
                name: "vnodes_1_weight_max",
                run: || {
                    let mut r = HashRing::with_vnodes(1).unwrap();
                    let err = r.add_weighted(1u32, u32::MAX).unwrap_err();
                    assert_eq!(err, too_large("points", MAX_POINTS));
                    assert_eq!((r.points(), r.nodes().len()), (0, 0));
                },
            },
            Case {
                // Defect 17's second form: 26,843,545 x 160 points is just
                // under u32::MAX, which the old bound allowed.
                name: "default_vnodes_weight_26843545",
                run: || {
                    let mut r = HashRing::new();
                    let err = r.add_weighted(1u32, 26_843_545).unwrap_err();
                    assert_eq!(err, too_large("points", MAX_POINTS));
                },
            },
            Case {
                name: "default_vnodes_weight_26843546",
                run: || {
                    let err = HashRing::new().add_weighted(1u32, 26_843_546).unwrap_err();
                    assert_eq!(err, too_large("points", MAX_POINTS));
                },
            },
            Case {
                name: "default_vnodes_weight_max",
                run: || {
                    let err = HashRing::new().add_weighted(1u32, u32::MAX).unwrap_err();
                    assert_eq!(err, too_large("points", MAX_POINTS));
                },
            },
            Case {
                name: "vnodes_max",
                run: || {
                    let err = HashRing::<u32>::with_vnodes(u32::MAX).unwrap_err();
                    assert_eq!(err, too_large("vnodes", MAX_POINTS));
                },
            },
            Case {
                name: "vnodes_at_the_maximum_then_one_more_node",
                run: || {
                    // 2^24 points in one node is allowed; a second node of
                    // any weight is not, and leaves the ring as it was.
                    let mut r = HashRing::with_vnodes(MAX_POINTS as u32).unwrap();
                    r.add(1u32).unwrap();
                    assert_eq!(r.points() as u64, MAX_POINTS);
                    assert_eq!(r.add(2), Err(too_large("points", MAX_POINTS)));
                    assert_eq!(r.points() as u64, MAX_POINTS);
                    assert_eq!(r.nodes(), &[1]);
                    assert!(keys().all(|k| r.locate(k) == Some(&1)));
                },
            },
            Case {
                name: "points_are_summed_over_nodes",
                run: || {
                    let mut r = HashRing::with_vnodes(1).unwrap();
                    r.add_weighted(1u32, 1).unwrap();
                    // Alone it would fit; with the first node's point it
                    // is one past the maximum.
                    let err = r.add_weighted(2, MAX_POINTS as u32).unwrap_err();
                    assert_eq!(err, too_large("points", MAX_POINTS));
                    assert_eq!(r.points(), 1);
                    assert_eq!(r.nodes(), &[1]);
                },
            },
            Case {
                name: "weight_0",
                run: || {
                    let mut r = HashRing::new();
                    assert_eq!(r.add_weighted(1u32, 0), Err(zero("weight")));
                    assert!(r.nodes().is_empty());
                },
            },
            Case {
                name: "weight_1",
                run: || {
                    let mut r = HashRing::new();
                    r.add_weighted(1u32, 1).unwrap();
                    assert_eq!(r.points(), DEFAULT_VNODES as usize);
                    assert_eq!(r.weight_at(0), Some(1));
                    assert_eq!(r.weight_at(1), None);
                    assert_eq!(r.weight_at(usize::MAX), None);
                },
            },
            Case {
                name: "empty",
                run: || {
                    let r = HashRing::<u32>::new();
                    assert!(keys().all(|k| r.locate(k).is_none()));
                    assert_eq!(r.locate_index(0), None);
                    assert!(r.replicas_hash(5, usize::MAX).is_empty());
                    assert_eq!(r.locate_bounded(5, |_| true), None);
                    assert_eq!(r.total_weight(), 0);
                    assert!(r.is_empty());
                },
            },
            Case {
                name: "replicas_more_than_nodes",
                run: || {
                    let mut r = HashRing::new();
                    for n in 0..5u32 {
                        r.add(n).unwrap();
                    }
                    for k in keys() {
                        let mut all: Vec<u32> = r
                            .replicas_hash(k, usize::MAX)
                            .into_iter()
                            .copied()
                            .collect();
                        assert_eq!(all[0], *r.locate(k).unwrap());
                        all.sort_unstable();
                        assert_eq!(all, vec![0, 1, 2, 3, 4]);
                        assert!(r.replicas_hash(k, 0).is_empty());
                    }
                },
            },
            Case {
                name: "bounded_walk_with_no_room_anywhere",
                run: || {
                    let mut r = HashRing::new();
                    r.add(1u32).unwrap();
                    r.add(2).unwrap();
                    let mut asked = Vec::new();
                    assert_eq!(
                        r.locate_bounded(9, |i| {
                            asked.push(i);
                            false
                        }),
                        None
                    );
                    asked.sort_unstable();
                    assert_eq!(asked, vec![0, 1], "each node is asked once");
                },
            },
            Case {
                name: "remove_absent_and_twice",
                run: || {
                    let mut r = HashRing::new();
                    assert!(!r.remove(&1u32));
                    r.add(1).unwrap();
                    assert!(r.remove(&1));
                    assert!(!r.remove(&1));
                    assert_eq!(r.points(), 0);
                },
            },
            Case {
                name: "duplicate",
                run: || {
                    let mut r = HashRing::new();
                    r.add(1u32).unwrap();
                    assert_eq!(r.add_weighted(1, 5), Err(BuildError::DuplicateNode));
                    assert_eq!(r.points(), DEFAULT_VNODES as usize);
                },
            },
        ],
        Limits::default(),
    );
}

fn bounded(c: f64) -> Result<BoundedLoads<u32>, BuildError> {
    let mut r = HashRing::new();
    for n in 0..4u32 {
        r.add(n).unwrap();
    }
    BoundedLoads::new(r, c)
}

fn bad_factor(c: f64) {
    match bounded(c) {
        Err(BuildError::LoadFactor { c: got }) => {
            assert!(got.to_bits() == c.to_bits(), "{got} reported for {c}");
        }
        other => panic!("{c}: {other:?}"),
    }
}

#[test]
fn bounded_loads() {
    run_isolated(
        "bounded_loads",
        &[
            Case {
                name: "factor_nan",
                run: || bad_factor(f64::NAN),
            },
            Case {
                name: "factor_infinity",
                run: || bad_factor(f64::INFINITY),
            },
            Case {
                name: "factor_negative_infinity",
                run: || bad_factor(f64::NEG_INFINITY),
            },
            Case {
                name: "factor_negative",
                run: || bad_factor(-1.25),
            },
            Case {
                name: "factor_zero_and_negative_zero",
                run: || {
                    bad_factor(0.0);
                    bad_factor(-0.0);
                },
            },
            Case {
                name: "factor_just_below_1",
                run: || {
                    bad_factor(1.0 - f64::EPSILON);
                    bad_factor(f64::MIN_POSITIVE);
                },
            },
            Case {
                name: "factor_1",
                run: || {
                    // c = 1: no node ever holds more than ceil(average).
                    let mut bl = bounded(1.0).unwrap();
                    for (m, k) in keys().enumerate() {
                        bl.assign_hash(k).unwrap();
                        let cap = (m as u64 + 1).div_ceil(4);
                        assert!(bl.loads().iter().all(|&l| l <= cap));
                    }
                },
            },
            Case {
                name: "factor_max",
                run: || {
                    // So large that no cap is reached: every key stays on
                    // its ring owner, and caps saturate.
                    let mut bl = bounded(f64::MAX).unwrap();
                    for k in keys() {
                        let owner = bl.ring().locate_index(k);
                        assert_eq!(bl.assign_hash(k), owner);
                    }
                    assert_eq!(bl.cap(0, u64::MAX), u64::MAX);
                },
            },
            Case {
                name: "empty_ring",
                run: || {
                    let mut bl = BoundedLoads::new(HashRing::<u32>::new(), 1.25).unwrap();
                    assert_eq!(bl.assign_hash(1), None);
                    assert_eq!(bl.assign(&"k"), None);
                    assert!(!bl.release(0));
                    assert!(!bl.release(usize::MAX));
                    assert_eq!(bl.total(), 0);
                },
            },
            Case {
                name: "release_more_than_placed",
                run: || {
                    let mut bl = bounded(1.25).unwrap();
                    let i = bl.assign_hash(3).unwrap();
                    assert!(bl.release(i));
                    assert!(!bl.release(i));
                    assert!(!bl.release(usize::MAX));
                    assert_eq!(bl.total(), 0);
                },
            },
            Case {
                name: "cap_out_of_range_panics_as_documented",
                run: || {
                    let bl = bounded(1.25).unwrap();
                    assert_eq!(bl.cap(0, 0), 0);
                    let r = std::panic::catch_unwind(|| bl.cap(4, 1));
                    assert!(r.is_err(), "index 4 of 4 nodes");
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn maglev() {
    run_isolated(
        "maglev",
        &[
            Case {
                name: "table_size_0",
                run: || {
                    let err = Maglev::with_table_size(["a"], 0).unwrap_err();
                    assert_eq!(err, BuildError::NotPrime { size: 0 });
                },
            },
            Case {
                name: "table_size_1",
                run: || {
                    let err = Maglev::with_table_size(["a"], 1).unwrap_err();
                    assert_eq!(err, BuildError::NotPrime { size: 1 });
                },
            },
            Case {
                name: "table_size_2",
                run: || {
                    let err = Maglev::with_table_size(["a"], 2).unwrap_err();
                    assert_eq!(err, BuildError::TableTooSmall { size: 2, min: 100 });
                },
            },
            Case {
                name: "table_size_not_prime",
                run: || {
                    let err = Maglev::with_table_size(["a"], 65_535).unwrap_err();
                    assert_eq!(err, BuildError::NotPrime { size: 65_535 });
                },
            },
            Case {
                // Defect 19: the size was tested for primality before its
                // bound, so u64::MAX was called "not prime" and the largest
                // 64-bit prime took seconds of trial division.
                name: "table_size_u64_max_is_too_large_not_unprime",
                run: || {
                    let err = Maglev::with_table_size(["a"], u64::MAX).unwrap_err();
                    assert_eq!(err, too_large("table size", MAX_TABLE_SIZE));
                },
            },
            Case {
                name: "table_size_largest_u64_prime",
                run: || {
                    let err =
                        Maglev::with_table_size(["a"], 18_446_744_073_709_551_557).unwrap_err();
                    assert_eq!(err, too_large("table size", MAX_TABLE_SIZE));
                },
            },
            Case {
                // Accepted before, and aborted on a 17 GB table.
                name: "table_size_largest_u32_prime",
                run: || {
                    let err = Maglev::with_table_size(["a"], 4_294_967_291).unwrap_err();
                    assert_eq!(err, too_large("table size", MAX_TABLE_SIZE));
                },
            },
            Case {
                name: "table_size_at_the_maximum",
                run: || {
                    let m = prime_at_most(MAX_TABLE_SIZE);
                    let mg = Maglev::with_table_size(["a", "b"], m).unwrap();
                    assert_eq!(mg.table().len() as u64, m);
                    assert!(mg.table().iter().all(|&i| i < 2));
                    let err = Maglev::with_table_size(["a"], MAX_TABLE_SIZE + 43).unwrap_err();
                    assert_eq!(err, too_large("table size", MAX_TABLE_SIZE));
                },
            },
            Case {
                name: "too_many_nodes_for_the_default_size",
                run: || {
                    let n = MAX_TABLE_SIZE / 100 + 1;
                    let err = Maglev::new(0..n).unwrap_err();
                    assert_eq!(err, too_large("table size", MAX_TABLE_SIZE));
                },
            },
            Case {
                name: "empty",
                run: || {
                    let m = Maglev::<u32>::new([]).unwrap();
                    assert!(keys().all(|k| m.locate(k).is_none()));
                    let m = Maglev::<u32>::with_table_size([], 101).unwrap();
                    assert!(m.is_empty() && m.get("k").is_none());
                    let err = Maglev::<u32>::with_table_size([], 97).unwrap_err();
                    assert_eq!(err, BuildError::TableTooSmall { size: 97, min: 100 });
                },
            },
            Case {
                name: "weight_0",
                run: || {
                    let err = Maglev::new_weighted([(1u32, 1), (2, 0)]).unwrap_err();
                    assert_eq!(err, zero("weight"));
                    let mut m = Maglev::new([1u32]).unwrap();
                    assert_eq!(m.add_weighted(2, 0), Err(zero("weight")));
                    assert_eq!(m.nodes(), &[1]);
                },
            },
            Case {
                name: "weight_max_beside_weight_1",
                run: || {
                    // The light node takes its one turn in the first round,
                    // the heavy one every turn after: exactly one entry.
                    let m = Maglev::new_weighted([(1u32, u32::MAX), (2, 1)]).unwrap();
                    let light = m.nodes().iter().position(|&n| n == 2).unwrap();
                    let count = m.table().iter().filter(|&&i| i as usize == light).count();
                    assert_eq!(count, 1);
                    assert_eq!(m.weight_at(light), Some(1));
                },
            },
            Case {
                name: "all_weights_max",
                run: || {
                    let m = Maglev::new_weighted((0..3u32).map(|n| (n, u32::MAX))).unwrap();
                    let mut counts = [0u64; 3];
                    for &i in m.table() {
                        counts[i as usize] += 1;
                    }
                    // Equal weights: within one entry of even.
                    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
                },
            },
            Case {
                name: "remove_absent_and_last",
                run: || {
                    let mut m = Maglev::new([1u32]).unwrap();
                    assert_eq!(m.remove(&2), Ok(false));
                    assert_eq!(m.remove(&1), Ok(true));
                    assert_eq!(m.remove(&1), Ok(false));
                    assert!(keys().all(|k| m.locate(k).is_none()));
                    m.add(3).unwrap();
                    assert!(keys().all(|k| m.locate(k) == Some(&3)));
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn multi_probe() {
    run_isolated(
        "multi_probe",
        &[
            Case {
                name: "probes_0",
                run: || {
                    assert_eq!(
                        MultiProbe::<u32>::with_probes(0).unwrap_err(),
                        zero("probes")
                    )
                },
            },
            Case {
                name: "probes_1",
                run: || {
                    let mut mp = MultiProbe::with_probes(1).unwrap();
                    mp.add(1u32).unwrap();
                    mp.add(2).unwrap();
                    assert!(keys().all(|k| mp.locate(k).is_some()));
                },
            },
            Case {
                // Defect 19: accepted, after which one lookup took a minute.
                name: "probes_max",
                run: || {
                    let err = MultiProbe::<u32>::with_probes(u32::MAX).unwrap_err();
                    assert_eq!(err, too_large("probes", u64::from(MAX_PROBES)));
                },
            },
            Case {
                name: "probes_at_the_maximum",
                run: || {
                    let mut mp = MultiProbe::with_probes(MAX_PROBES).unwrap();
                    assert_eq!(mp.probes(), MAX_PROBES);
                    for n in 0..10u32 {
                        mp.add(n).unwrap();
                    }
                    assert!(keys().all(|k| mp.locate(k).is_some()));
                    let err = MultiProbe::<u32>::with_probes(MAX_PROBES + 1).unwrap_err();
                    assert_eq!(err, too_large("probes", u64::from(MAX_PROBES)));
                },
            },
            Case {
                name: "empty_and_removals",
                run: || {
                    let mut mp = MultiProbe::<u32>::new();
                    assert!(keys().all(|k| mp.locate(k).is_none()));
                    assert!(!mp.remove(&1));
                    mp.add(1).unwrap();
                    assert_eq!(mp.add(1), Err(BuildError::DuplicateNode));
                    assert!(mp.remove(&1));
                    assert!(keys().all(|k| mp.locate(k).is_none()));
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn jump_and_rendezvous() {
    run_isolated(
        "jump_and_rendezvous",
        &[
            Case {
                name: "jump_buckets_0_1_max",
                run: || {
                    for k in keys() {
                        // Documented: no bucket to return, so 0.
                        assert_eq!(jump_hash(k, 0), 0);
                        assert_eq!(jump_hash(k, 1), 0);
                        assert!(jump_hash(k, u32::MAX) < u32::MAX);
                    }
                },
            },
            Case {
                name: "jump_empty_and_removals",
                run: || {
                    let mut j = JumpHash::<u32>::new([]).unwrap();
                    assert!(keys().all(|k| j.locate(k).is_none()));
                    assert_eq!(j.pop(), None);
                    assert_eq!(j.remove(&1), Ok(false));
                    j.push(1).unwrap();
                    j.push(2).unwrap();
                    assert_eq!(j.push(1), Err(BuildError::DuplicateNode));
                    assert_eq!(j.remove(&1), Err(BuildError::NotLastBucket));
                    assert_eq!(j.nodes(), &[1, 2]);
                },
            },
            Case {
                name: "rendezvous_weight_0",
                run: || {
                    let mut r = Rendezvous::new();
                    assert_eq!(r.add_weighted(1u32, 0), Err(zero("weight")));
                    assert!(r.is_empty());
                },
            },
            Case {
                name: "rendezvous_weight_max_beside_weight_1",
                run: || {
                    let mut r = Rendezvous::new();
                    r.add_weighted(1u32, u32::MAX).unwrap();
                    r.add_weighted(2, 1).unwrap();
                    // Share weight/total: the light node wins about one key
                    // in four billion.
                    let light = keys().filter(|&k| r.locate(k) == Some(&2)).count();
                    assert_eq!(light, 0);
                    for k in keys() {
                        let top = r.top_hash(k, usize::MAX);
                        assert_eq!(top.len(), 2);
                        assert_eq!(top[0], r.locate(k).unwrap());
                    }
                },
            },
            Case {
                name: "rendezvous_all_weights_max_and_empty",
                run: || {
                    let mut r = Rendezvous::new();
                    assert!(keys().all(|k| r.locate(k).is_none()));
                    assert!(r.top_hash(1, usize::MAX).is_empty());
                    for n in 0..3u32 {
                        r.add_weighted(n, u32::MAX).unwrap();
                    }
                    assert!(keys().all(|k| r.locate(k).is_some()));
                    assert!(r.top_hash(1, 0).is_empty());
                    assert!(r.remove(&0) && !r.remove(&0));
                },
            },
            Case {
                name: "hashes_of_empty_input",
                run: || {
                    // XXH64 of no bytes, seed 0 (the reference's value).
                    assert_eq!(stable_hash(b""), 0xEF46_DB37_51D8_E999);
                    assert_eq!(hash_key(""), stable_hash(&[0xff]));
                    assert_eq!(xxh64(b"", u64::MAX), xxh64(&[], u64::MAX));
                    let empty: &[u8] = &[];
                    assert_eq!(hash_key(empty), stable_hash(&0u64.to_le_bytes()));
                },
            },
        ],
        Limits::default(),
    );
}
