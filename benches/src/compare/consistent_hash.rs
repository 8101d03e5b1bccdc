//! `consistent-hash` against hashring, consistent_hash_ring, maglev,
//! anchorhash, jump-consistent-hash, jumphash and hrw-hash: lookups at 10,
//! 100 and 1000 nodes, Maglev table builds, heap bytes per node.
//!
//! The setups are `crate::workloads::consistent_hash`, the same as the
//! criterion bench's. A lookup case cycles through the 256 fixed keys; each
//! crate hashes the key itself, as its users would.

use std::hint::black_box;

use sysblocks_consistent_hash::{hash_key, jump_hash};

use crate::alloc;
use crate::harness::{measured, run_timed, time_iters, CaseResult, Contender, Mode};
use crate::report::{LineChart, Report};
use crate::workloads::consistent_hash::{
    keys, our_jump, our_maglev, our_rendezvous, our_ring, peer_anchor, peer_chr, peer_hashring,
    peer_hrw, peer_maglev, table_for, BATCH, NODES, VNODES,
};

const KRATE: &str = "consistent-hash";

/// Adds the crate's cases and its lookup-cost chart to `report`.
pub fn run(mode: Mode, report: &mut Report) {
    let ks = keys();
    let hashes: Vec<u64> = ks.iter().map(hash_key).collect();
    let key = |i: u64| &ks[(i as usize) & (BATCH - 1)];
    let hash = |i: u64| hashes[(i as usize) & (BATCH - 1)];
    let first = report.results.len();
    for n in NODES {
        let ring = our_ring(n);
        let hr = peer_hashring(n);
        let chr = peer_chr(n);
        report.results.push(run_timed(
            KRATE,
            &format!("ring lookup, {n} nodes x {VNODES} vnodes"),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |i| {
                        black_box(ring.get(black_box(key(i))));
                    })
                }),
                Contender::peer("hashring", |it| {
                    time_iters(it, |i| {
                        black_box(hr.get(black_box(key(i))));
                    })
                }),
                Contender::peer("consistent_hash_ring", |it| {
                    time_iters(it, |i| {
                        black_box(chr.try_get(black_box(key(i))));
                    })
                }),
            ],
        ));
        drop((ring, hr, chr));

        let mg = our_maglev(n);
        let pmg = peer_maglev(n);
        let ah = peer_anchor(n);
        report.results.push(run_timed(
            KRATE,
            &format!("Maglev lookup, {n} nodes, M = {}", table_for(n)),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |i| {
                        black_box(mg.get(black_box(key(i))));
                    })
                }),
                Contender::peer("maglev", |it| {
                    use maglev::ConsistentHasher;
                    time_iters(it, |i| {
                        black_box(pmg.get(black_box(key(i))));
                    })
                }),
                Contender::peer("anchorhash", |it| {
                    time_iters(it, |i| {
                        black_box(ah.get_resource(black_box(*key(i))));
                    })
                }),
            ],
        ));
        drop((mg, pmg, ah));

        report.results.push(run_timed(
            KRATE,
            &format!("jump on a u64 hash, {n} buckets"),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |i| {
                        black_box(jump_hash(black_box(hash(i)), n));
                    })
                }),
                Contender::peer("jump-consistent-hash", |it| {
                    time_iters(it, |i| {
                        black_box(jump_consistent_hash::hash(black_box(hash(i)), n as usize));
                    })
                }),
            ],
        ));
        let jh = our_jump(n);
        let pjh = jumphash::JumpHasher::new();
        report.results.push(run_timed(
            KRATE,
            &format!("jump by key, {n} nodes"),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |i| {
                        black_box(jh.get(black_box(key(i))));
                    })
                }),
                Contender::peer("jumphash", |it| {
                    time_iters(it, |i| {
                        black_box(pjh.slot(black_box(key(i)), n));
                    })
                }),
            ],
        ));
        drop(jh);

        let rv = our_rendezvous(n);
        let hrw = peer_hrw(n);
        report.results.push(run_timed(
            KRATE,
            &format!("rendezvous lookup, {n} nodes"),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |i| {
                        black_box(rv.get(black_box(key(i))));
                    })
                }),
                Contender::peer("hrw-hash", |it| {
                    time_iters(it, |i| {
                        black_box(hrw.sorted(black_box(key(i))).next());
                    })
                }),
            ],
        ));
    }
    let chart = lookup_chart(&report.results[first..]);
    report.charts.push(chart);

    let builds: &[u32] = if mode == Mode::Smoke {
        &[100]
    } else {
        &[100, 1000]
    };
    for &n in builds {
        report.results.push(run_timed(
            KRATE,
            &format!("Maglev table build, {n} nodes, M = {}", table_for(n)),
            mode,
            vec![
                Contender::ours("ours", |it| {
                    time_iters(it, |_| {
                        black_box(our_maglev(black_box(n)));
                    })
                }),
                Contender::peer("maglev", |it| {
                    time_iters(it, |_| {
                        black_box(peer_maglev(black_box(n)));
                    })
                }),
            ],
        ));
    }

    if alloc::installed() {
        memory(report);
    } else {
        report.missing.push((
            format!("{KRATE}: memory per node"),
            "the counting allocator is not this binary's global allocator".to_owned(),
        ));
    }
}

/// Heap bytes per node at 100 and 1000 nodes, one case per algorithm family
/// (Maglev against `maglev` only: `anchorhash` keeps no lookup table, so it
/// is no like-for-like peer of a Maglev table's memory).
fn memory(report: &mut Report) {
    for n in [100u32, 1000] {
        let mut case = |name: String, series: Vec<(&str, bool, Vec<f64>)>| {
            report
                .results
                .push(measured(KRATE, &name, "bytes/node", true, series));
        };
        case(
            format!("ring memory, {n} nodes x {VNODES} vnodes"),
            vec![
                ("ours", true, per_node(n, || our_ring(n))),
                ("hashring", false, per_node(n, || peer_hashring(n))),
                ("consistent_hash_ring", false, per_node(n, || peer_chr(n))),
            ],
        );
        case(
            format!("Maglev memory, {n} nodes, M = {}", table_for(n)),
            vec![
                ("ours", true, per_node(n, || our_maglev(n))),
                ("maglev", false, per_node(n, || peer_maglev(n))),
            ],
        );
        case(
            format!("rendezvous memory, {n} nodes"),
            vec![
                ("ours", true, per_node(n, || our_rendezvous(n))),
                ("hrw-hash", false, per_node(n, || peer_hrw(n))),
            ],
        );
    }
}

/// Heap bytes per node held by what `build` returns.
fn per_node<T>(n: u32, build: impl FnOnce() -> T) -> Vec<f64> {
    let (v, bytes) = alloc::heap_of(build);
    drop(v);
    vec![bytes as f64 / f64::from(n)]
}

/// One chart of lookup cost against nodes: ours and the best peer of each
/// family.
fn lookup_chart(results: &[CaseResult]) -> LineChart {
    let families = [
        ("ring", "ring lookup"),
        ("Maglev", "Maglev lookup"),
        ("jump", "jump by key"),
        ("rendezvous", "rendezvous lookup"),
    ];
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (label, prefix) in families {
        let mut ours = Vec::new();
        let mut peer = Vec::new();
        let mut peer_name = String::new();
        for (r, n) in results
            .iter()
            .filter(|r| r.name.starts_with(prefix))
            .zip(NODES)
        {
            if let Some(s) = r.ours() {
                ours.push((f64::from(n), s.median()));
            }
            if let Some(s) = r.best_peer() {
                peer.push((f64::from(n), s.median()));
                peer_name.clone_from(&s.name);
            }
        }
        series.push((format!("{label}: ours"), ours));
        series.push((format!("{label}: best peer ({peer_name})"), peer));
    }
    LineChart {
        krate: KRATE.to_owned(),
        title: "lookup cost against nodes".to_owned(),
        x_label: "nodes".to_owned(),
        y_label: "ns per lookup".to_owned(),
        log_x: true,
        series,
    }
}
