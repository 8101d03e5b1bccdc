//! Balance and movement at 1,000,000 keys and 100 nodes (the bounds of the
//! README's "Quality" table). The key hashes are computed once and shared
//! by every test.

use std::sync::OnceLock;

use sysblocks_consistent_hash::{
    hash_key, BoundedLoads, HashRing, JumpHash, Maglev, MultiProbe, NodeLocator, Rendezvous,
};

const KEYS: u64 = 1_000_000;
const NODES: u32 = 100;

fn keys() -> &'static [u64] {
    static KEYS_CELL: OnceLock<Vec<u64>> = OnceLock::new();
    KEYS_CELL.get_or_init(|| (0..KEYS).map(|k| hash_key(&k)).collect())
}

/// The node (by value) of every key.
fn placement<L: NodeLocator<u32> + Sync>(l: &L) -> Vec<u32> {
    let ks = keys();
    // Two threads: the machine has two cores and the test binary runs
    // several tests at once anyway.
    let mid = ks.len() / 2;
    let (a, b) = ks.split_at(mid);
    std::thread::scope(|s| {
        let h = s.spawn(|| a.iter().map(|&k| *l.locate(k).unwrap()).collect::<Vec<_>>());
        let mut second: Vec<u32> = b.iter().map(|&k| *l.locate(k).unwrap()).collect();
        let mut first = h.join().unwrap();
        first.append(&mut second);
        first
    })
}

fn peak_to_mean(place: &[u32], nodes: u32) -> f64 {
    let mut counts = vec![0u64; nodes as usize + 1];
    for &n in place {
        counts[n as usize] += 1;
    }
    let live: Vec<u64> = counts.into_iter().filter(|&c| c > 0).collect();
    let mean = place.len() as f64 / live.len() as f64;
    *live.iter().max().unwrap() as f64 / mean
}

fn ring(vnodes: u32) -> HashRing<u32> {
    let mut r = HashRing::with_vnodes(vnodes).unwrap();
    for n in 0..NODES {
        r.add(n).unwrap();
    }
    r
}

fn rendezvous() -> Rendezvous<u32> {
    let mut r = Rendezvous::new();
    for n in 0..NODES {
        r.add(n).unwrap();
    }
    r
}

fn multiprobe() -> MultiProbe<u32> {
    let mut r = MultiProbe::new();
    for n in 0..NODES {
        r.add(n).unwrap();
    }
    r
}

#[test]
fn balance_ring_100_and_1000_vnodes() {
    let p100 = peak_to_mean(&placement(&ring(100)), NODES);
    let p1000 = peak_to_mean(&placement(&ring(1000)), NODES);
    println!("ring peak-to-mean: 100 vnodes {p100:.4}, 1000 vnodes {p1000:.4}");
    assert!(p100 <= 1.35, "ring 100 vnodes: {p100}");
    assert!(p1000 <= 1.12, "ring 1000 vnodes: {p1000}");
}

#[test]
fn balance_jump_maglev_rendezvous() {
    let jump = JumpHash::new(0..NODES).unwrap();
    let maglev = Maglev::new(0..NODES).unwrap();
    let pj = peak_to_mean(&placement(&jump), NODES);
    let pm = peak_to_mean(&placement(&maglev), NODES);
    let pr = peak_to_mean(&placement(&rendezvous()), NODES);
    println!("peak-to-mean: jump {pj:.4}, maglev {pm:.4}, rendezvous {pr:.4}");
    assert!(pj <= 1.05, "jump {pj}");
    assert!(pm <= 1.05, "maglev {pm}");
    assert!(pr <= 1.05, "rendezvous {pr}");
}

/// The published claim of multi-probe consistent hashing: a peak-to-mean
/// load of `1 + eps` with `1 + 1/eps` probes, so 1.05 with 21 probes. At
/// 10,000 keys per node, key sampling alone lifts the maximum of 100 nodes
/// by about 0.025 (jump and rendezvous, perfectly balanced in expectation,
/// measure 1.02 to 1.03 here), so the check allows 1.05 + 0.03 and prints
/// the figure. (With 20M keys the hash-space figure measured 1.055 to 1.058
/// over three node sets: the claim holds to about half a percent.)
#[test]
fn balance_multiprobe_21_probes() {
    let mp = multiprobe();
    assert_eq!(mp.probes(), 21);
    let p = peak_to_mean(&placement(&mp), NODES);
    println!("multi-probe (21 probes) peak-to-mean: {p:.4}");
    assert!(p <= 1.05 + 0.03, "multi-probe {p}");
    // One probe is a ring with one point per node: far worse balance.
    let mut one = MultiProbe::with_probes(1).unwrap();
    for n in 0..NODES {
        one.add(n).unwrap();
    }
    let p1 = peak_to_mean(&placement(&one), NODES);
    println!("multi-probe (1 probe) peak-to-mean: {p1:.4}");
    assert!(p1 > 2.0 * (p - 1.0) + 1.0);
}

/// Removing node `gone` moves exactly the keys it held.
fn assert_only_its_keys_move(before: &[u32], after: &[u32], gone: u32) -> f64 {
    let mut moved = 0usize;
    for (b, a) in before.iter().zip(after) {
        if b == &gone {
            assert_ne!(a, &gone);
            moved += 1;
        } else {
            assert_eq!(a, b, "a key of another node moved");
        }
    }
    moved as f64 / before.len() as f64
}

/// Adding node `new` moves keys only to it.
fn assert_only_to_new(before: &[u32], after: &[u32], new: u32) -> f64 {
    let mut moved = 0usize;
    for (b, a) in before.iter().zip(after) {
        if a != b {
            assert_eq!(*a, new, "a key moved to an old node");
            moved += 1;
        }
    }
    moved as f64 / before.len() as f64
}

#[test]
fn ring_removal_and_addition_move_only_the_nodes_keys() {
    let r = ring(100);
    let before = placement(&r);
    let mut shares = 0.0;
    for gone in [0u32, 57] {
        let mut r2 = r.clone();
        assert!(r2.remove(&gone));
        let share = assert_only_its_keys_move(&before, &placement(&r2), gone);
        shares += share;
        println!("ring: removing node {gone} moved {share:.4}");
    }
    // Moved share equals the removed node's share; on average 1/N.
    assert!((shares / 2.0 - 1.0 / f64::from(NODES)).abs() < 0.5 / f64::from(NODES));
    let mut r3 = r.clone();
    r3.add(NODES).unwrap();
    let share = assert_only_to_new(&before, &placement(&r3), NODES);
    println!("ring: adding a node moved {share:.4}");
    assert!(share > 0.0);
}

#[test]
fn rendezvous_removal_and_addition_move_only_the_nodes_keys() {
    let r = rendezvous();
    let before = placement(&r);
    let mut r2 = r.clone();
    assert!(r2.remove(&13));
    let share = assert_only_its_keys_move(&before, &placement(&r2), 13);
    println!("rendezvous: removing a node moved {share:.4}");
    assert!((share - 0.01).abs() < 0.002);
    let mut r3 = r.clone();
    r3.add(NODES).unwrap();
    let share = assert_only_to_new(&before, &placement(&r3), NODES);
    println!("rendezvous: adding a node moved {share:.4}");
    assert!((share - 1.0 / 101.0).abs() < 0.002);
}

#[test]
fn multiprobe_removal_and_addition_move_only_the_nodes_keys() {
    let r = multiprobe();
    let before = placement(&r);
    let mut r2 = r.clone();
    assert!(r2.remove(&71));
    assert_only_its_keys_move(&before, &placement(&r2), 71);
    let mut r3 = r.clone();
    r3.add(NODES).unwrap();
    assert_only_to_new(&before, &placement(&r3), NODES);
}

#[test]
fn jump_last_bucket_removal_and_addition() {
    let j = JumpHash::new(0..NODES).unwrap();
    let before = placement(&j);
    let mut j2 = j.clone();
    assert_eq!(j2.pop(), Some(NODES - 1));
    let share = assert_only_its_keys_move(&before, &placement(&j2), NODES - 1);
    println!("jump: removing the last bucket moved {share:.4}");
    assert!((share - 0.01).abs() < 0.002);
    let mut j3 = j.clone();
    j3.push(NODES).unwrap();
    let share = assert_only_to_new(&before, &placement(&j3), NODES);
    println!("jump: adding a bucket moved {share:.4}");
    assert!((share - 1.0 / 101.0).abs() < 0.002);
}

/// Maglev: average disruption over all 100 single-node removals, measured
/// on the table (keys are uniform over its entries) and, for one removal,
/// on the keys.
#[test]
fn maglev_removal_moves_at_most_two_over_n_on_average() {
    let m = Maglev::new(0..NODES).unwrap();
    let node_of = |mg: &Maglev<u32>| -> Vec<u32> {
        mg.table().iter().map(|&i| mg.nodes()[i as usize]).collect()
    };
    let before = node_of(&m);
    let mut total = 0.0;
    let mut worst: f64 = 0.0;
    for gone in 0..NODES {
        let mut m2 = m.clone();
        assert!(m2.remove(&gone).unwrap());
        assert_eq!(m2.table_size(), m.table_size());
        let after = node_of(&m2);
        let changed = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        // Every entry of the removed node must change.
        assert!(before
            .iter()
            .zip(&after)
            .all(|(b, a)| *b != gone || *a != gone));
        let share = changed as f64 / before.len() as f64;
        total += share;
        worst = worst.max(share);
    }
    let avg = total / f64::from(NODES);
    println!(
        "maglev: average table disruption over single removals {avg:.4} (1/N = {:.4}), worst {worst:.4}",
        1.0 / f64::from(NODES)
    );
    assert!(avg <= 2.0 / f64::from(NODES), "maglev disruption {avg}");

    let keys_before = placement(&m);
    let mut m2 = m.clone();
    m2.remove(&42).unwrap();
    let keys_after = placement(&m2);
    let moved = keys_before
        .iter()
        .zip(&keys_after)
        .filter(|(b, a)| b != a)
        .count() as f64
        / KEYS as f64;
    println!("maglev: removing node 42 moved {moved:.4} of the keys");
    assert!(moved <= 2.0 / f64::from(NODES) + 0.01);
}

#[test]
fn bounded_loads_never_exceed_the_cap() {
    let r = ring(100);
    let unbounded = placement(&r);
    let peak = peak_to_mean(&unbounded, NODES);
    for c in [1.25, 1.05] {
        let mut bl = BoundedLoads::new(r.clone(), c).unwrap();
        let mut redirected = 0u64;
        for (i, &k) in keys().iter().enumerate() {
            let node = bl.assign_hash(k).unwrap();
            if bl.ring().nodes()[node] != unbounded[i] {
                redirected += 1;
            }
            let load = bl.loads()[node];
            let m = i as u64 + 1;
            // ceil(c * average) with average = m / N.
            let cap = (c * m as f64 / f64::from(NODES)).ceil() as u64;
            assert!(
                load <= cap,
                "c {c}: load {load} over cap {cap} after {m} keys"
            );
        }
        let max = *bl.loads().iter().max().unwrap();
        let cap = (c * KEYS as f64 / f64::from(NODES)).ceil() as u64;
        println!(
            "bounded loads c={c}: max load {max}, cap {cap}, unbounded peak-to-mean {peak:.4}, \
             {redirected} keys redirected"
        );
        assert!(max <= cap);
        assert_eq!(bl.total(), KEYS);
        // The bound did real work: keys were walked past full nodes.
        assert!(redirected > 0);
    }
    // With c below the ring's natural peak, the bound is what keeps the
    // maximum down.
    assert!(peak > 1.05);
}

#[test]
fn weighted_shares_follow_weights() {
    // Weights 1..=4 repeated over 40 nodes: total weight 100.
    let weight = |n: u32| n % 4 + 1;
    let total_w: f64 = (0..40).map(|n| f64::from(weight(n))).sum();
    let check = |name: &str, place: &[u32], tol: f64| {
        let mut counts = [0u64; 40];
        for &n in place {
            counts[n as usize] += 1;
        }
        let mut worst: f64 = 0.0;
        for n in 0..40u32 {
            let want = f64::from(weight(n)) / total_w;
            let got = counts[n as usize] as f64 / place.len() as f64;
            worst = worst.max((got / want - 1.0).abs());
        }
        println!("{name}: worst relative share error {worst:.4}");
        assert!(worst <= tol, "{name}: {worst}");
    };
    let mut rv = Rendezvous::new();
    let mut ring = HashRing::with_vnodes(1000).unwrap();
    for n in 0..40u32 {
        rv.add_weighted(n, weight(n)).unwrap();
        ring.add_weighted(n, weight(n)).unwrap();
    }
    let mg = Maglev::new_weighted((0..40u32).map(|n| (n, weight(n)))).unwrap();
    check("rendezvous weighted", &placement(&rv), 0.05);
    check("maglev weighted", &placement(&mg), 0.05);
    check("ring weighted (1000 vnodes)", &placement(&ring), 0.15);
}
