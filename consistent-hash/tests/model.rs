//! Property tests against plain reference models, with random node sets and
//! weights.

use proptest::prelude::*;

use sysblocks_consistent_hash::{
    fmix64, hash_key, jump_hash, pair_hash, vnode_point, BoundedLoads, HashRing, JumpHash, Maglev,
    MultiProbe, NodeLocator, Rendezvous,
};

/// The weighted rendezvous score as the README and `Rendezvous` state it:
/// `-weight / ln(u)` with `u = ((pair_hash >> 11) + 0.5) / 2^53`.
fn reference_score(pair_hash: u64, weight: u32) -> f64 {
    let u = ((pair_hash >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / u.ln()
}

/// Multi-probe's probe `i` (0-based) as the README states it:
/// `fmix64(h + (i + 1) * 0x9E3779B97F4A7C15)`, wrapping.
fn reference_probe(key_hash: u64, i: u32) -> u64 {
    fmix64(key_hash.wrapping_add(u64::from(i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// A ring rebuilt from scratch and searched linearly.
fn reference_ring(nodes: &[(u16, u32)], vnodes: u32) -> Vec<(u64, u64, u16)> {
    let mut pts = Vec::new();
    for &(n, w) in nodes {
        let nh = hash_key(&n);
        for i in 0..vnodes * w {
            pts.push((vnode_point(nh, i), nh, n));
        }
    }
    pts.sort_unstable();
    pts
}

fn reference_ring_walk(pts: &[(u64, u64, u16)], hash: u64) -> Vec<u16> {
    let start = pts.iter().position(|p| p.0 >= hash).unwrap_or(0);
    let mut out = Vec::new();
    for k in 0..pts.len() {
        let n = pts[(start + k) % pts.len()].2;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn node_set() -> impl Strategy<Value = Vec<(u16, u32)>> {
    prop::collection::btree_map(any::<u16>(), 1u32..5, 1..24)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ring_matches_reference_and_replicas_are_distinct(
        nodes in node_set(),
        vnodes in 1u32..40,
        keys in prop::collection::vec(any::<u64>(), 1..200),
        n in 0usize..30,
        rotate in 0usize..24,
    ) {
        let mut ring = HashRing::with_vnodes(vnodes).unwrap();
        let mut order = nodes.clone();
        order.rotate_left(rotate % nodes.len());
        for &(node, w) in &order {
            ring.add_weighted(node, w).unwrap();
        }
        prop_assert_eq!(ring.points(), nodes.iter().map(|&(_, w)| (w * vnodes) as usize).sum::<usize>());
        let pts = reference_ring(&nodes, vnodes);
        for &k in &keys {
            let walk = reference_ring_walk(&pts, k);
            prop_assert_eq!(ring.locate(k), Some(&walk[0]));
            let reps: Vec<u16> = ring.replicas_hash(k, n).into_iter().copied().collect();
            prop_assert_eq!(reps.len(), n.min(nodes.len()));
            prop_assert_eq!(&reps[..], &walk[..reps.len()]);
        }
    }

    #[test]
    fn ring_remove_and_add_move_only_that_nodes_keys(
        nodes in node_set(),
        keys in prop::collection::vec(any::<u64>(), 1..300),
        pick in any::<prop::sample::Index>(),
        extra in any::<u16>(),
    ) {
        let mut ring = HashRing::with_vnodes(20).unwrap();
        for &(node, w) in &nodes {
            ring.add_weighted(node, w).unwrap();
        }
        let before: Vec<u16> = keys.iter().map(|&k| *ring.locate(k).unwrap()).collect();
        let gone = nodes[pick.index(nodes.len())].0;
        let mut smaller = ring.clone();
        prop_assert!(smaller.remove(&gone));
        prop_assert!(!smaller.remove(&gone));
        for (i, &k) in keys.iter().enumerate() {
            match smaller.locate(k) {
                None => prop_assert_eq!(nodes.len(), 1),
                Some(&a) => {
                    if before[i] == gone { prop_assert_ne!(a, gone) } else { prop_assert_eq!(a, before[i]) }
                }
            }
        }
        if !nodes.iter().any(|&(n, _)| n == extra) {
            let mut bigger = ring.clone();
            bigger.add(extra).unwrap();
            for (i, &k) in keys.iter().enumerate() {
                let a = *bigger.locate(k).unwrap();
                prop_assert!(a == before[i] || a == extra);
            }
        }
    }

    #[test]
    fn bounded_loads_respect_the_cap(
        nodes in node_set(),
        keys in prop::collection::vec(any::<u64>(), 1..400),
        c in 1.0f64..2.0,
    ) {
        let mut ring = HashRing::with_vnodes(10).unwrap();
        for &(node, w) in &nodes {
            ring.add_weighted(node, w).unwrap();
        }
        let total_w: u64 = nodes.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut bl = BoundedLoads::new(ring, c).unwrap();
        for (m, &k) in keys.iter().enumerate() {
            let i = bl.assign_hash(k).unwrap();
            let w = bl.ring().weight_at(i).unwrap();
            let cap = (c * (m as f64 + 1.0) * f64::from(w) / total_w as f64).ceil() as u64;
            prop_assert!(bl.loads()[i] <= cap);
            prop_assert_eq!(bl.cap(i, m as u64 + 1), cap);
        }
        prop_assert_eq!(bl.loads().iter().sum::<u64>(), keys.len() as u64);
    }

    #[test]
    fn rendezvous_matches_reference(
        nodes in node_set(),
        keys in prop::collection::vec(any::<u64>(), 1..200),
        n in 0usize..30,
    ) {
        let mut r = Rendezvous::new();
        for &(node, w) in &nodes {
            r.add_weighted(node, w).unwrap();
        }
        let uniform = nodes.iter().all(|&(_, w)| w == nodes[0].1);
        for &k in &keys {
            // Reference: score every node, sort best first.
            let mut scored: Vec<(f64, u64, u16)> = nodes.iter().map(|&(node, w)| {
                let h = pair_hash(k, hash_key(&node));
                (if uniform { 0.0 } else { reference_score(h, w) }, h, node)
            }).collect();
            scored.sort_by(|a, b| b.partial_cmp(a).unwrap());
            prop_assert_eq!(r.locate(k), Some(&scored[0].2));
            let top: Vec<u16> = r.top_hash(k, n).into_iter().copied().collect();
            let want: Vec<u16> = scored.iter().take(n).map(|s| s.2).collect();
            prop_assert_eq!(top, want);
        }
    }

    #[test]
    fn multiprobe_matches_reference(
        nodes in node_set(),
        keys in prop::collection::vec(any::<u64>(), 1..200),
        probes in 1u32..25,
    ) {
        let mut mp = MultiProbe::with_probes(probes).unwrap();
        for &(node, _) in &nodes {
            mp.add(node).unwrap();
        }
        for &k in &keys {
            let mut best = (u64::MAX, u32::MAX, 0u16);
            for i in 0..probes {
                let p = reference_probe(k, i);
                for &(node, _) in &nodes {
                    let d = hash_key(&node).wrapping_sub(p);
                    if (d, i) < (best.0, best.1) {
                        best = (d, i, node);
                    }
                }
            }
            prop_assert_eq!(mp.locate(k), Some(&best.2));
        }
    }

    #[test]
    fn jump_wrapper_matches_peer(
        nodes in node_set(),
        keys in prop::collection::vec(any::<u64>(), 1..200),
    ) {
        let j = JumpHash::new(nodes.iter().map(|&(n, _)| n)).unwrap();
        for &k in &keys {
            let b = jump_consistent_hash::hash(k, nodes.len()) as usize;
            prop_assert_eq!(j.locate(k), Some(&nodes[b].0));
            prop_assert_eq!(jump_hash(k, nodes.len() as u32) as usize, b);
        }
    }

    #[test]
    fn maglev_is_even_and_order_independent(
        nodes in node_set(),
        rotate in 0usize..24,
        keys in prop::collection::vec(any::<u64>(), 1..100),
    ) {
        let m = 5_003; // prime, >= 100 x 24
        let ids: Vec<u16> = nodes.iter().map(|&(n, _)| n).collect();
        let a = Maglev::with_table_size(ids.clone(), m).unwrap();
        let mut rot = ids.clone();
        rot.rotate_left(rotate % ids.len());
        let b = Maglev::with_table_size(rot, m).unwrap();
        for &k in &keys {
            prop_assert_eq!(a.locate(k), b.locate(k));
        }
        let mut counts = vec![0u64; ids.len()];
        for &e in a.table() {
            counts[e as usize] += 1;
        }
        let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        prop_assert!(hi - lo <= 1, "counts {:?}", counts);
        // Weighted: entries follow weights to within one turn per node.
        let w = Maglev::with_table_size_weighted(nodes.clone(), m).unwrap();
        let mut wc = vec![0u64; nodes.len()];
        for &e in w.table() {
            wc[e as usize] += 1;
        }
        let total_w: u64 = nodes.iter().map(|&(_, w)| u64::from(w)).sum();
        for (i, &(_, wt)) in nodes.iter().enumerate() {
            let want = m as f64 * f64::from(wt) / total_w as f64;
            prop_assert!((wc[i] as f64 - want).abs() <= 1.0 + want * 0.01, "{} vs {}", wc[i], want);
        }
    }
}
