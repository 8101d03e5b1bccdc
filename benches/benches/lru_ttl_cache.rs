//! `lru-ttl-cache` against its peers, same process, same keys:
//!
//! - (a) `get` only on a full cache of 100,000 entries, keys Zipf(0.99) over
//!   1,000,000 (so some gets miss); (b) 90% `get` (a miss inserts) and 10%
//!   `insert`; each on 1 and 2 threads, `u64` keys and values. Peers:
//!   `quick_cache::sync::Cache`, `moka::sync::Cache` (TinyLFU default and
//!   `EvictionPolicy::lru()`), `Mutex<lru::LruCache>`, `mini_moka::sync::Cache`.
//! - `LRU_TTL_CACHE_MEMORY=1`: bytes per entry for 1,000,000 `u64 -> u64`
//!   entries, counted by a global allocator, ours and each peer.
//! - `LRU_TTL_CACHE_HIT_RATIOS=1`: hit-ratio curves on the ARC OLTP trace at
//!   five capacities, ours and each peer (`=all` adds P12, which is large).
//!
//! - `LRU_TTL_CACHE_ONLY=ours,quick_cache`: only these contenders.
//!
//! Run: `cargo bench -p benches --bench lru_ttl_cache -- --warm-up-time 1 --measurement-time 3`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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
        // SAFETY: forwarded with the caller's (valid, non-zero-size) layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ----- the contenders -------------------------------------------------------

const CAPACITY: u64 = 100_000;
const UNIVERSE: usize = 1_000_000;
const SAMPLES: usize = 1 << 20;

/// The operations every contender offers, as a `u64 -> u64` cache.
trait Contender: Sync {
    fn get(&self, k: u64) -> bool;
    fn insert(&self, k: u64);
    /// Lets asynchronous maintenance finish (moka).
    fn settle(&self) {}
}

struct Ours(lru_ttl_cache::Cache<u64, u64>);
impl Contender for Ours {
    #[inline]
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    #[inline]
    fn insert(&self, k: u64) {
        self.0.insert(k, k);
    }
}

struct Quick(quick_cache::sync::Cache<u64, u64>);
impl Contender for Quick {
    #[inline]
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    #[inline]
    fn insert(&self, k: u64) {
        self.0.insert(k, k);
    }
}

struct Moka(moka::sync::Cache<u64, u64>);
impl Contender for Moka {
    #[inline]
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    #[inline]
    fn insert(&self, k: u64) {
        self.0.insert(k, k);
    }
    fn settle(&self) {
        self.0.run_pending_tasks();
    }
}

struct MiniMoka(mini_moka::sync::Cache<u64, u64>);
impl Contender for MiniMoka {
    #[inline]
    fn get(&self, k: u64) -> bool {
        self.0.get(&k).is_some()
    }
    #[inline]
    fn insert(&self, k: u64) {
        self.0.insert(k, k);
    }
    fn settle(&self) {
        mini_moka::sync::ConcurrentCacheExt::sync(&self.0);
    }
}

struct MutexLru(Mutex<lru::LruCache<u64, u64>>);
impl Contender for MutexLru {
    #[inline]
    fn get(&self, k: u64) -> bool {
        self.0.lock().expect("lock").get(&k).is_some()
    }
    #[inline]
    fn insert(&self, k: u64) {
        self.0.lock().expect("lock").put(k, k);
    }
}

fn ours(cap: u64) -> Ours {
    Ours(
        lru_ttl_cache::Cache::builder()
            .max_capacity(cap)
            .build()
            .expect("valid"),
    )
}
fn quick(cap: u64) -> Quick {
    Quick(quick_cache::sync::Cache::new(cap as usize))
}
fn moka_default(cap: u64) -> Moka {
    Moka(moka::sync::Cache::builder().max_capacity(cap).build())
}
fn moka_lru(cap: u64) -> Moka {
    Moka(
        moka::sync::Cache::builder()
            .max_capacity(cap)
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .build(),
    )
}
fn mini_moka(cap: u64) -> MiniMoka {
    MiniMoka(mini_moka::sync::Cache::builder().max_capacity(cap).build())
}
fn mutex_lru(cap: u64) -> MutexLru {
    MutexLru(Mutex::new(lru::LruCache::new(
        std::num::NonZeroUsize::new(cap as usize).expect("non-zero"),
    )))
}

// ----- workload -------------------------------------------------------------

/// Key of popularity rank `r` (0 = most popular), scattered over `u64`.
fn key(rank: usize) -> u64 {
    (rank as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `SAMPLES` keys drawn Zipf(0.99) over `UNIVERSE` ranks (inverse CDF).
fn zipf_keys() -> Vec<u64> {
    let mut cdf = Vec::with_capacity(UNIVERSE);
    let mut sum = 0.0f64;
    for r in 1..=UNIVERSE {
        sum += 1.0 / (r as f64).powf(0.99);
        cdf.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    (0..SAMPLES)
        .map(|_| {
            let u = rng.gen::<f64>() * sum;
            key(cdf.partition_point(|&c| c < u).min(UNIVERSE - 1))
        })
        .collect()
}

/// Fills to capacity with the most popular keys (as a warmed cache holds).
fn fill<C: Contender>(c: &C) {
    for r in 0..CAPACITY as usize {
        c.insert(key(r));
    }
    c.settle();
}

#[derive(Clone, Copy)]
enum Mix {
    GetOnly,
    /// 90% get (miss: insert), 10% insert.
    GetInsert,
}

#[inline]
fn run_ops<C: Contender>(c: &C, keys: &[u64], start: usize, n: u64, mix: Mix) -> u64 {
    let mask = keys.len() - 1;
    let mut hits = 0u64;
    for i in 0..n as usize {
        let j = (start + i) & mask;
        let k = keys[j];
        match mix {
            Mix::GetOnly => hits += u64::from(c.get(k)),
            // Every tenth position inserts; the others get (a miss inserts).
            Mix::GetInsert => match j % 10 {
                0 => c.insert(k),
                _ if c.get(k) => hits += 1,
                _ => c.insert(k),
            },
        }
    }
    hits
}

/// Wall time for `iters` operations split over `threads` threads.
fn timed<C: Contender>(
    c: &C,
    keys: &[u64],
    iters: u64,
    threads: usize,
    mix: Mix,
    pos: &mut usize,
) -> Duration {
    let start = *pos;
    *pos = pos.wrapping_add(iters as usize);
    if threads == 1 {
        let t = Instant::now();
        black_box(run_ops(c, keys, start, iters, mix));
        return t.elapsed();
    }
    let per = iters / threads as u64 + 1;
    std::thread::scope(|s| {
        let t = Instant::now();
        let hs: Vec<_> = (0..threads)
            .map(|i| {
                let off = start + i * (keys.len() / threads);
                s.spawn(move || black_box(run_ops(c, keys, off, per, mix)))
            })
            .collect();
        for h in hs {
            h.join().expect("bench thread");
        }
        t.elapsed()
    })
}

fn bench_one<C: Contender>(c: &mut Criterion, keys: &[u64], name: &str, make: fn(u64) -> C) {
    // `LRU_TTL_CACHE_ONLY=ours,quick_cache` skips the others' (slow) setup.
    if let Ok(only) = std::env::var("LRU_TTL_CACHE_ONLY") {
        if !only.split(',').any(|o| o == name) {
            return;
        }
    }
    for (mix, mix_name) in [(Mix::GetOnly, "get"), (Mix::GetInsert, "get90_insert10")] {
        let cache = make(CAPACITY);
        fill(&cache);
        let mut g = c.benchmark_group(format!("lru_ttl_cache/{mix_name}"));
        g.throughput(Throughput::Elements(1));
        for threads in [1usize, 2] {
            let mut pos = 0usize;
            g.bench_function(BenchmarkId::new(name, format!("{threads}thread")), |b| {
                b.iter_custom(|iters| timed(&cache, keys, iters, threads, mix, &mut pos));
            });
        }
        g.finish();
    }
}

fn throughput(c: &mut Criterion) {
    let keys = zipf_keys();
    bench_one(c, &keys, "ours", ours);
    bench_one(c, &keys, "quick_cache", quick);
    bench_one(c, &keys, "moka_tinylfu", moka_default);
    bench_one(c, &keys, "moka_lru", moka_lru);
    bench_one(c, &keys, "mutex_lru", mutex_lru);
    bench_one(c, &keys, "mini_moka", mini_moka);
}

// ----- memory ---------------------------------------------------------------

fn bytes_per_entry<C: Contender>(name: &str, make: fn(u64) -> C) {
    const N: u64 = 1_000_000;
    LIVE.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let c = make(N);
    for k in 0..N {
        c.insert(key(k as usize));
    }
    c.settle();
    let mut present = 0u64;
    for k in (0..N).step_by(97) {
        present += u64::from(c.get(key(k as usize)));
    }
    c.settle();
    let live = LIVE.load(Ordering::Relaxed);
    COUNTING.store(false, Ordering::Relaxed);
    println!(
        "memory {name:<14} {:>6.1} bytes/entry ({} of {} sampled keys present)",
        live as f64 / N as f64,
        present,
        N.div_ceil(97)
    );
    drop(c);
}

fn ours_ttl(cap: u64) -> Ours {
    Ours(
        lru_ttl_cache::Cache::builder()
            .max_capacity(cap)
            .time_to_live(Duration::from_secs(3600))
            .build()
            .expect("valid"),
    )
}

fn memory() {
    bytes_per_entry("ours", ours);
    bytes_per_entry("ours+ttl", ours_ttl);
    bytes_per_entry("quick_cache", quick);
    bytes_per_entry("moka_tinylfu", moka_default);
    bytes_per_entry("moka_lru", moka_lru);
    bytes_per_entry("mutex_lru", mutex_lru);
    bytes_per_entry("mini_moka", mini_moka);
}

// ----- hit ratios ------------------------------------------------------------

fn arc_trace(name: &str) -> Option<Vec<u64>> {
    let dir = benches::shared_data_dir()?;
    let f = std::fs::File::open(dir.join(format!("traces/arc/{name}.lis.zst"))).ok()?;
    let mut raw = Vec::new();
    zstd::Decoder::new(f).ok()?.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut keys = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(s), Some(n)) = (f.next(), f.next()) else {
            continue;
        };
        let (Ok(s), Ok(n)) = (s.parse::<u64>(), n.parse::<u64>()) else {
            continue;
        };
        keys.extend(s..s + n);
    }
    Some(keys)
}

fn replay<C: Contender>(c: &C, keys: &[u64]) -> f64 {
    let mut hits = 0u64;
    for &k in keys {
        if c.get(k) {
            hits += 1;
        } else {
            c.insert(k);
        }
    }
    hits as f64 / keys.len() as f64
}

fn curve<C: Contender>(name: &str, caps: &[u64], keys: &[u64], make: fn(u64) -> C) {
    if let Ok(only) = std::env::var("LRU_TTL_CACHE_ONLY") {
        let first = name.split(' ').next().unwrap_or(name);
        if !only.split(',').any(|o| o == first) {
            return;
        }
    }
    let cells: Vec<String> = caps
        .iter()
        .map(|&cap| format!("{:6.2}%", 100.0 * replay(&make(cap), keys)))
        .collect();
    println!("| {name:<16} | {} |", cells.join(" | "));
}

fn ours_one_shard(cap: u64) -> Ours {
    Ours(
        lru_ttl_cache::Cache::builder()
            .max_capacity(cap)
            .shards(1)
            .build()
            .expect("valid"),
    )
}

fn hit_ratios(with_p12: bool) {
    let mut traces = vec![("OLTP", [1000u64, 2000, 5000, 10000, 15000])];
    if with_p12 {
        traces.push(("P12", [1000, 10000, 100_000, 500_000, 1_000_000]));
    }
    for (trace, caps) in traces {
        let Some(keys) = arc_trace(trace) else {
            println!("skipped: ../shared/data not found");
            return;
        };
        println!(
            "\nhit ratio on {trace} ({} requests), replay: get, insert on miss",
            keys.len()
        );
        let head: Vec<String> = caps.iter().map(|c| format!("{c:>7}")).collect();
        println!("| {:<16} | {} |", "cache", head.join(" | "));
        curve("ours shards(1)", &caps, &keys, ours_one_shard);
        curve("ours default", &caps, &keys, ours);
        curve("mutex_lru", &caps, &keys, mutex_lru);
        curve("quick_cache", &caps, &keys, quick);
        curve("moka_tinylfu", &caps, &keys, moka_default);
        curve("moka_lru", &caps, &keys, moka_lru);
        curve("mini_moka", &caps, &keys, mini_moka);
    }
}

fn main() {
    if std::env::var_os("LRU_TTL_CACHE_MEMORY").is_some() {
        memory();
    }
    if let Some(v) = std::env::var_os("LRU_TTL_CACHE_HIT_RATIOS") {
        hit_ratios(v == "all");
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
