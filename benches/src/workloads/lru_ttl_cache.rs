//! Inputs and contender setups for `lru-ttl-cache`, shared by its criterion bench
//! and the `compare` binary.
//!
//! - Workload (a): `get` only on a full cache of [`CAPACITY`] entries, keys
//!   Zipf(0.99) over [`UNIVERSE`] ranks; (b) 90% `get` (a miss inserts) and
//!   10% `insert`. `u64` keys and values.
//! - The cache is filled with the [`CAPACITY`] most popular keys, least
//!   popular first, which is the state a warmed LRU is in (the hottest keys
//!   most recent). Filling hottest first would make each LRU shard that
//!   gets more than its share of keys evict its hottest ones, which measures
//!   the fill order rather than the cache.
//! - Hit ratios replay the ARC, LIRS and CloudPhysics traces ([`TRACES`];
//!   `get`, `insert` on a miss) on caches from [`Kind::make_seeded`] (a
//!   fixed hasher seed per replay, so that several seeds show how much the
//!   hashing moves a hit ratio), and
//!   [`belady_hits`] gives the optimum any policy could reach on them.

use std::hint::black_box;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The hasher of the hit-ratio replays: ahash's `RandomState`, the default
/// of ours and of quick_cache, named through quick_cache's re-export (benches
/// does not depend on ahash itself). See [`seeded_hasher`].
pub type SeededHasher = quick_cache::DefaultHashBuilder;

// Ours' default hasher is the same type, so a seeded cache of ours is an
// `AnyCache::Ours` like any other (this only compiles if the types match).
const _: fn(
    sysblocks_lru_ttl_cache::Cache<u64, u64, SeededHasher>,
) -> sysblocks_lru_ttl_cache::Cache<u64, u64> = |c| c;

/// The hasher of replay seed `seed`: fixed keys (`seed, 1, 2, 3`, the keys
/// `lru-ttl-cache/examples/policy_sim.rs` gives its `seed=` option), so a
/// replay is repeatable and seed `s` means the same here and there.
#[must_use]
pub fn seeded_hasher(seed: u64) -> SeededHasher {
    SeededHasher::with_seeds(seed, 1, 2, 3)
}

/// Entries of the cache in the throughput workloads.
pub const CAPACITY: u64 = 100_000;
/// Key ranks the Zipf draws come from.
pub const UNIVERSE: usize = 1_000_000;
/// Keys drawn (a power of two; the timed loops wrap around).
pub const SAMPLES: usize = 1 << 20;

/// The contenders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sysblocks_lru_ttl_cache::Cache`, default shards.
    Ours,
    /// `sysblocks_lru_ttl_cache::Cache` with `.shards(1)`: one exact global LRU.
    OursOneShard,
    /// `sysblocks_lru_ttl_cache::Cache` with `Policy::WTinyLfu`, default shards.
    OursWTinyLfu,
    /// `sysblocks_lru_ttl_cache::Cache` with `Policy::WTinyLfu` and `.shards(1)`.
    OursWTinyLfuOneShard,
    /// `quick_cache::sync::Cache`.
    Quick,
    /// `moka::sync::Cache`, default (TinyLFU) policy.
    MokaTinyLfu,
    /// `moka::sync::Cache` with `EvictionPolicy::lru()`.
    MokaLru,
    /// `mini_moka::sync::Cache`.
    MiniMoka,
    /// `std::sync::Mutex<lru::LruCache>`.
    MutexLru,
}

impl Kind {
    /// The throughput and memory contenders, ours first.
    pub const ALL: [Kind; 7] = [
        Kind::Ours,
        Kind::OursWTinyLfu,
        Kind::Quick,
        Kind::MokaTinyLfu,
        Kind::MokaLru,
        Kind::MutexLru,
        Kind::MiniMoka,
    ];

    /// Display name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::OursOneShard => "ours shards(1)",
            Kind::OursWTinyLfu => "ours_wtinylfu",
            Kind::OursWTinyLfuOneShard => "ours_wtinylfu shards(1)",
            Kind::Quick => "quick_cache",
            Kind::MokaTinyLfu => "moka_tinylfu",
            Kind::MokaLru => "moka_lru",
            Kind::MiniMoka => "mini_moka",
            Kind::MutexLru => "mutex_lru",
        }
    }

    /// Whether this is a sysblocks cache.
    #[must_use]
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            Kind::Ours | Kind::OursOneShard | Kind::OursWTinyLfu | Kind::OursWTinyLfuOneShard
        )
    }

    /// Whether a replay's hits can depend on the hasher's keys. They cannot
    /// for one shard of exact LRU (ours with `.shards(1)`, and
    /// `Mutex<lru::LruCache>`): a get hits when the key is among the `cap`
    /// most recently used distinct keys, whatever the hashes. Every other
    /// contender hashes to pick a shard or to count frequencies, so its
    /// replay is repeated with several seeds.
    #[must_use]
    pub fn hash_dependent(self) -> bool {
        !matches!(self, Kind::OursOneShard | Kind::MutexLru)
    }

    /// Like [`Kind::make`], with the hasher keyed by `seed`
    /// ([`seeded_hasher`]) instead of random keys, for the hit-ratio
    /// replays: the same settings (shards, policy) as [`Kind::make`]. moka
    /// and mini_moka thereby swap their default (SipHash) for ahash.
    /// `Mutex<lru::LruCache>` keeps its hasher ([`Kind::hash_dependent`]).
    ///
    /// # Panics
    ///
    /// If `cap` is zero.
    #[must_use]
    pub fn make_seeded(self, cap: u64, seed: u64) -> AnyCache {
        let ours = || {
            sysblocks_lru_ttl_cache::Cache::builder()
                .max_capacity(cap)
                .hasher(seeded_hasher(seed))
        };
        let wtinylfu = sysblocks_lru_ttl_cache::Policy::WTinyLfu;
        match self {
            Kind::Ours => AnyCache::Ours(ours().build().expect("valid")),
            Kind::OursOneShard => AnyCache::Ours(ours().shards(1).build().expect("valid")),
            Kind::OursWTinyLfu => AnyCache::Ours(ours().policy(wtinylfu).build().expect("valid")),
            Kind::OursWTinyLfuOneShard => {
                AnyCache::Ours(ours().shards(1).policy(wtinylfu).build().expect("valid"))
            }
            // The arguments `Cache::new` passes, but the hasher.
            Kind::Quick => AnyCache::Quick(quick_cache::sync::Cache::with(
                cap as usize,
                cap,
                quick_cache::UnitWeighter,
                seeded_hasher(seed),
                quick_cache::sync::DefaultLifecycle::default(),
            )),
            Kind::MokaTinyLfu => AnyCache::MokaSeeded(
                moka::sync::Cache::builder()
                    .max_capacity(cap)
                    .build_with_hasher(seeded_hasher(seed)),
            ),
            Kind::MokaLru => AnyCache::MokaSeeded(
                moka::sync::Cache::builder()
                    .max_capacity(cap)
                    .eviction_policy(moka::policy::EvictionPolicy::lru())
                    .build_with_hasher(seeded_hasher(seed)),
            ),
            Kind::MiniMoka => AnyCache::MiniMokaSeeded(
                mini_moka::sync::Cache::builder()
                    .max_capacity(cap)
                    .build_with_hasher(seeded_hasher(seed)),
            ),
            Kind::MutexLru => self.make(cap),
        }
    }

    /// An empty `u64 -> u64` cache of `cap` entries.
    ///
    /// # Panics
    ///
    /// If `cap` is zero.
    #[must_use]
    pub fn make(self, cap: u64) -> AnyCache {
        match self {
            Kind::Ours => AnyCache::Ours(
                sysblocks_lru_ttl_cache::Cache::builder()
                    .max_capacity(cap)
                    .build()
                    .expect("valid"),
            ),
            Kind::OursOneShard => AnyCache::Ours(
                sysblocks_lru_ttl_cache::Cache::builder()
                    .max_capacity(cap)
                    .shards(1)
                    .build()
                    .expect("valid"),
            ),
            Kind::OursWTinyLfu => AnyCache::Ours(
                sysblocks_lru_ttl_cache::Cache::builder()
                    .max_capacity(cap)
                    .policy(sysblocks_lru_ttl_cache::Policy::WTinyLfu)
                    .build()
                    .expect("valid"),
            ),
            Kind::OursWTinyLfuOneShard => AnyCache::Ours(
                sysblocks_lru_ttl_cache::Cache::builder()
                    .max_capacity(cap)
                    .shards(1)
                    .policy(sysblocks_lru_ttl_cache::Policy::WTinyLfu)
                    .build()
                    .expect("valid"),
            ),
            Kind::Quick => AnyCache::Quick(quick_cache::sync::Cache::new(cap as usize)),
            Kind::MokaTinyLfu => {
                AnyCache::Moka(moka::sync::Cache::builder().max_capacity(cap).build())
            }
            Kind::MokaLru => AnyCache::Moka(
                moka::sync::Cache::builder()
                    .max_capacity(cap)
                    .eviction_policy(moka::policy::EvictionPolicy::lru())
                    .build(),
            ),
            Kind::MiniMoka => {
                AnyCache::MiniMoka(mini_moka::sync::Cache::builder().max_capacity(cap).build())
            }
            Kind::MutexLru => AnyCache::MutexLru(Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(cap as usize).expect("non-zero capacity"),
            ))),
        }
    }
}

/// One contender's cache. A `match` per operation (one well-predicted
/// branch, the same for every contender) instead of a virtual call.
pub enum AnyCache {
    /// Ours (any shard count).
    Ours(sysblocks_lru_ttl_cache::Cache<u64, u64>),
    /// quick_cache.
    Quick(quick_cache::sync::Cache<u64, u64>),
    /// moka, either policy.
    Moka(moka::sync::Cache<u64, u64>),
    /// moka, either policy, with a seeded hasher ([`Kind::make_seeded`]).
    MokaSeeded(moka::sync::Cache<u64, u64, SeededHasher>),
    /// mini_moka.
    MiniMoka(mini_moka::sync::Cache<u64, u64>),
    /// mini_moka with a seeded hasher.
    MiniMokaSeeded(mini_moka::sync::Cache<u64, u64, SeededHasher>),
    /// `Mutex<lru::LruCache>`.
    MutexLru(Mutex<lru::LruCache<u64, u64>>),
}

impl AnyCache {
    /// Whether `k` is cached (a hit).
    #[inline]
    pub fn get(&self, k: u64) -> bool {
        match self {
            AnyCache::Ours(c) => c.get(&k).is_some(),
            AnyCache::Quick(c) => c.get(&k).is_some(),
            AnyCache::Moka(c) => c.get(&k).is_some(),
            AnyCache::MokaSeeded(c) => c.get(&k).is_some(),
            AnyCache::MiniMoka(c) => c.get(&k).is_some(),
            AnyCache::MiniMokaSeeded(c) => c.get(&k).is_some(),
            AnyCache::MutexLru(c) => c.lock().expect("lock").get(&k).is_some(),
        }
    }

    /// Stores `k -> k`.
    #[inline]
    pub fn insert(&self, k: u64) {
        match self {
            AnyCache::Ours(c) => c.insert(k, k),
            AnyCache::Quick(c) => c.insert(k, k),
            AnyCache::Moka(c) => c.insert(k, k),
            AnyCache::MokaSeeded(c) => c.insert(k, k),
            AnyCache::MiniMoka(c) => c.insert(k, k),
            AnyCache::MiniMokaSeeded(c) => c.insert(k, k),
            AnyCache::MutexLru(c) => {
                c.lock().expect("lock").put(k, k);
            }
        }
    }

    /// Lets asynchronous maintenance finish (moka, mini_moka).
    pub fn settle(&self) {
        match self {
            AnyCache::Moka(c) => c.run_pending_tasks(),
            AnyCache::MokaSeeded(c) => c.run_pending_tasks(),
            AnyCache::MiniMoka(c) => mini_moka::sync::ConcurrentCacheExt::sync(c),
            AnyCache::MiniMokaSeeded(c) => mini_moka::sync::ConcurrentCacheExt::sync(c),
            _ => {}
        }
    }
}

/// Key of popularity rank `r` (0 = most popular), scattered over `u64`.
#[must_use]
pub fn key(rank: usize) -> u64 {
    (rank as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// `n` keys (rounded up to a power of two) drawn Zipf(0.99) over
/// [`UNIVERSE`] ranks by inverse CDF, seeded.
#[must_use]
pub fn zipf_keys(n: usize) -> Vec<u64> {
    let n = n.next_power_of_two();
    let mut cdf = Vec::with_capacity(UNIVERSE);
    let mut sum = 0.0f64;
    for r in 1..=UNIVERSE {
        sum += 1.0 / (r as f64).powf(0.99);
        cdf.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    (0..n)
        .map(|_| {
            let u = rng.gen::<f64>() * sum;
            key(cdf.partition_point(|&c| c < u).min(UNIVERSE - 1))
        })
        .collect()
}

/// Fills `c` with the `cap` most popular keys, least popular first (a
/// warmed LRU's state; see the module docs).
pub fn fill(c: &AnyCache, cap: u64) {
    for r in (0..cap as usize).rev() {
        c.insert(key(r));
    }
    c.settle();
}

/// A full cache of `cap` entries ([`CAPACITY`] in the workloads), ready
/// for the timed loops.
#[must_use]
pub fn filled(kind: Kind, cap: u64) -> AnyCache {
    let c = kind.make(cap);
    fill(&c, cap);
    c
}

/// The operation mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Workload (a): `get` only.
    GetOnly,
    /// Workload (b): 90% `get` (a miss inserts), 10% `insert`.
    GetInsert,
}

impl Mix {
    /// Short name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Mix::GetOnly => "get",
            Mix::GetInsert => "get90_insert10",
        }
    }
}

/// Runs `n` operations of `mix` from position `start` of `keys`; returns
/// the hits.
#[inline]
pub fn run_ops(c: &AnyCache, keys: &[u64], start: usize, n: u64, mix: Mix) -> u64 {
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

/// Wall time of `iters` operations split over `threads` threads, starting
/// at `*pos` in `keys` (advanced, so successive calls see fresh keys).
pub fn timed(
    c: &AnyCache,
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
    let per = iters.div_ceil(threads as u64);
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

/// An ARC trace (`traces/arc/<name>.lis.zst` under `../shared/data`)
/// expanded to one key per block, or `None` without the data.
#[must_use]
pub fn arc_trace(name: &str) -> Option<Vec<u64>> {
    let dir = crate::shared_data_dir()?;
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

/// Every trace of the hit-ratio curves: the ARC traces (`traces/arc/*.lis.zst`),
/// the LIRS traces (`traces/lirs/*.trace.gz`) and the CloudPhysics trace
/// (keys only: every object counts as one entry).
pub const TRACES: [&str; 19] = [
    "OLTP",
    "P2",
    "P3",
    "P6",
    "P12",
    "2_pools",
    "backf",
    "cpp",
    "cs",
    "gli",
    "loop",
    "multi1",
    "multi2",
    "multi3",
    "ps",
    "scan",
    "sprite",
    "zigzag",
    "cloudphysics",
];

/// The keys of trace `name` (one of [`TRACES`]), or `None` without the data.
#[must_use]
pub fn trace(name: &str) -> Option<Vec<u64>> {
    match name {
        "OLTP" | "P2" | "P3" | "P6" | "P12" => arc_trace(name),
        "cloudphysics" => {
            let dir = crate::shared_data_dir()?;
            let path = dir.join("traces/cloudphysics.oracleGeneral.bin.zst");
            let mut raw = Vec::new();
            zstd::Decoder::new(std::fs::File::open(path).ok()?)
                .ok()?
                .read_to_end(&mut raw)
                .ok()?;
            // Records of 24 bytes: u32 time, u64 object id, u32 size, i64 next.
            Some(
                raw.chunks_exact(24)
                    .map(|r| u64::from_le_bytes(r[4..12].try_into().expect("8 bytes")))
                    .collect(),
            )
        }
        lirs => {
            let dir = crate::shared_data_dir()?;
            let f = std::fs::File::open(dir.join(format!("traces/lirs/{lirs}.trace.gz"))).ok()?;
            let mut text = String::new();
            flate2::read::GzDecoder::new(f)
                .read_to_string(&mut text)
                .ok()?;
            Some(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && *l != "*")
                    .filter_map(|l| l.parse().ok())
                    .collect(),
            )
        }
    }
}

/// The five capacities of trace `name`'s hit-ratio curve: fixed on the
/// ARC traces ([`OLTP_CAPS`], [`P12_CAPS`] for every `P` trace), else 2%,
/// 5%, 10%, 20% and 40% of the trace's distinct keys (at least 10).
#[must_use]
pub fn trace_caps(name: &str, keys: &[u64]) -> [u64; 5] {
    match name {
        "OLTP" => OLTP_CAPS,
        "P2" | "P3" | "P6" | "P12" => P12_CAPS,
        _ => {
            let distinct = keys.iter().collect::<std::collections::HashSet<_>>().len() as f64;
            [0.02, 0.05, 0.1, 0.2, 0.4].map(|f| ((f * distinct) as u64).max(10))
        }
    }
}

/// The capacities of the hit-ratio curves on each trace.
pub const OLTP_CAPS: [u64; 5] = [1000, 2000, 5000, 10_000, 15_000];
/// See [`OLTP_CAPS`].
pub const P12_CAPS: [u64; 5] = [1000, 10_000, 100_000, 500_000, 1_000_000];

/// Hit ratio of replaying `keys` (`get`, `insert` on a miss) on `c`.
///
/// moka and mini_moka apply writes in batches (of 64 in moka 0.12), and
/// until a batch is applied the entries that its admission will reject
/// still sit in the map and serve hits: replayed without settling, moka's
/// hit ratio at small capacities came out above Belady's OPT for the same
/// capacity, which no cache holding at most that many entries can reach.
/// So every insert is followed by [`AnyCache::settle`] (their
/// `run_pending_tasks`/`sync`), and each cache is held to its capacity.
#[must_use]
pub fn replay(c: &AnyCache, keys: &[u64]) -> f64 {
    let mut hits = 0u64;
    for &k in keys {
        if c.get(k) {
            hits += 1;
        } else {
            c.insert(k);
            c.settle();
        }
    }
    hits as f64 / keys.len().max(1) as f64
}

/// Hits of Belady's optimal policy (MIN) on `keys` with room for `cap`
/// entries: on a miss with a full cache, whichever of the cached keys and
/// the new one is next used farthest in the future is left out (the new
/// one is not stored if it is that one). No policy that sees the same
/// requests can hit more. O(n log cap).
#[must_use]
pub fn belady_hits(keys: &[u64], cap: usize) -> u64 {
    use std::collections::{BinaryHeap, HashMap};
    const NEVER: usize = usize::MAX;
    // next[i]: the next request for keys[i] after i.
    let mut next = vec![NEVER; keys.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &k) in keys.iter().enumerate().rev() {
        if let Some(&j) = seen.get(&k) {
            next[i] = j;
        }
        seen.insert(k, i);
    }
    drop(seen);
    // Cached key -> its next use; heap of (next use, key), stale entries
    // skipped when they reach the top.
    let mut cached: HashMap<u64, usize> = HashMap::with_capacity(cap);
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0u64;
    for (i, &k) in keys.iter().enumerate() {
        let nu = next[i];
        if let Some(slot) = cached.get_mut(&k) {
            hits += 1;
            *slot = nu;
            heap.push((nu, k));
            continue;
        }
        if cached.len() >= cap {
            // The farthest live entry.
            let far = loop {
                let &(d, fk) = heap.peek().expect("a full cache has heap entries");
                if cached.get(&fk) == Some(&d) {
                    break d;
                }
                heap.pop();
            };
            if nu >= far {
                continue; // the new key is needed last: do not store it
            }
            if let Some((_, fk)) = heap.pop() {
                cached.remove(&fk);
            }
        }
        cached.insert(k, nu);
        heap.push((nu, k));
        if heap.len() > 4 * cap + 64 {
            heap = cached.iter().map(|(&k, &d)| (d, k)).collect();
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Belady against a brute-force optimum on tiny sequences.
    #[test]
    fn belady_matches_exhaustive_search() {
        fn best(keys: &[u64], cap: usize, i: usize, cache: &mut Vec<u64>) -> u64 {
            if i == keys.len() {
                return 0;
            }
            let k = keys[i];
            if cache.contains(&k) {
                return 1 + best(keys, cap, i + 1, cache);
            }
            // Not storing it is always allowed.
            let mut b = best(keys, cap, i + 1, cache);
            if cache.len() < cap {
                cache.push(k);
                b = b.max(best(keys, cap, i + 1, cache));
                cache.pop();
            } else {
                for j in 0..cache.len() {
                    let old = std::mem::replace(&mut cache[j], k);
                    b = b.max(best(keys, cap, i + 1, cache));
                    cache[j] = old;
                }
            }
            b
        }
        let mut x = 7u64;
        for _ in 0..200 {
            let n = 1 + (x % 11) as usize;
            let keys: Vec<u64> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 33) % 5
                })
                .collect();
            for cap in 1..4 {
                assert_eq!(
                    belady_hits(&keys, cap),
                    best(&keys, cap, 0, &mut Vec::new()),
                    "{keys:?} cap {cap}"
                );
            }
        }
    }

    #[test]
    fn fill_leaves_the_hottest_keys_cached() {
        let c = Kind::Ours.make(1000);
        fill(&c, 1000);
        assert!(c.get(key(0)));
        assert!(!c.get(key(1000)));
    }
}
