//! Behaviour tests: bad input, a clock going backwards, waiting, the
//! concurrency limiter's permits, and the keyed store's memory bound and
//! eviction order. Known answers (nginx, governor) are in `kat.rs`.

use std::time::Duration;

use sysblocks_rate_limiter::{
    BuildError, CheckError, Clock, ConcurrencyLimiter, FixedWindow, Gcra, Keyed, LeakyBucket,
    ManualClock, ManualSleeper, Quota, RateLimiter, SlidingWindowCounter, SlidingWindowLog,
    TokenBucket,
};

const MS: Duration = Duration::from_millis(1);

fn all(quota: Quota, clock: &ManualClock) -> Vec<(&'static str, Box<dyn RateLimiter>)> {
    vec![
        (
            "gcra",
            Box::new(Gcra::with_clock(quota, clock.clone()).unwrap()),
        ),
        (
            "token",
            Box::new(TokenBucket::with_clock(quota, clock.clone()).unwrap()),
        ),
        (
            "leaky",
            Box::new(LeakyBucket::with_clock(quota, clock.clone()).unwrap()),
        ),
        (
            "fixed",
            Box::new(FixedWindow::with_clock(quota, clock.clone()).unwrap()),
        ),
        (
            "log",
            Box::new(SlidingWindowLog::with_clock(quota, clock.clone()).unwrap()),
        ),
        (
            "counter",
            Box::new(SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap()),
        ),
    ]
}

#[test]
fn bad_quotas_are_typed_errors() {
    let zero = |s| Err(BuildError::Zero { setting: s });
    assert_eq!(Gcra::new(Quota::per_second(0)).map(|_| ()), zero("rate"));
    assert_eq!(
        Gcra::new(Quota::per_second(5).burst(0)).map(|_| ()),
        zero("burst")
    );
    assert_eq!(
        Gcra::new(Quota::with_period(Duration::ZERO)).map(|_| ()),
        zero("period")
    );
    assert_eq!(
        Gcra::new(Quota::with_period(Duration::from_nanos(1)).burst(u32::MAX)).map(|_| ()),
        Ok(())
    );
    // Beyond one cell per nanosecond (governor's open issue).
    assert_eq!(
        Gcra::new(Quota::per_second(2_000_000_000)).map(|_| ()),
        Err(BuildError::RateTooHigh)
    );
    assert_eq!(
        Gcra::new(Quota::per_second(1_000_000_000)).map(|_| ()),
        Ok(())
    );
    assert!(matches!(
        Gcra::new(Quota::with_period(Duration::MAX)),
        Err(BuildError::TooLong { .. })
    ));
    assert!(matches!(
        Gcra::new(Quota::with_period(Duration::from_secs(1 << 33)).burst(4)),
        Err(BuildError::TooLong { setting: "burst" })
    ));
    for q in [Quota::per_minute(0), Quota::per_second(3).burst(0)] {
        assert!(TokenBucket::new(q).is_err());
        assert!(LeakyBucket::new(q).is_err());
        assert!(FixedWindow::new(q).is_err());
        assert!(SlidingWindowLog::new(q).is_err());
        assert!(SlidingWindowCounter::new(q).is_err());
    }
    assert_eq!(
        TokenBucket::builder()
            .capacity(5)
            .refill(1, MS)
            .initial(6)
            .build()
            .map(|_| ()),
        Err(BuildError::InitialExceedsCapacity {
            initial: 6,
            capacity: 5
        })
    );
    assert_eq!(
        TokenBucket::builder()
            .capacity(5)
            .refill(2, Duration::from_nanos(1))
            .build()
            .map(|_| ()),
        Err(BuildError::RateTooHigh)
    );
    assert!(TokenBucket::builder().refill(1, MS).build().is_err());
    assert!(TokenBucket::builder().capacity(1).build().is_err());
    assert!(ConcurrencyLimiter::new(0).is_err());
    let g = Gcra::new(Quota::per_second(1)).unwrap();
    assert!(Keyed::builder(g).max_keys(0).build::<u32>().is_err());
    assert_eq!(
        BuildError::RateTooHigh.to_string(),
        "rate exceeds one cell per nanosecond, the clock's resolution"
    );
}

#[test]
fn cost_beyond_limit_is_an_error_not_a_denial() {
    let clock = ManualClock::new();
    for (name, l) in all(Quota::per_second(5), &clock) {
        // LeakyBucket::new(quota) is nginx burst 4: 1 + 4 at once.
        let limit = 5;
        assert_eq!(
            l.check_n(6),
            Err(CheckError::CostExceedsLimit { cost: 6, limit }),
            "{name}"
        );
        assert!(l.check_n(5).unwrap().is_allowed(), "{name}");
        assert!(
            l.check_n(0).unwrap().is_allowed(),
            "{name}: cost 0 always passes"
        );
        assert!(!l.check_n(1).unwrap().is_allowed(), "{name}");
    }
    let c = ConcurrencyLimiter::new(3).unwrap();
    assert!(c.try_acquire_n(4).is_err());
}

/// A clock that steps back never panics and never admits more than the same
/// limiter admits with the clock held still.
#[test]
fn clock_going_backwards_admits_no_burst() {
    let quota = Quota::per_second(4);
    let held = ManualClock::starting_at(Duration::from_secs(100));
    let back = ManualClock::starting_at(Duration::from_secs(100));
    for ((name, a), (_, b)) in all(quota, &held).into_iter().zip(all(quota, &back)) {
        // Use half the budget, then step the second clock back by 80 s.
        for _ in 0..2 {
            assert!(a.check().is_allowed());
            assert!(b.check().is_allowed());
        }
        back.set(Duration::from_secs(20));
        let admitted_held = (0..20).filter(|_| a.check().is_allowed()).count();
        let admitted_back = (0..20).filter(|_| b.check().is_allowed()).count();
        assert!(
            admitted_back <= admitted_held,
            "{name}: {admitted_back} > {admitted_held}"
        );
        back.set(Duration::from_secs(100));
        held.set(Duration::from_secs(100));
    }
}

#[test]
fn wait_n_sleeps_exactly_until_admitted() {
    let clock = ManualClock::new();
    let sleeper = ManualSleeper(clock.clone());
    for (name, l) in all(Quota::per_second(10), &clock) {
        clock.advance(Duration::from_secs(100));
        let start = clock.now();
        for _ in 0..10 {
            l.wait_n_with(1, &sleeper).unwrap();
        }
        assert_eq!(clock.now(), start, "{name}: the burst needs no wait");
        let d = l.check();
        let want = d.retry_after().unwrap();
        l.wait_n_with(1, &sleeper).unwrap();
        assert_eq!(
            clock.now() - start,
            want,
            "{name}: waited exactly retry_after"
        );
        assert_eq!(
            l.wait_n_with(11, &sleeper).unwrap_err(),
            CheckError::CostExceedsLimit {
                cost: 11,
                limit: 10
            }
        );
    }
    // A delaying leaky bucket: wait_n returns after the delay.
    let lb = LeakyBucket::nginx(Quota::per_second(10), 3)
        .clock(clock.clone())
        .build()
        .unwrap();
    let start = clock.now();
    // Each caller waits out its delay before the next arrives, and the
    // excess drains meanwhile: delays 0, 100, 100, 100 ms.
    for k in 0..4u32 {
        let d = lb.wait_n_with(1, &sleeper).unwrap();
        assert_eq!(d.delay(), 100 * MS * k.min(1));
    }
    assert_eq!(clock.now() - start, 300 * MS);
}

#[cfg(feature = "async")]
#[tokio::test(flavor = "current_thread")]
async fn until_ready_n_waits_on_the_given_sleeper() {
    let clock = ManualClock::new();
    let g = Gcra::with_clock(Quota::per_second(4), clock.clone()).unwrap();
    let c2 = clock.clone();
    for _ in 0..6 {
        sysblocks_rate_limiter::until_ready_n_with(&g, 1, |d| {
            c2.advance(d);
            std::future::ready(())
        })
        .await
        .unwrap();
    }
    assert_eq!(clock.now(), 500 * MS);
    // The tokio-timer version on the real clock, with a burst that needs no wait.
    let real = Gcra::new(Quota::per_second(1000)).unwrap();
    let d = sysblocks_rate_limiter::until_ready_n(&real, 3)
        .await
        .unwrap();
    assert!(d.is_allowed());
}

#[test]
fn concurrency_permits_release_on_drop() {
    let c = ConcurrencyLimiter::new(3).unwrap();
    let a = c.try_acquire_n(2).unwrap().unwrap();
    assert!(c.try_acquire_n(2).unwrap().is_none());
    let b = c.try_acquire().unwrap();
    assert!(c.try_acquire().is_none());
    assert_eq!(c.in_flight(), 3);
    drop(a);
    assert_eq!(c.in_flight(), 1);
    drop(b);
    assert_eq!(c.in_flight(), 0);
}

/// An attacker rotating keys cannot grow the store past `max_keys`, and
/// state equivalent to a fresh key is dropped without any call.
#[test]
fn keyed_memory_stays_bounded() {
    let clock = ManualClock::new();
    let g = Gcra::with_clock(Quota::per_second(10), clock.clone()).unwrap();
    let keyed = Keyed::builder(g)
        .max_keys(1000)
        .shards(4)
        .seed(1)
        .build()
        .unwrap();
    for k in 0..100_000u64 {
        assert!(keyed.check_key(&k).is_allowed());
        assert!(keyed.len() <= 1000);
    }
    // A full shard evicts its least recently seen eighth at once.
    assert!(keyed.len() >= 1000 * 7 / 8 - 4, "{}", keyed.len());
    assert!(keyed.evictions() >= 99_000);
    // Two seconds later every state is fresh-equivalent: 800 new live keys
    // replace them and no live state is evicted.
    clock.advance(Duration::from_secs(2));
    let before = keyed.evictions();
    for k in 0..800u64 {
        keyed.check_key(&(1_000_000 + k));
        clock.advance(Duration::from_micros(1));
    }
    assert_eq!(keyed.evictions(), before, "only stale states were dropped");
    // Idle keys are dropped by the store itself as new keys arrive: a
    // shard sweeps when it fills, so only live keys are ever evicted.
    clock.advance(Duration::from_secs(2));
    for k in 0..300u64 {
        keyed.check_key(&(5_000_000 + k));
    }
    assert_eq!(keyed.evictions(), before);
    assert!(keyed.len() <= 1000);
    keyed.sweep();
    assert_eq!(keyed.len(), 300);
}

/// The cap evicts the least recently seen key: a denied check counts as
/// seen as much as an admitted one.
#[test]
fn keyed_cap_evicts_the_least_recently_seen() {
    let clock = ManualClock::new();
    let g = Gcra::with_clock(Quota::per_minute(1), clock.clone()).unwrap();
    let keyed = Keyed::builder(g).max_keys(3).shards(1).build().unwrap();
    let at = |ms: u64| clock.set(Duration::from_millis(ms));
    for (k, ms) in [(1u32, 0), (2, 1000), (3, 2000)] {
        at(ms);
        assert!(keyed.check_key(&k).is_allowed());
    }
    at(2500);
    assert!(!keyed.check_key(&1).is_allowed()); // denied, but seen: 1 is the newest
    at(3000);
    assert!(keyed.check_key(&4).is_allowed()); // full: evicts 2, seen at 1 s
    assert_eq!(keyed.evictions(), 1);
    at(4000);
    assert!(!keyed.check_key(&1).is_allowed(), "1 was kept");
    at(5000);
    assert!(!keyed.check_key(&3).is_allowed(), "3 was kept");
    at(6000);
    assert!(
        keyed.check_key(&2).is_allowed(),
        "2 was evicted, so it is new again"
    );
    // That insertion evicted 4 (seen at 3 s), then this one evicts 1 (4 s).
    assert_eq!(keyed.evictions(), 2);
    at(7000);
    assert!(keyed.check_key(&4).is_allowed(), "4 was evicted");
    assert_eq!(keyed.evictions(), 3);
    at(8000);
    assert!(!keyed.check_key(&3).is_allowed(), "3 was kept");
    assert!(!keyed.check_key(&2).is_allowed(), "2 was kept");
    assert!(keyed.check_key(&1).is_allowed(), "1 was evicted");
    assert_eq!(keyed.len(), 3);
}
