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
//! - Maglev table build, ours vs `maglev`: M = 65537 at 100 nodes (the
//!   paper reports 1.8 ms), M = 100003 at 1000 nodes.
//!
//! Memory per node (heap bytes counted by a global allocator, ours and the
//! peers, at 100 and 1000 nodes) is printed once at start.
//!
//! Run: `cargo bench -p benches --bench consistent_hash -- --warm-up-time 1 --measurement-time 3`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use consistent_hash::{hash_key, jump_hash, HashRing, JumpHash, Maglev, MultiProbe, Rendezvous};
use criterion::{BenchmarkId, Criterion, Throughput};

// ----- counting allocator (memory report only) ------------------------------

/// Counts live heap bytes while `COUNTING` is set; otherwise forwards only.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counter is bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged; `ptr` came from `System.alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes held by what `build` returns (built and kept while counting).
fn heap_of<T>(build: impl FnOnce() -> T) -> (T, isize) {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let v = build();
    COUNTING.store(false, Ordering::SeqCst);
    (v, LIVE.load(Ordering::SeqCst))
}

// ----- inputs ----------------------------------------------------------------

const BATCH: usize = 256;
const VNODES: u32 = 100;
/// The Maglev table size for `n` nodes, the same for ours and the peer:
/// 65537 (the paper's), or the smallest prime of at least 100 x n.
fn table_for(n: u32) -> u64 {
    let mut m = 65_537u64.max(100 * u64::from(n));
    while !consistent_hash::is_prime(m) {
        m += 1;
    }
    m
}

fn keys() -> Vec<u64> {
    let mut s = 0x5eed_u64;
    (0..BATCH)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

fn our_ring(n: u32) -> HashRing<u32> {
    let mut r = HashRing::with_vnodes(VNODES).unwrap();
    for i in 0..n {
        r.add(i).unwrap();
    }
    r
}

fn peer_hashring(n: u32) -> hashring::HashRing<(u32, u32)> {
    let mut r = hashring::HashRing::new();
    r.batch_add(
        (0..n)
            .flat_map(|i| (0..VNODES).map(move |v| (i, v)))
            .collect(),
    );
    r
}

fn peer_chr(n: u32) -> consistent_hash_ring::Ring<u32> {
    consistent_hash_ring::RingBuilder::default()
        .vnodes(VNODES as usize)
        .nodes_iter(0..n)
        .build()
}

fn our_rendezvous(n: u32) -> Rendezvous<u32> {
    let mut r = Rendezvous::new();
    for i in 0..n {
        r.add(i).unwrap();
    }
    r
}

fn our_multiprobe(n: u32) -> MultiProbe<u32> {
    let mut r = MultiProbe::new();
    for i in 0..n {
        r.add(i).unwrap();
    }
    r
}

fn peer_anchor(
    n: u32,
) -> anchorhash::AnchorHash<u64, u32, std::collections::hash_map::RandomState> {
    anchorhash::Builder::default()
        .with_resources(0..n)
        .build(n as u16)
}

// ----- memory ----------------------------------------------------------------

fn memory_report() {
    for n in [100u32, 1000] {
        let per = |b: isize| b as f64 / f64::from(n);
        let (a, ring) = heap_of(|| our_ring(n));
        let (b, hr) = heap_of(|| peer_hashring(n));
        let (c, chr) = heap_of(|| peer_chr(n));
        let (d, mg) = heap_of(|| Maglev::with_table_size(0..n, table_for(n)).unwrap());
        let (e, pmg) = heap_of(|| maglev::Maglev::with_capacity(0..n, table_for(n) as usize));
        let (f, rv) = heap_of(|| our_rendezvous(n));
        let (g, hrw) = heap_of(|| hrw_hash::HrwNodes::new(0..n));
        let (h, mp) = heap_of(|| our_multiprobe(n));
        let (i, jh) = heap_of(|| JumpHash::new(0..n).unwrap());
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
    for n in [10u32, 100, 1000] {
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

        let mg = Maglev::with_table_size(0..n, table_for(n)).unwrap();
        let pmg = maglev::Maglev::with_capacity(0..n, table_for(n) as usize);
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

        let jh = JumpHash::new(0..n).unwrap();
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
        let hrw = hrw_hash::HrwNodes::new(0..n);
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
