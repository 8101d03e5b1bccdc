//! Keyed limiting against reference models: dropping fresh-equivalent state
//! never changes a decision (one independent limiter per key, for every
//! algorithm), and the `max_keys` cap evicts exactly what a naive
//! least-recently-seen model does. The check against `governor`'s keyed
//! GCRA is in `kat.rs`.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_rate_limiter::{
    Algorithm, FixedWindow, Gcra, Keyed, LeakyBucket, ManualClock, Quota, RateLimiter,
    SlidingWindowCounter, SlidingWindowLog, TokenBucket,
};

/// Keyed store vs a map of independent limiters, one per key.
fn against_independent<A, F>(name: &str, make: F, seed: u64)
where
    A: Algorithm + RateLimiter,
    F: Fn(ManualClock) -> A,
{
    let clock = ManualClock::new();
    let keyed = Keyed::builder(make(clock.clone()))
        .max_keys(40)
        .shards(1)
        .build()
        .unwrap();
    let mut singles: HashMap<u32, A> = HashMap::new();
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut yes, mut no) = (0, 0);
    for i in 0..20_000 {
        let gap = if rng.gen_bool(0.4) {
            0
        } else {
            rng.gen_range(0..12_000_000u64)
        };
        clock.advance(Duration::from_nanos(gap));
        let key: u32 = rng.gen_range(0..40);
        let cost = rng.gen_range(0..=3u32);
        let single = singles.entry(key).or_insert_with(|| make(clock.clone()));
        let want = single.check_n(cost).unwrap();
        let got = keyed.check_key_n(&key, cost).unwrap();
        assert_eq!(got, want, "{name}: step {i}");
        if got.is_allowed() {
            yes += 1
        } else {
            no += 1
        }
    }
    assert!(yes > 500 && no > 500, "{name}: {yes} / {no}");
    assert_eq!(keyed.evictions(), 0);
}

#[test]
fn keyed_equals_independent_limiters_for_every_algorithm() {
    let q = Quota::per_second(4).burst(3);
    against_independent("gcra", |c| Gcra::with_clock(q, c).unwrap(), 1);
    against_independent("token", |c| TokenBucket::with_clock(q, c).unwrap(), 2);
    against_independent("leaky", |c| LeakyBucket::with_clock(q, c).unwrap(), 3);
    against_independent("fixed", |c| FixedWindow::with_clock(q, c).unwrap(), 4);
    against_independent("log", |c| SlidingWindowLog::with_clock(q, c).unwrap(), 5);
    against_independent(
        "counter",
        |c| SlidingWindowCounter::with_clock(q, c).unwrap(),
        6,
    );
}

/// The `max_keys` cap against a reference model: on a single shard, over a random
/// sequence of checks, the surviving keys are exactly those of a naive
/// least-recently-seen model (a `Vec` of keys and the step of their last
/// check) that evicts its eighth with the oldest last checks when a new key
/// arrives at a full store. Every state stays live (1 per hour, the run
/// lasts about a minute), so only the cap removes keys; each check is at
/// least one stamp tick (2^20 ns) after the last, so recency has no ties.
/// Denials and cost-0 checks count as seen, which an eviction by smallest
/// theoretical arrival time (least recently *admitted*) would not do.
#[test]
fn keyed_cap_evicts_exactly_the_least_recently_seen_like_a_reference_model() {
    const CAP: usize = 64;
    let clock = ManualClock::new();
    let keyed = Keyed::builder(Gcra::with_clock(Quota::per_hour(1), clock.clone()).unwrap())
        .max_keys(CAP)
        .shards(1)
        .build()
        .unwrap();
    // (key, step of its last check), in insertion order.
    let mut model: Vec<(u32, usize)> = Vec::new();
    let mut rng = SmallRng::seed_from_u64(5);
    let (mut admitted, mut denied, mut model_evictions) = (0, 0, 0u64);
    for step in 0..20_000 {
        clock.advance(Duration::from_nanos(rng.gen_range(1_100_000..4_000_000)));
        // A hot set that is re-checked often, and a colder tail.
        let key: u32 = if rng.gen_bool(0.6) {
            rng.gen_range(0..48)
        } else {
            rng.gen_range(0..400)
        };
        let cost = u32::from(!rng.gen_bool(0.1)); // some cost-0 checks
        let d = keyed.check_key_n(&key, cost).unwrap();
        let present = model.iter().position(|&(k, _)| k == key);
        match present {
            Some(i) => {
                model[i].1 = step;
                assert!(!d.is_allowed() || cost == 0, "step {step}: key {key} kept");
                assert_eq!(d.remaining(), 0, "step {step}: key {key} kept");
                denied += 1;
            }
            None => {
                assert!(d.is_allowed(), "step {step}: key {key} absent");
                assert_eq!(d.remaining(), 1 - cost, "step {step}: key {key} absent");
                if cost == 1 {
                    admitted += 1;
                    if model.len() >= CAP {
                        model.sort_by_key(|&(_, seen)| seen);
                        model.drain(..CAP / 8);
                        model_evictions += (CAP / 8) as u64;
                    }
                    model.push((key, step));
                }
            }
        }
        assert_eq!(keyed.len(), model.len(), "step {step}");
    }
    assert!(admitted > 1000 && denied > 1000, "{admitted} / {denied}");
    assert_eq!(keyed.evictions(), model_evictions);
    // The surviving set, probed with cost-0 checks (which insert nothing
    // and change no state): a held key has nothing left, a new one 1.
    let mut survivors: Vec<u32> = (0..400)
        .filter(|k| keyed.check_key_n(k, 0).unwrap().remaining() == 0)
        .collect();
    let mut want: Vec<u32> = model.iter().map(|&(k, _)| k).collect();
    survivors.sort_unstable();
    want.sort_unstable();
    assert_eq!(survivors, want);
}
