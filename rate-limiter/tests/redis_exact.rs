//! The Redis scripts decide exactly as the local limiters: one random trace
//! of (time, key, cost), costs above the burst and steps back of the clock
//! included, replayed through a local `Gcra` (and `SlidingWindowCounter`)
//! per key on a `ManualClock` and through the Redis script with the same
//! times injected (`RedisLimiter::check_at`), gives identical `Decision`s
//! and errors.
#![cfg(feature = "redis")]

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sysblocks_rate_limiter::redis::{RedisCheckError, RedisLimiter};
use sysblocks_rate_limiter::{
    CheckError, Decision, Gcra, ManualClock, Quota, RateLimiter, SlidingWindowCounter,
};
use sysblocks_testkit::redis::RedisServer;

const KEYS: u32 = 6;

/// A trace event: the time in nanoseconds, the key and the cost.
type Event = (u64, u32, u32);

/// `n` events from `start`: mostly small steps forward (a fraction of the
/// emission interval `t` to a few of them), now and then a long idle gap,
/// a step back of up to a few `t`, or a step back beyond the state's lead.
fn trace(seed: u64, n: usize, start: u64, t: u64, max_cost: u32) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut now = start;
    (0..n)
        .map(|_| {
            let r: f64 = rng.gen();
            now = if r < 0.03 {
                now.saturating_sub(rng.gen_range(0..4 * t))
            } else if r < 0.04 {
                now.saturating_sub(rng.gen_range(0..40 * t))
            } else if r < 0.06 {
                now.saturating_add(rng.gen_range(0..60 * t))
            } else if r < 0.3 {
                now
            } else {
                now.saturating_add(rng.gen_range(0..t / 4))
            };
            let cost = if rng.gen_bool(0.05) {
                rng.gen_range(0..=max_cost + 3)
            } else {
                rng.gen_range(0..=(max_cost / 8).clamp(1, 2.max(max_cost / 8)))
            };
            (now, rng.gen_range(0..KEYS), cost)
        })
        .collect()
}

fn same_error(local: &CheckError, redis: &RedisCheckError) -> bool {
    matches!(
        (local, redis),
        (
            CheckError::CostExceedsLimit { cost: a, limit: b },
            RedisCheckError::CostExceedsLimit { cost: c, limit: d },
        ) if a == c && b == d
    )
}

/// Replays `events` through `local` limiters (one per key, on `clock`)
/// and through `redis`, and asserts every outcome equal. Returns the
/// numbers of admissions, denials, and denials no wait within the clock's
/// range cures.
async fn replay<L: RateLimiter>(
    name: &str,
    clock: &ManualClock,
    local: &HashMap<u32, L>,
    redis: &RedisLimiter,
    run: &str,
    events: &[Event],
) -> (usize, usize, usize) {
    let (mut admitted, mut denied, mut never) = (0, 0, 0);
    for (i, &(now, key, cost)) in events.iter().enumerate() {
        clock.set(Duration::from_nanos(now));
        let want: Result<Decision, CheckError> = local[&key].check_n(cost);
        let got = redis.check_at(format!("{run}:{key}"), cost, now).await;
        match (&want, &got) {
            (Ok(w), Ok(g)) => {
                assert_eq!(
                    w, g,
                    "{name}: event {i} (t={now}, key {key}, cost {cost}) differs"
                );
                if w.is_allowed() {
                    admitted += 1;
                } else {
                    denied += 1;
                    never += usize::from(w.retry_after() == Some(Decision::RETRY_NEVER));
                }
            }
            (Err(w), Err(g)) if same_error(w, g) => {}
            _ => panic!("{name}: event {i} (t={now}, key {key}, cost {cost}): local {want:?}, redis {got:?}"),
        }
    }
    (admitted, denied, never)
}

async fn connect(
    server: &RedisServer,
    builder: sysblocks_rate_limiter::redis::RedisLimiterBuilder,
) -> RedisLimiter {
    builder.connect(&server.url()).await.expect("connect")
}

/// Quotas with round and truncated emission intervals.
fn quotas() -> [Quota; 3] {
    [
        Quota::per_second(10).burst(5),
        // T = 142_857_142 ns (truncated): the remaining slack is not a
        // multiple of T.
        Quota::per_second(7).burst(3),
        Quota::per_minute(5000).burst(200),
    ]
}

/// An epoch-like start (2023) and the end of the `u64` range, where
/// admissions run out of clock.
const STARTS: [u64; 2] = [1_700_000_000_123_456_789, u64::MAX - 1_500_000_000];

#[tokio::test]
async fn gcra_script_decides_as_the_local_gcra() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    for (qi, quota) in quotas().into_iter().enumerate() {
        let redis = connect(&server, RedisLimiter::gcra(quota).prefix("gcra:")).await;
        let t = quota.emission_interval().unwrap().as_nanos() as u64;
        for (si, &start) in STARTS.iter().enumerate() {
            let n = if si == 0 { 1500 } else { 300 };
            let events = trace(qi as u64 * 10 + si as u64, n, start, t, quota.burst_size());
            let clock = ManualClock::new();
            let local: HashMap<u32, Gcra> = (0..KEYS)
                .map(|k| (k, Gcra::with_clock(quota, clock.clone()).unwrap()))
                .collect();
            let run = format!("q{qi}s{si}");
            let (a, d, never) = replay("gcra", &clock, &local, &redis, &run, &events).await;
            eprintln!(
                "gcra quota {qi} start {si}: {a} admitted, {d} denied ({never} for ever), identical"
            );
            assert_eq!(never > 0, si == 1, "the end of the clock is reached");
            assert!(a > n / 20 && d > n / 20, "a trace exercising both: {a}/{d}");
        }
    }
}

#[tokio::test]
async fn sliding_counter_script_decides_as_the_local_counter() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    for (qi, quota) in quotas().into_iter().enumerate() {
        let redis = connect(
            &server,
            RedisLimiter::sliding_window_counter(quota).prefix("swc:"),
        )
        .await;
        let t = quota.emission_interval().unwrap().as_nanos() as u64;
        for (si, &start) in STARTS.iter().enumerate() {
            let n = if si == 0 { 1500 } else { 300 };
            let events = trace(
                100 + qi as u64 * 10 + si as u64,
                n,
                start,
                t,
                quota.burst_size(),
            );
            let clock = ManualClock::new();
            let local: HashMap<u32, SlidingWindowCounter> = (0..KEYS)
                .map(|k| {
                    (
                        k,
                        SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap(),
                    )
                })
                .collect();
            let run = format!("q{qi}s{si}");
            let (a, d, never) =
                replay("sliding counter", &clock, &local, &redis, &run, &events).await;
            eprintln!(
                "sliding counter quota {qi} start {si}: {a} admitted, {d} denied ({never} for ever), identical"
            );
            assert!(a > n / 20 && d > n / 20, "a trace exercising both: {a}/{d}");
        }
    }
}

/// Limits at the edge of the script's exact arithmetic: a `u32::MAX`
/// limit and a window near 2^52 ns, whose products overflow doubles.
#[tokio::test]
async fn sliding_counter_is_exact_with_products_beyond_doubles() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let quota = Quota::with_period(Duration::from_nanos(1)).burst(4_000_000_000);
    let redis = connect(
        &server,
        RedisLimiter::sliding_window_counter(quota).prefix("big:"),
    )
    .await;
    let clock = ManualClock::new();
    let local: HashMap<u32, SlidingWindowCounter> = (0..KEYS)
        .map(|k| {
            (
                k,
                SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap(),
            )
        })
        .collect();
    let mut rng = SmallRng::seed_from_u64(7);
    let mut now = STARTS[0];
    let events: Vec<Event> = (0..400)
        .map(|_| {
            now += rng.gen_range(0..2_000_000_000);
            (now, rng.gen_range(0..KEYS), rng.gen_range(0..1_500_000_000))
        })
        .collect();
    replay("big counts", &clock, &local, &redis, "big", &events).await;

    let w = (1u64 << 52) - 12_345;
    let quota = Quota::with_period(Duration::from_nanos(w / 3_000_000_000)).burst(3_000_000_000);
    let redis = connect(
        &server,
        RedisLimiter::sliding_window_counter(quota).prefix("long:"),
    )
    .await;
    let local: HashMap<u32, SlidingWindowCounter> = (0..KEYS)
        .map(|k| {
            (
                k,
                SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap(),
            )
        })
        .collect();
    let mut now = STARTS[0];
    let events: Vec<Event> = (0..400)
        .map(|_| {
            now += rng.gen_range(0..w / 50);
            (now, rng.gen_range(0..KEYS), rng.gen_range(0..1_000_000_000))
        })
        .collect();
    replay("long window", &clock, &local, &redis, "long", &events).await;
}
