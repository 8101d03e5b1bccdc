//! `consistent-hash` against its peers, same process, same keys.
//!
//! Lookups of a batch of 256 `u64` keys at 10, 100 and 1000 nodes, by key
//! (each crate hashes the key with its own hasher, as its users would):
//!
//! - ring, 100 virtual nodes per node: ours `HashRing::get` (and `locate` on
//!   a precomputed hash) vs `hashring` (virtual nodes as `(node, i)` entries,
//!   its documented pattern) and `consistent_hash_ring` (`vnodes(100)`);
//! - Maglev, M = 65537 (100003 at 1000 nodes, keeping M >= 100 x nodes):
//!   ours vs `maglev`; `anchorhash` alongside (another
//!   O(1)-lookup balancer hash);
//! - jump: ours `jump_hash` vs `jump-consistent-hash` on the same `u64`, and
//!   `JumpHash::get` vs `jumphash` by key;
//! - rendezvous: ours vs `hrw-hash` (`sorted(&key).next()`);
//! - multi-probe (ours only, 21 probes);
//! - Maglev table build, ours vs `maglev`: M = 65537 at 100 nodes, M =
//!   100003 at 1000 nodes.
//!
//! Memory per node (heap bytes counted by a global allocator, ours and the
//! peers, at 100 and 1000 nodes) is printed once at start. The setups live
//! in `benches::workloads::consistent_hash`, shared with `compare`.
//!
//! Run: `cargo bench -p benches --bench consistent_hash -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use benches::alloc::heap_of;
use benches::workloads::consistent_hash::{
    keys, our_jump, our_maglev, our_multiprobe, our_rendezvous, our_ring, peer_anchor, peer_chr,
    peer_hashring, peer_hrw, peer_maglev, table_for, BATCH, NODES, VNODES,
};
use criterion::{BenchmarkId, Criterion, Throughput};
use sysblocks_consistent_hash::{hash_key, jump_hash, Maglev};

#[global_allocator]
static ALLOC: benches::alloc::Counting = benches::alloc::Counting;

// ----- memory ----------------------------------------------------------------

fn memory_report() {
    for n in [100u32, 1000] {
        let per = |b: isize| b as f64 / f64::from(n);
        let (a, ring) = heap_of(|| our_ring(n));
        let (b, hr) = heap_of(|| peer_hashring(n));
        let (c, chr) = heap_of(|| peer_chr(n));
        let (d, mg) = heap_of(|| our_maglev(n));
        let (e, pmg) = heap_of(|| peer_maglev(n));
        let (f, rv) = heap_of(|| our_rendezvous(n));
        let (g, hrw) = heap_of(|| peer_hrw(n));
        let (h, mp) = heap_of(|| our_multiprobe(n));
        let (i, jh) = heap_of(|| our_jump(n));
        let (j, ah) = heap_of(|| peer_anchor(n));
        println!(
            "memory per node at {n} nodes (bytes): ring/100 vnodes ours {:.0} hashring {:.0} \
             consistent_hash_ring {:.0}; maglev M={} ours {:.0} maglev {:.0}; rendezvous ours {:.0} \
             hrw-hash {:.0}; multi-probe ours {:.0}; jump ours {:.0}; anchorhash {:.0}",
            per(ring),
            per(hr),
            per(chr),
            table_for(n),
            per(mg),
            per(pmg),
            per(rv),
            per(hrw),
            per(mp),
            per(jh),
            per(ah)
        );
        drop((a, b, c, d, e, f, g, h, i, j));
    }
}

// ----- lookups -----------------------------------------------------------------

fn lookups(c: &mut Criterion) {
    memory_report();
    let ks = keys();
    let hashes: Vec<u64> = ks.iter().map(hash_key).collect();
    for n in NODES {
        let ring = our_ring(n);
        let hr = peer_hashring(n);
        let chr = peer_chr(n);
        let mut g = c.benchmark_group(format!("ring_lookup/{n}_nodes_x{VNODES}"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("ours_get", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*ring.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("ours_locate_prehashed", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for &h in &hashes {
                    acc = acc.wrapping_add(u64::from(*ring.locate(black_box(h)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("hashring", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(hr.get(black_box(k)).unwrap().0));
                }
                acc
            })
        });
        g.bench_function("consistent_hash_ring", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*chr.try_get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.finish();

        let mg = our_maglev(n);
        let pmg = peer_maglev(n);
        let ah = peer_anchor(n);
        let mut g = c.benchmark_group(format!("maglev_lookup/{n}_nodes"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("ours_get", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*mg.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("maglev", |b| {
            use maglev::ConsistentHasher;
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*pmg.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("anchorhash", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*ah.get_resource(black_box(*k)).unwrap()));
                }
                acc
            })
        });
        g.finish();

        let jh = our_jump(n);
        let pjh = jumphash::JumpHasher::new();
        let mut g = c.benchmark_group(format!("jump/{n}_nodes"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("ours_jump_hash_u64", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for &h in &hashes {
                    acc = acc.wrapping_add(u64::from(jump_hash(black_box(h), n)));
                }
                acc
            })
        });
        g.bench_function("jump_consistent_hash_u64", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for &h in &hashes {
                    acc = acc.wrapping_add(u64::from(jump_consistent_hash::hash(
                        black_box(h),
                        n as usize,
                    )));
                }
                acc
            })
        });
        g.bench_function("ours_get_by_key", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*jh.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("jumphash_by_key", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(pjh.slot(black_box(k), n)));
                }
                acc
            })
        });
        g.finish();

        let rv = our_rendezvous(n);
        let hrw = peer_hrw(n);
        let mp = our_multiprobe(n);
        let mut g = c.benchmark_group(format!("rendezvous/{n}_nodes"));
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("ours_get", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*rv.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.bench_function("hrw_hash", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*hrw.sorted(black_box(k)).next().unwrap()));
                }
                acc
            })
        });
        g.bench_function("ours_multiprobe_get", |b| {
            b.iter(|| {
                let mut acc = 0u64;
                for k in &ks {
                    acc = acc.wrapping_add(u64::from(*mp.get(black_box(k)).unwrap()));
                }
                acc
            })
        });
        g.finish();
    }
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build");
    g.sample_size(20);
    for n in [100u32, 1000] {
        g.bench_with_input(BenchmarkId::new("ours", n), &n, |b, &n| {
            b.iter(|| Maglev::with_table_size(0..black_box(n), table_for(n)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("maglev", n), &n, |b, &n| {
            b.iter(|| maglev::Maglev::with_capacity(0..black_box(n), table_for(n) as usize))
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    lookups(&mut c);
    maglev_build(&mut c);
    c.final_summary();
}
