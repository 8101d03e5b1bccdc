//! Behaviour tests: bad input, a clock going backwards, waiting, the
//! concurrency limiter's permits, and the keyed store's memory bound and
//! eviction order. Known answers (nginx, governor) are in `kat.rs`.

use std::time::Duration;

use sysblocks_rate_limiter::{
    BuildError, CheckError, Clock, ConcurrencyLimiter, Decision, FixedWindow, Gcra, Keyed,
    LeakyBucket, ManualClock, ManualSleeper, Quota, RateLimiter, SlidingWindowCounter,
    SlidingWindowLog, TokenBucket,
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

/// Defect 12: the fixed window's count could wrap (u32), admitting a
/// second 3,000,000,000-cell request in the same window.
#[test]
fn fixed_window_count_does_not_wrap() {
    let clock = ManualClock::new();
    let fw = FixedWindow::with_clock(Quota::per_minute(3_000_000_000), clock.clone()).unwrap();
    assert!(fw.check_n(3_000_000_000).unwrap().is_allowed());
    let d = fw.check_n(3_000_000_000).unwrap();
    assert!(!d.is_allowed());
    assert_eq!(d.remaining(), 0);
    assert_eq!(d.retry_after(), Some(Duration::from_secs(60)));
    let keyed =
        Keyed::builder(FixedWindow::with_clock(Quota::per_minute(u32::MAX), clock).unwrap())
            .build()
            .unwrap();
    assert!(keyed.check_key_n(&1, u32::MAX).unwrap().is_allowed());
    assert!(!keyed.check_key_n(&1, u32::MAX).unwrap().is_allowed());
    assert!(!keyed.check_key_n(&1, 1).unwrap().is_allowed());
}

/// Defect 13: the concurrency limiter's in-flight count could wrap,
/// granting a second `u32::MAX` units.
#[test]
fn concurrency_limiter_in_flight_does_not_wrap() {
    let c = ConcurrencyLimiter::new(u32::MAX).unwrap();
    let a = c.try_acquire_n(u32::MAX).unwrap().expect("fits");
    assert!(c.try_acquire_n(u32::MAX).unwrap().is_none());
    assert!(c.try_acquire().is_none());
    assert_eq!(c.in_flight(), u32::MAX);
    drop(a);
    assert_eq!(c.in_flight(), 0);
    let _b = c.try_acquire_n(u32::MAX - 1).unwrap().expect("fits");
    assert!(c.try_acquire().is_some());
}

/// Defect 14: a clock stepping back 10 s after the burst is used counts as
/// no time passed: each limiter reports the `retry_after` it would have
/// reported before the step and admits exactly then, measured from the
/// step (not 10 s later), directly and through the keyed store.
#[test]
fn clock_step_back_counts_as_no_time_passed() {
    // What each limiter says at t = 100 s right after its burst of 4, with
    // the clock standing still: the same after a step back to 90 s.
    let want = [
        ("gcra", 250 * MS),
        ("token", 250 * MS),
        ("leaky", 250 * MS),
        ("fixed", 1000 * MS),
        ("log", 1000 * MS),
        ("counter", 1250 * MS),
    ];
    let check = |name: &str,
                 check: &dyn Fn() -> sysblocks_rate_limiter::Decision,
                 clock: &ManualClock,
                 retry| {
        for _ in 0..4 {
            assert!(check().is_allowed(), "{name}");
        }
        clock.set(Duration::from_secs(90));
        let d = check();
        assert!(!d.is_allowed(), "{name}");
        assert_eq!(d.retry_after(), Some(retry), "{name}");
        clock.advance(retry - Duration::from_nanos(1));
        assert!(!check().is_allowed(), "{name}: admitted before retry_after");
        clock.advance(Duration::from_nanos(1));
        assert!(check().is_allowed(), "{name}: not admitted at retry_after");
    };
    for (i, (name, retry)) in want.into_iter().enumerate() {
        let clock = ManualClock::starting_at(Duration::from_secs(100));
        let (n, l) = all(Quota::per_second(4), &clock).swap_remove(i);
        assert_eq!(n, name);
        check(name, &|| l.check(), &clock, retry);
    }
    // The keyed store's cells, one per algorithm.
    macro_rules! keyed {
        ($name:literal, $ty:ident, $retry:expr) => {{
            let clock = ManualClock::starting_at(Duration::from_secs(100));
            let k = Keyed::builder($ty::with_clock(Quota::per_second(4), clock.clone()).unwrap())
                .shards(1)
                .build()
                .unwrap();
            check($name, &|| k.check_key(&7u8), &clock, $retry);
        }};
    }
    keyed!("keyed gcra", Gcra, 250 * MS);
    keyed!("keyed token", TokenBucket, 250 * MS);
    keyed!("keyed leaky", LeakyBucket, 250 * MS);
    keyed!("keyed fixed", FixedWindow, 1000 * MS);
    keyed!("keyed log", SlidingWindowLog, 1000 * MS);
    keyed!("keyed counter", SlidingWindowCounter, 1250 * MS);
}

/// A clock that replays scripted readings, then repeats the last one: a
/// thread whose reading went stale while another checked.
#[derive(Debug, Default)]
struct Script(std::sync::Mutex<(std::collections::VecDeque<u64>, u64)>);

impl Script {
    fn push(&self, readings: &[u64]) {
        self.0.lock().unwrap().0.extend(readings);
    }
}

impl Clock for Script {
    fn now_nanos(&self) -> u64 {
        let mut g = self.0.lock().unwrap();
        if let Some(n) = g.0.pop_front() {
            g.1 = n;
        }
        g.1
    }
}

/// A reading older than the state (another thread checked later while this
/// one was between its clock read and its update) is not taken for a step
/// back: the limiter reads the clock again and decides on the later time,
/// so it gives nothing away.
#[test]
fn stale_reading_is_not_taken_for_a_step_back() {
    const S: u64 = 1_000_000_000;
    for i in 0..6 {
        let script = std::sync::Arc::new(Script::default());
        script.push(&[101 * S]);
        let q = Quota::per_second(4);
        let c = std::sync::Arc::clone(&script);
        let l: Box<dyn RateLimiter> = match i {
            0 => Box::new(Gcra::with_clock(q, c).unwrap()),
            1 => Box::new(TokenBucket::with_clock(q, c).unwrap()),
            2 => Box::new(LeakyBucket::with_clock(q, c).unwrap()),
            3 => Box::new(FixedWindow::with_clock(q, c).unwrap()),
            4 => Box::new(SlidingWindowLog::with_clock(q, c).unwrap()),
            _ => Box::new(SlidingWindowCounter::with_clock(q, c).unwrap()),
        };
        for _ in 0..4 {
            assert!(l.check().is_allowed(), "{i}");
        }
        // The stale reading, then the clock as it is.
        script.push(&[100 * S, 101 * S]);
        assert!(!l.check().is_allowed(), "{i}");
        assert!(
            !l.check().is_allowed(),
            "{i}: the stale reading gave cells away"
        );
    }
}

/// Defect 15: at the end of the clock's range (`u64::MAX` ns) no limiter
/// admits more than its burst, and a denial that only an instant beyond
/// the range could cure says so (`RETRY_NEVER`) instead of asking for a
/// nanosecond's wait, so a waiting caller gets an error, not a spin.
#[test]
fn end_of_clock_admits_at_most_the_burst_and_never_spins() {
    let clock = ManualClock::new();
    let sleeper = ManualSleeper(clock.clone());
    for (name, l) in all(Quota::per_second(10), &clock) {
        clock.set(Duration::from_nanos(u64::MAX));
        let admitted = (0..100).filter(|_| l.check().is_allowed()).count();
        assert!(admitted <= 10, "{name}: {admitted}");
        let d = l.check();
        assert!(!d.is_allowed(), "{name}");
        assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER), "{name}");
        assert_eq!(
            l.wait_n_with(1, &sleeper),
            Err(CheckError::EndOfClock),
            "{name}"
        );
        clock.set(Duration::ZERO);
    }
    // Within a burst of the end: GCRA admits what its TAT can record.
    let end = ManualClock::starting_at(Duration::from_nanos(u64::MAX - 5 * 100_000_000));
    let g = Gcra::with_clock(Quota::per_second(10), end.clone()).unwrap();
    assert_eq!((0..100).filter(|_| g.check().is_allowed()).count(), 5);
    assert_eq!(g.check().retry_after(), Some(Decision::RETRY_NEVER));
    // A token bucket refilling one token per nanosecond, whose count
    // saturates at the end.
    let tb =
        TokenBucket::with_clock(Quota::per_second(1_000_000_000).burst(10), end.clone()).unwrap();
    end.set(Duration::from_nanos(u64::MAX));
    assert!((0..100).filter(|_| tb.check().is_allowed()).count() <= 10);
    assert_eq!(tb.check().retry_after(), Some(Decision::RETRY_NEVER));
    // A sliding counter whose windows are 2^63 ns: the second one ends
    // beyond the range.
    let clock = ManualClock::new();
    let swc = SlidingWindowCounter::with_clock(
        Quota::with_period(Duration::from_nanos(1 << 63)),
        clock.clone(),
    )
    .unwrap();
    let d = swc.check();
    assert!(d.is_allowed());
    assert_eq!(
        d.reset_after(),
        Decision::RETRY_NEVER,
        "2^64 is beyond the range"
    );
    let d = swc.check();
    assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER));
    clock.set(Duration::from_nanos(1 << 63));
    let d = swc.check();
    assert!(
        !d.is_allowed(),
        "the previous window's cell still weighs fully"
    );
    assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER));
    assert_eq!(d.reset_after(), Decision::RETRY_NEVER);
    // The same near the end of the clock with a one-second window.
    let clock = ManualClock::starting_at(Duration::from_nanos(u64::MAX - 1));
    let swc = SlidingWindowCounter::with_clock(Quota::per_second(1), clock).unwrap();
    assert!(swc.check().is_allowed());
    let d = swc.check();
    assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER));
    assert_eq!(d.reset_after(), Decision::RETRY_NEVER);
}

/// Defect 16: `delay(u32::MAX)` with a period above 2^32 ns overflowed the
/// free excess, so admitted requests were delayed by seconds.
#[test]
fn leaky_delay_beyond_u64_nanoseconds_never_delays() {
    let clock = ManualClock::new();
    let period = Duration::from_nanos((1 << 32) + 2);
    let lb = LeakyBucket::nginx(Quota::with_period(period), 3)
        .delay(u32::MAX)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..4 {
        let d = lb.check();
        assert!(d.is_allowed());
        assert_eq!(d.delay(), Duration::ZERO);
    }
    assert!(!lb.check().is_allowed());
    // delay(n) still delays the excess beyond n.
    let lb = LeakyBucket::nginx(Quota::with_period(period), 3)
        .delay(1)
        .clock(clock)
        .build()
        .unwrap();
    let delays: Vec<_> = (0..4).map(|_| lb.check().delay()).collect();
    assert_eq!(delays, [Duration::ZERO, Duration::ZERO, period, 2 * period]);
}
