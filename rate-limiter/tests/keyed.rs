//! Keyed limiting: dropping fresh-equivalent state never changes a
//! decision. Checked against `governor`'s keyed GCRA (which keeps every
//! key) and against one independent limiter per key for every algorithm.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter as GLimiter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rate_limiter::{
    Algorithm, FixedWindow, Gcra, Keyed, LeakyBucket, ManualClock, Quota, RateLimiter,
    SlidingWindowCounter, SlidingWindowLog, TokenBucket,
};

#[test]
fn keyed_gcra_matches_governor_keyed() {
    let n = NonZeroU32::new(5).unwrap();
    let clock = ManualClock::new();
    let ours =
        Keyed::builder(Gcra::with_clock(Quota::per_second(5).burst(3), clock.clone()).unwrap())
            .max_keys(64)
            .shards(1)
            .build()
            .unwrap();
    let fake = FakeRelativeClock::default();
    let theirs = GLimiter::dashmap_with_clock(
        GQuota::per_second(n).allow_burst(NonZeroU32::new(3).unwrap()),
        fake.clone(),
    );
    let mut rng = SmallRng::seed_from_u64(11);
    let mut max_len = 0;
    for i in 0..50_000 {
        let gap = if rng.gen_bool(0.5) {
            0
        } else {
            rng.gen_range(0..40_000_000u64)
        };
        clock.advance(Duration::from_nanos(gap));
        fake.advance(Duration::from_nanos(gap));
        let key: u32 = rng.gen_range(0..50);
        let cost = rng.gen_range(1..=4u32);
        let mine = ours.check_key_n(&key, cost);
        let gov = theirs.check_key_n(&key, NonZeroU32::new(cost).unwrap());
        match (mine, gov) {
            (Ok(d), Ok(Ok(()))) => assert!(d.is_allowed(), "step {i}"),
            (Ok(d), Ok(Err(nu))) => {
                assert!(!d.is_allowed(), "step {i}");
                let want = nu.wait_time_from(governor::clock::Clock::now(&fake));
                assert_eq!(d.retry_after(), Some(want), "step {i}");
            }
            (Err(_), Err(_)) => {}
            (m, g) => panic!("step {i}: ours {m:?} governor {g:?}"),
        }
        max_len = max_len.max(ours.len());
    }
    assert_eq!(ours.evictions(), 0);
    assert!(max_len <= 50);
    // governor keeps all 50 keys; ours holds only live ones.
    assert_eq!(theirs.len(), 50);
    ours.sweep();
    assert!(ours.len() < 50, "{}", ours.len());
}

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
