//! Known answers: the examples of nginx's `limit_req` documentation for
//! `LeakyBucket`, and `governor`'s decisions and wait times on the same
//! arrivals for `Gcra`, direct and keyed.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter as GLimiter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_rate_limiter::{Gcra, Keyed, LeakyBucket, ManualClock, Quota, RateLimiter};

const MS: Duration = Duration::from_millis(1);

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Drives both limiters over one random arrival sequence and compares every
/// decision and every wait time.
fn compare(
    ours_q: Quota,
    theirs_q: GQuota,
    seed: u64,
    steps: usize,
    max_gap_ns: u64,
    max_cost: u32,
) -> (usize, usize) {
    let clock = ManualClock::new();
    let ours = Gcra::with_clock(ours_q, clock.clone()).unwrap();
    let fake = FakeRelativeClock::default();
    let theirs = GLimiter::direct_with_clock(theirs_q, fake.clone());
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut admitted, mut denied) = (0, 0);
    for i in 0..steps {
        let gap = if rng.gen_bool(0.3) {
            0
        } else {
            rng.gen_range(0..=max_gap_ns)
        };
        clock.advance(Duration::from_nanos(gap));
        fake.advance(Duration::from_nanos(gap));
        let cost = rng.gen_range(1..=max_cost);
        let mine = ours.check_n(cost);
        let gov = theirs.check_n(nz(cost));
        match (mine, gov) {
            (Ok(d), Ok(Ok(()))) => {
                assert!(
                    d.is_allowed(),
                    "step {i}: governor admits cost {cost}, we deny"
                );
                admitted += 1;
            }
            (Ok(d), Ok(Err(not_until))) => {
                assert!(
                    !d.is_allowed(),
                    "step {i}: governor denies cost {cost}, we admit"
                );
                let want = not_until.wait_time_from(governor::clock::Clock::now(&fake));
                assert_eq!(d.retry_after(), Some(want), "step {i}: retry_after");
                denied += 1;
            }
            (Err(_), Err(_)) => {}
            (m, g) => panic!("step {i}: cost {cost}: ours {m:?}, governor {g:?}"),
        }
    }
    (admitted, denied)
}

#[test]
fn same_decisions_as_governor_single_cells() {
    for (seed, n, burst) in [(1u64, 10u32, 10u32), (2, 3, 1), (3, 7, 20), (4, 1000, 5)] {
        let (a, d) = compare(
            Quota::per_second(n).burst(burst),
            GQuota::per_second(nz(n)).allow_burst(nz(burst)),
            seed,
            20_000,
            2_000_000_000 / u64::from(n),
            1,
        );
        assert!(a > 1000 && d > 1000, "both outcomes exercised: {a} {d}");
    }
}

#[test]
fn same_decisions_as_governor_check_n() {
    for (seed, n, burst) in [(5u64, 10u32, 10u32), (6, 60, 7), (7, 3, 3)] {
        let (a, d) = compare(
            Quota::per_minute(n).burst(burst),
            GQuota::per_minute(nz(n)).allow_burst(nz(burst)),
            seed,
            20_000,
            3 * 60_000_000_000 / u64::from(n),
            burst + 2,
        );
        assert!(a > 1000 && d > 1000, "both outcomes exercised: {a} {d}");
    }
}

#[test]
fn same_decisions_as_governor_with_period() {
    let p = Duration::from_nanos(333_333_337);
    let (a, d) = compare(
        Quota::with_period(p).burst(4),
        GQuota::with_period(p).unwrap().allow_burst(nz(4)),
        8,
        20_000,
        700_000_000,
        4,
    );
    assert!(a > 1000 && d > 1000, "both outcomes exercised: {a} {d}");
}

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

/// nginx docs: `rate=10r/s burst=20` and 21 simultaneous requests: one is
/// served, 20 are queued and leave one every 100 ms, the 22nd is rejected.
#[test]
fn nginx_burst_queues_and_rejects() {
    let clock = ManualClock::starting_at(Duration::from_secs(5));
    let lb = LeakyBucket::nginx(Quota::per_second(10), 20)
        .clock(clock.clone())
        .build()
        .unwrap();
    for k in 0..=20u64 {
        let d = lb.check();
        assert!(d.is_allowed(), "request {k}");
        assert_eq!(
            d.delay(),
            100 * MS * k as u32,
            "the {k}-th excess waits k/rate"
        );
    }
    let d = lb.check();
    assert!(!d.is_allowed());
    assert_eq!(d.retry_after(), Some(100 * MS));
    // One slot frees every 100 ms.
    clock.advance(100 * MS);
    assert!(lb.check().is_allowed());
    assert!(!lb.check().is_allowed());
}

/// nginx `nodelay`: the same 21 are served at once; `delay=8`: the first 8
/// excess requests are served at once, later ones wait (k - 8) / rate.
#[test]
fn nginx_nodelay_and_two_stage() {
    let clock = ManualClock::new();
    let lb = LeakyBucket::nginx(Quota::per_second(10), 20)
        .nodelay()
        .clock(clock.clone())
        .build()
        .unwrap();
    let admitted = (0..30).filter(|_| {
        let d = lb.check();
        assert_eq!(d.delay(), Duration::ZERO);
        d.is_allowed()
    });
    assert_eq!(admitted.count(), 21);

    let lb = LeakyBucket::nginx(Quota::per_second(10), 12)
        .delay(8)
        .clock(clock.clone())
        .build()
        .unwrap();
    let delays: Vec<_> = (0..14).map(|_| lb.check()).collect();
    for (k, d) in delays.iter().enumerate() {
        let k = k as u32;
        if k <= 12 {
            assert!(d.is_allowed());
            assert_eq!(d.delay(), 100 * MS * k.saturating_sub(8), "request {k}");
        } else {
            assert!(!d.is_allowed());
        }
    }
}

/// nginx without burst: one request per interval; a request after a full
/// idle interval starts from excess 0 again.
#[test]
fn nginx_no_burst() {
    let clock = ManualClock::new();
    let lb = LeakyBucket::nginx(Quota::per_second(2), 0)
        .clock(clock.clone())
        .build()
        .unwrap();
    assert!(lb.check().is_allowed());
    assert!(!lb.check().is_allowed());
    clock.advance(499 * MS);
    assert!(!lb.check().is_allowed());
    clock.advance(MS);
    assert!(lb.check().is_allowed());
    clock.advance(Duration::from_secs(10));
    assert!(lb.check().is_allowed());
}
