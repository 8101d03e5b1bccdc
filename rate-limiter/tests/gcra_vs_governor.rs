//! Known-answer test: `Gcra` against `governor` on the same arrivals.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota as GQuota, RateLimiter as GLimiter};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_rate_limiter::{Gcra, ManualClock, Quota, RateLimiter};

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
