//! Property tests: every algorithm against a plain reference model of its
//! published rule, its interval bound, exact `retry_after`, and dropping of
//! fresh-equivalent state; the direct window limiters (packed into one
//! word, or spilled into a mutex) against their keyed form.

use std::time::Duration;

use proptest::prelude::*;
use sysblocks_rate_limiter::{
    Algorithm, FixedWindow, Gcra, LeakyBucket, ManualClock, Quota, RateLimiter,
    SlidingWindowCounter, SlidingWindowLog, TokenBucket,
};

/// One arrival: time since the previous one, and its cost.
type Trace = Vec<(u64, u32)>;

/// The reference rule: given the admitted history, may `cost` pass at `now`?
type Reference = Box<dyn Fn(&[(u64, u32)], u64, u32) -> bool>;

/// What the test knows of an algorithm: its reference model (given the
/// admitted history, may `cost` pass at `now`?) and its bound on what any
/// closed interval of length `t` may admit.
struct Spec {
    name: &'static str,
    reference: Reference,
    bound: Box<dyn Fn(u64) -> u64>,
}

fn run<A: Algorithm>(alg: &A, spec: &Spec, trace: &Trace, start: u64, max_cost: u32)
where
    A::State: Clone,
{
    let mut now = start;
    let mut state = alg.fresh_state(now);
    let mut history: Vec<(u64, u32)> = Vec::new();
    for (i, &(gap, cost)) in trace.iter().enumerate() {
        now += gap;
        let cost = cost.min(max_cost);
        let want = (spec.reference)(&history, now, cost);
        let before = state.clone();
        let d = alg.decide(&mut state, now, cost).unwrap();
        assert_eq!(
            d.is_allowed(),
            want,
            "{}: step {i} at {now} cost {cost}",
            spec.name
        );
        if d.is_allowed() {
            // A cost of 0 passes and changes nothing.
            if cost > 0 {
                history.push((now, cost));
            }
        } else {
            // retry_after is exact: admitted then, not a nanosecond earlier.
            let r = d.retry_after().unwrap().as_nanos() as u64;
            assert!(r > 0);
            let at = alg.decide(&mut before.clone(), now + r, cost).unwrap();
            assert!(
                at.is_allowed(),
                "{}: step {i}: not admitted after retry_after {r}",
                spec.name
            );
            if r > 1 {
                let early = alg.decide(&mut before.clone(), now + r - 1, cost).unwrap();
                assert!(
                    !early.is_allowed(),
                    "{}: step {i}: admitted before retry_after {r}",
                    spec.name
                );
            }
        }
    }
    // No closed interval [a, b] admits more than the bound for b - a.
    for (i, &(a, _)) in history.iter().enumerate() {
        let mut sum = 0u64;
        for &(b, c) in &history[i..] {
            sum += u64::from(c);
            assert!(
                sum <= (spec.bound)(b - a),
                "{}: {sum} admitted in [{a}, {b}], bound {}",
                spec.name,
                (spec.bound)(b - a)
            );
        }
    }
}

/// Whenever the store may drop a state, a fresh key makes the same
/// decisions from then on.
fn fresh_equivalence<A: Algorithm>(
    alg: &A,
    prefix: &[(i64, u32)],
    suffix: &[(u64, u32)],
    max_cost: u32,
) where
    A::State: Clone,
{
    // The prefix may step the clock back; from the drop on it runs forward
    // ("at now or later").
    let mut now = 1_000u64;
    let mut state = alg.fresh_state(now);
    for &(gap, cost) in prefix {
        now = now.saturating_add_signed(gap);
        let _ = alg.decide(&mut state, now, cost.min(max_cost)).unwrap();
    }
    now += suffix[0].0;
    if !alg.is_fresh_equivalent(&state, now) {
        return;
    }
    let mut fresh = alg.fresh_state(now);
    let mut t = now;
    for (i, &(gap, cost)) in suffix.iter().enumerate() {
        if i > 0 {
            t += gap;
        }
        let a = alg.decide(&mut state, t, cost.min(max_cost)).unwrap();
        let b = alg.decide(&mut fresh, t, cost.min(max_cost)).unwrap();
        assert_eq!(a, b, "dropped state differs from a fresh key at step {i}");
    }
}

/// With a clock that may step back: every denial's `retry_after` is exact
/// for the state the check left (admitted then, not a nanosecond earlier),
/// and a step back never lets more through than the quota's burst plus
/// what the forward time since the first check earns (`bound` of the
/// forward time: the time a clock standing still at each step back would
/// have shown).
fn steps_back<A: Algorithm>(
    name: &str,
    alg: &A,
    trace: &[(i64, u32)],
    start: u64,
    max_cost: u32,
    bound: &dyn Fn(u64) -> u64,
) where
    A::State: Clone,
{
    let mut now = start;
    let mut forward = 0u64;
    let mut admitted = 0u64;
    let mut state = alg.fresh_state(now);
    for (i, &(gap, cost)) in trace.iter().enumerate() {
        if gap >= 0 {
            now += gap as u64;
            forward += gap as u64;
        } else {
            now = now.saturating_sub(gap.unsigned_abs());
        }
        let cost = cost.min(max_cost);
        let d = alg.decide(&mut state, now, cost).unwrap();
        if d.is_allowed() {
            admitted += u64::from(cost);
            assert!(
                admitted <= bound(forward),
                "{name}: step {i}: {admitted} admitted in {forward} ns of forward time"
            );
        } else {
            let r = d.retry_after().unwrap().as_nanos() as u64;
            assert!(r > 0);
            let at = alg.decide(&mut state.clone(), now + r, cost).unwrap();
            assert!(
                at.is_allowed(),
                "{name}: step {i} at {now}: not admitted after retry_after {r}"
            );
            if r > 1 {
                let early = alg.decide(&mut state.clone(), now + r - 1, cost).unwrap();
                assert!(
                    !early.is_allowed(),
                    "{name}: step {i} at {now}: admitted before retry_after {r}"
                );
            }
        }
    }
}

fn sum_where(h: &[(u64, u32)], f: impl Fn(u64) -> bool) -> u64 {
    h.iter()
        .filter(|&&(t, _)| f(t))
        .map(|&(_, c)| u64::from(c))
        .sum()
}

fn trace_strategy(max_gap: u64) -> impl Strategy<Value = Trace> {
    proptest::collection::vec(
        (prop_oneof![Just(0u64), 0..max_gap, 0..max_gap / 8], 0u32..6),
        1..160,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_algorithm_matches_its_model(
        cells in 1u32..20,
        burst in 1u32..8,
        trace in trace_strategy(400_000_000),
        start in 0u64..5_000_000_000,
        amount in 1u32..4,
    ) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(cells).burst(burst);
        let t = 1_000_000_000 / u64::from(cells);
        let b = u64::from(burst);
        let w = b * 1_000_000_000 / u64::from(cells);

        // GCRA: the virtual-scheduling rule, recomputed from the history.
        let gcra = Gcra::with_clock(quota, clock.clone()).unwrap();
        let spec = Spec {
            name: "gcra",
            reference: Box::new(move |h, now, n| {
                let mut tat = 0u64;
                for &(at, c) in h { tat = tat.max(at) + u64::from(c) * t; }
                tat.max(now) + u64::from(n) * t <= now + b * t
            }),
            bound: Box::new(move |d| b + d / t),
        };
        run(&gcra, &spec, &trace, start, burst);

        // Token bucket: tokens counted tick by tick.
        let interval = t * u64::from(amount);
        let tb = TokenBucket::builder()
            .capacity(burst)
            .refill(amount, Duration::from_nanos(interval))
            .initial(burst / 2)
            .clock(clock.clone())
            .build()
            .unwrap();
        let spec = Spec {
            name: "token",
            reference: Box::new(move |h, now, n| {
                let cap = i128::from(b);
                // The bucket was built with initial fill burst / 2.
                let mut tokens = cap / 2;
                let mut last = start / interval;
                let mut events: Vec<(u64, i128)> = h.iter().map(|&(at, c)| (at, i128::from(c))).collect();
                events.push((now, 0));
                let mut ok = false;
                for (k, &(at, c)) in events.iter().enumerate() {
                    let tick = at / interval;
                    tokens = (tokens + i128::from(tick - last) * i128::from(amount)).min(cap);
                    last = tick;
                    if k + 1 == events.len() {
                        ok = tokens >= i128::from(n);
                    } else {
                        tokens -= c;
                    }
                }
                ok
            }),
            bound: Box::new(move |d| b + u64::from(amount) * d.div_ceil(interval)),
        };
        run(&tb, &spec, &trace, start, burst);

        // Leaky bucket: nginx's excess rule, request by request.
        let lb = LeakyBucket::with_clock(quota, clock.clone()).unwrap();
        let spec = Spec {
            name: "leaky",
            reference: Box::new(move |h, now, n| {
                let mut state: Option<(i128, u64)> = None;
                let excess_after = |s: Option<(i128, u64)>, at: u64, c: u32| -> i128 {
                    let extra = i128::from(c.saturating_sub(1)) * i128::from(t);
                    match s {
                        None => extra,
                        Some((e, last)) => (e - i128::from(at - last) + i128::from(t)).max(0) + extra,
                    }
                };
                for &(at, c) in h { state = Some((excess_after(state, at, c), at)); }
                n == 0 || excess_after(state, now, n) <= i128::from((b - 1) * t)
            }),
            bound: Box::new(move |d| b + d / t),
        };
        run(&lb, &spec, &trace, start, burst);

        // Fixed window: the sum in the current window.
        let fw = FixedWindow::with_clock(quota, clock.clone()).unwrap();
        let spec = Spec {
            name: "fixed",
            reference: Box::new(move |h, now, n| sum_where(h, |at| at / w == now / w) + u64::from(n) <= b),
            bound: Box::new(move |d| b * (d / w + 2)),
        };
        run(&fw, &spec, &trace, start, burst);

        // Sliding log: the sum in (now - W, now].
        let log = SlidingWindowLog::with_clock(quota, clock.clone()).unwrap();
        let spec = Spec {
            name: "log",
            reference: Box::new(move |h, now, n| sum_where(h, |at| at + w > now) + u64::from(n) <= b),
            bound: Box::new(move |d| b + d * b / w),
        };
        run(&log, &spec, &trace, start, burst);

        // Sliding counter: previous and current fixed-window sums, weighted.
        let swc = SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap();
        let spec = Spec {
            name: "counter",
            reference: Box::new(move |h, now, n| {
                let idx = now / w;
                let prev = sum_where(h, |at| idx > 0 && at / w == idx - 1);
                let cur = sum_where(h, |at| at / w == idx);
                let e = now - idx * w;
                u128::from(prev) * u128::from(w - e) + u128::from(cur + u64::from(n)) * u128::from(w)
                    <= u128::from(b) * u128::from(w)
            }),
            bound: Box::new(move |d| b + d * b / w),
        };
        run(&swc, &spec, &trace, start, burst);
    }

    #[test]
    fn steps_back_keep_retry_after_exact_and_admit_no_burst(
        cells in 1u32..20,
        burst in 1u32..8,
        trace in proptest::collection::vec(
            (prop_oneof![Just(0i64), 0..400_000_000i64, -3_000_000_000..0i64, -300_000_000..0i64], 0u32..6),
            1..120,
        ),
        start in 0u64..5_000_000_000,
    ) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(cells).burst(burst);
        let t = 1_000_000_000 / u64::from(cells);
        let b = u64::from(burst);
        let w = b * 1_000_000_000 / u64::from(cells);
        // Forward time `f` earns at most `f / t` cells after the burst (the
        // windows: a full window's worth per window begun, plus one for the
        // boundary).
        let rate = move |f: u64| b + f / t + 1;
        let windows = move |f: u64| b * (f / w + 2);
        steps_back("gcra", &Gcra::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &rate);
        steps_back("token", &TokenBucket::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &rate);
        steps_back("leaky", &LeakyBucket::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &rate);
        steps_back("fixed", &FixedWindow::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &windows);
        steps_back("log", &SlidingWindowLog::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &windows);
        steps_back("counter", &SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap(), &trace, start, burst, &windows);
    }

    #[test]
    fn dropped_state_is_indistinguishable_from_fresh(
        cells in 1u32..20,
        burst in 1u32..8,
        trace in trace_strategy(600_000_000),
        split_at in 0.0f64..1.0,
        back in proptest::collection::vec((0..3_000_000_000i64, 0u32..6), 0..40),
    ) {
        let clock = ManualClock::new();
        let quota = Quota::per_second(cells).burst(burst);
        let split = ((trace.len() - 1) as f64 * split_at) as usize;
        let forward: Vec<(i64, u32)> = trace[..split].iter().map(|&(g, c)| (g as i64, c)).collect();
        let mut steps_back = back.clone();
        for (i, (g, _)) in steps_back.iter_mut().enumerate() {
            // Every third arrival steps back by its gap.
            if i % 3 == 2 {
                *g = -*g;
            }
        }
        let suffix = &trace[split..];
        let l = Gcra::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
        let l = TokenBucket::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
        let l = LeakyBucket::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
        let l = FixedWindow::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
        let l = SlidingWindowLog::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
        let l = SlidingWindowCounter::with_clock(quota, clock.clone()).unwrap();
        fresh_equivalence(&l, &forward, suffix, burst);
        fresh_equivalence(&l, &steps_back, suffix, burst);
    }
}

/// The direct limiter (its packed word, and the mutex once the state
/// spills) decides as the keyed state does, step by step, on the same
/// clock readings; `trace` may step the clock back, which spills the
/// state, and `start` may lie near the end of the clock's range, where
/// window indices no longer pack.
fn same_as_keyed<L: RateLimiter + Algorithm>(
    l: &L,
    clock: &ManualClock,
    start: u64,
    trace: &[(i64, u32)],
) where
    L::State: std::fmt::Debug,
{
    let mut now = start;
    clock.set(Duration::from_nanos(now));
    let mut state = l.fresh_state(now);
    for (i, &(gap, cost)) in trace.iter().enumerate() {
        now = now.saturating_add_signed(gap);
        clock.set(Duration::from_nanos(now));
        let want = l.decide(&mut state, now, cost);
        // `check` takes a path of its own for a cost of 1.
        let got = if cost == 1 {
            Ok(l.check())
        } else {
            l.check_n(cost)
        };
        assert_eq!(got, want, "step {i} at {now} cost {cost}: {state:?}");
    }
}

fn window_quota_strategy() -> impl Strategy<Value = Quota> {
    (
        1u32..6,
        prop_oneof![
            4 => 1u64..2_000,
            1 => (1u64 << 40)..(1u64 << 60),
            1 => Just(1u64 << 63),
        ],
        prop_oneof![Just(1u32), 1u32..8, Just(u32::MAX)],
    )
        .prop_map(|(cells, period, burst)| {
            Quota::with_period(Duration::from_nanos(
                period.saturating_mul(u64::from(cells)),
            ))
            .burst(burst)
        })
}

fn window_trace_strategy() -> impl Strategy<Value = Vec<(i64, u32)>> {
    prop::collection::vec(
        (prop_oneof![8 => 0i64..3_000, 1 => -3_000i64..0], 0u32..4),
        1..60,
    )
}

proptest! {
    #[test]
    fn packed_windows_decide_as_the_keyed_state(
        quota in window_quota_strategy(),
        trace in window_trace_strategy(),
        start in prop_oneof![0u64..10_000, (u64::MAX - 20_000)..u64::MAX],
    ) {
        // A window beyond `u64` nanoseconds is a build error.
        let clock = ManualClock::new();
        if let Ok(fw) = FixedWindow::with_clock(quota, clock.clone()) {
            same_as_keyed(&fw, &clock, start, &trace);
        }
        if let Ok(swc) = SlidingWindowCounter::with_clock(quota, clock.clone()) {
            same_as_keyed(&swc, &clock, start, &trace);
        }
    }
}
