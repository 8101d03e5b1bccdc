//! Cache-aside in front of a simulated slow database: many threads read
//! keys drawn Zipf-like from a large key space; a miss costs a "query"
//! (a sleep). Prints the hit ratio, database load and latency percentiles.
//!
//! Run: `cargo run --release -p sysblocks-lru-ttl-cache --example cache_aside`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_lru_ttl_cache::Cache;

/// A database whose every query takes `latency`.
struct SlowDb {
    latency: Duration,
    queries: AtomicU64,
}

impl SlowDb {
    fn query(&self, id: u64) -> Arc<String> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.latency);
        Arc::new(format!("row {id}"))
    }
}

/// Popularity-skewed ids: rank r with probability about 1/r over `n` ranks.
fn skewed_id(rng: &mut SmallRng, n: u64) -> u64 {
    // Inverse of the continuous 1/x distribution on [1, n].
    let u: f64 = rng.gen();
    ((n as f64).powf(u) as u64).clamp(1, n)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const THREADS: usize = 4;
    const REQUESTS: usize = 5_000;
    const KEYS: u64 = 100_000;
    let db = Arc::new(SlowDb {
        latency: Duration::from_micros(200),
        queries: AtomicU64::new(0),
    });
    // Values are `Arc`s: `get` clones the value, which is then a refcount.
    let cache: Cache<u64, Arc<String>> = Cache::builder()
        .max_capacity(5_000)
        .time_to_live(Duration::from_secs(60))
        .build()?;

    let start = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, db) = (cache.clone(), Arc::clone(&db));
            std::thread::spawn(move || {
                let mut rng = SmallRng::seed_from_u64(t as u64);
                let mut lat = Vec::with_capacity(REQUESTS);
                for _ in 0..REQUESTS {
                    let id = skewed_id(&mut rng, KEYS);
                    let t0 = Instant::now();
                    let row = cache.get_or_insert_with(id, || db.query(id));
                    std::hint::black_box(row);
                    lat.push(t0.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = Vec::new();
    for h in handles {
        lat.extend(h.join().map_err(|_| "worker panicked")?);
    }
    let wall = start.elapsed();
    lat.sort_unstable();

    let total = lat.len() as u64;
    let queries = db.queries.load(Ordering::Relaxed);
    let stats = cache.stats();
    println!("requests        {total} over {THREADS} threads in {wall:.2?}");
    println!(
        "hit ratio       {:.1}% (cache stats: {} hits, {} misses)",
        100.0 * stats.hit_ratio(),
        stats.hits,
        stats.misses
    );
    println!(
        "database load   {queries} queries ({:.1}% of requests; single flight merges concurrent misses)",
        100.0 * queries as f64 / total as f64
    );
    println!(
        "latency         p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        percentile(&lat, 0.50),
        percentile(&lat, 0.90),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat[lat.len() - 1]
    );
    println!(
        "evictions       {} by size, {} expired",
        stats.evicted_size, stats.expired
    );
    Ok(())
}
