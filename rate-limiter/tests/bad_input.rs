//! Bad input and edge settings: every case ends in a typed error or in the
//! behaviour the docs state. Each runs in its own child process under an
//! address-space limit and a timeout (`sysblocks_testkit::run_isolated`),
//! so a panic, an abort on a runaway allocation or a hang (a waiter
//! spinning on a 1 ns `retry_after`, say) fails that case.

use std::time::Duration;

use sysblocks_rate_limiter::{
    BuildError, CheckError, Clock, ConcurrencyLimiter, Decision, FixedWindow, Gcra, Keyed,
    LeakyBucket, ManualClock, ManualSleeper, Quota, RateLimiter, SlidingWindowCounter,
    SlidingWindowLog, TokenBucket,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

const S: Duration = Duration::from_secs(1);
const END: Duration = Duration::from_nanos(u64::MAX);

// ---- helpers ---------------------------------------------------------------

type Built = Result<Box<dyn RateLimiter>, BuildError>;

fn boxed<L: RateLimiter + 'static>(r: Result<L, BuildError>) -> Built {
    r.map(|l| Box::new(l) as Box<dyn RateLimiter>)
}

/// The six rate limiters built from `quota` on `clock`.
fn six(quota: Quota, clock: &ManualClock) -> Vec<(&'static str, Built)> {
    vec![
        ("gcra", boxed(Gcra::with_clock(quota, clock.clone()))),
        (
            "token",
            boxed(TokenBucket::with_clock(quota, clock.clone())),
        ),
        (
            "leaky",
            boxed(LeakyBucket::with_clock(quota, clock.clone())),
        ),
        (
            "fixed",
            boxed(FixedWindow::with_clock(quota, clock.clone())),
        ),
        (
            "log",
            boxed(SlidingWindowLog::with_clock(quota, clock.clone())),
        ),
        (
            "counter",
            boxed(SlidingWindowCounter::with_clock(quota, clock.clone())),
        ),
    ]
}

/// Every limiter refuses `quota` with `want`, and so does
/// `Quota::validate`.
fn all_refuse(quota: Quota, want: &BuildError) {
    assert_eq!(quota.validate().as_ref(), Err(want));
    for (name, l) in six(quota, &ManualClock::new()) {
        assert_eq!(l.err().as_ref(), Some(want), "{name}");
    }
}

/// Every limiter builds from `quota` and admits its burst at once and then
/// no more, with a truthful `retry_after` unless it is `RETRY_NEVER`.
fn all_admit_the_burst(quota: Quota, clock: &ManualClock) {
    let burst = quota.burst_size();
    for (name, l) in six(quota, clock) {
        let l = l.unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = l.check_n(burst).unwrap();
        assert!(d.is_allowed(), "{name}");
        assert_eq!(d.limit(), burst, "{name}");
        assert_eq!(d.remaining(), 0, "{name}");
        assert!(l.check_n(0).unwrap().is_allowed(), "{name}: cost 0");
        if burst < u32::MAX {
            assert_eq!(
                l.check_n(burst + 1),
                Err(CheckError::CostExceedsLimit {
                    cost: burst + 1,
                    limit: burst
                }),
                "{name}"
            );
        }
        admitted_at_retry_after(name, &*l, clock);
    }
}

/// The next check is denied; it is admitted exactly at its `retry_after`
/// (read from the same state, a nanosecond earlier it is not), unless that
/// is `RETRY_NEVER`, for which a waiter gets `EndOfClock`.
fn admitted_at_retry_after(name: &str, l: &dyn RateLimiter, clock: &ManualClock) {
    let d = l.check();
    assert!(!d.is_allowed(), "{name}: over the burst");
    let r = d.retry_after().expect("a denial says when");
    assert!(r > Duration::ZERO, "{name}");
    if r == Decision::RETRY_NEVER {
        let sleeper = ManualSleeper(clock.clone());
        assert_eq!(
            l.wait_n_with(1, &sleeper),
            Err(CheckError::EndOfClock),
            "{name}"
        );
        return;
    }
    clock.advance(r - Duration::from_nanos(1));
    assert!(!l.check().is_allowed(), "{name}: before retry_after {r:?}");
    clock.advance(Duration::from_nanos(1));
    assert!(l.check().is_allowed(), "{name}: at retry_after {r:?}");
}

/// Every limiter built on `clock` admits at most `burst` of 100 unit checks
/// at the clock's current reading, then denies; at the end of the range the
/// denial is `RETRY_NEVER` and a waiter gets `EndOfClock`.
fn at_most_the_burst(quota: Quota, clock: &ManualClock) {
    let burst = quota.burst_size() as usize;
    for (name, l) in six(quota, clock) {
        let l = l.unwrap();
        let admitted = (0..100).filter(|_| l.check().is_allowed()).count();
        assert!(admitted <= burst, "{name}: {admitted} > {burst}");
        let d = l.check();
        assert!(!d.is_allowed(), "{name}");
        if clock.now() == END {
            assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER), "{name}");
            let sleeper = ManualSleeper(clock.clone());
            assert_eq!(
                l.wait_n_with(1, &sleeper),
                Err(CheckError::EndOfClock),
                "{name}"
            );
        }
    }
}

fn keyed_gcra(quota: Quota, clock: &ManualClock) -> sysblocks_rate_limiter::KeyedBuilder<Gcra> {
    Keyed::builder(Gcra::with_clock(quota, clock.clone()).unwrap())
}

fn token(capacity: u32, amount: u32, interval: Duration) -> Result<TokenBucket, BuildError> {
    TokenBucket::builder()
        .capacity(capacity)
        .refill(amount, interval)
        .clock(ManualClock::new())
        .build()
}

// ---- the cases -------------------------------------------------------------

const CASES: &[Case] = &[
    // Quotas: rate, burst and period at 0, 1 and MAX.
    Case {
        name: "quota_rate_0",
        run: || {
            let zero = BuildError::Zero { setting: "rate" };
            all_refuse(Quota::per_second(0), &zero);
            all_refuse(Quota::per_hour(0).burst(5), &zero);
            assert_eq!(Quota::per_minute(0).emission_interval(), Err(zero));
        },
    },
    Case {
        name: "quota_rate_1",
        run: || {
            all_admit_the_burst(Quota::per_second(1), &ManualClock::new());
            all_admit_the_burst(Quota::per_hour(1), &ManualClock::new());
        },
    },
    Case {
        name: "quota_rate_max_per_second_is_above_one_per_ns",
        run: || {
            all_refuse(Quota::per_second(u32::MAX), &BuildError::RateTooHigh);
            assert_eq!(
                Quota::per_second(u32::MAX).emission_interval(),
                Err(BuildError::RateTooHigh)
            );
        },
    },
    Case {
        name: "quota_rate_max_per_minute_and_hour",
        run: || {
            // 13 ns and 838 ns per cell, bursts of u32::MAX cells.
            all_admit_the_burst(Quota::per_minute(u32::MAX), &ManualClock::new());
            all_admit_the_burst(Quota::per_hour(u32::MAX), &ManualClock::new());
        },
    },
    Case {
        name: "quota_burst_0",
        run: || {
            all_refuse(
                Quota::per_second(10).burst(0),
                &BuildError::Zero { setting: "burst" },
            )
        },
    },
    Case {
        name: "quota_burst_1",
        run: || all_admit_the_burst(Quota::per_second(10).burst(1), &ManualClock::new()),
    },
    Case {
        name: "quota_burst_max",
        run: || {
            // u32::MAX seconds of cells fit in u64 nanoseconds.
            all_admit_the_burst(Quota::per_second(1).burst(u32::MAX), &ManualClock::new());
            // u32::MAX hours do not.
            all_refuse(
                Quota::per_hour(1).burst(u32::MAX),
                &BuildError::TooLong { setting: "burst" },
            );
        },
    },
    Case {
        name: "quota_period_zero",
        run: || {
            all_refuse(
                Quota::with_period(Duration::ZERO),
                &BuildError::Zero { setting: "period" },
            );
        },
    },
    Case {
        name: "quota_period_1ns",
        run: || {
            all_admit_the_burst(
                Quota::with_period(Duration::from_nanos(1)),
                &ManualClock::new(),
            )
        },
    },
    Case {
        name: "quota_period_duration_max",
        run: || {
            all_refuse(
                Quota::with_period(Duration::MAX),
                &BuildError::TooLong { setting: "period" },
            );
        },
    },
    Case {
        name: "quota_period_u64_max_ns",
        run: || {
            // One cell per 584 years: admitted once; the next is beyond the
            // clock's range (or, for a window ending exactly at its last
            // instant, a wait of the whole range, which reads the same).
            let q = Quota::with_period(END);
            for (name, l) in six(q, &ManualClock::new()) {
                let l = l.unwrap();
                assert!(l.check().is_allowed(), "{name}");
                let d = l.check();
                assert!(!d.is_allowed(), "{name}");
                assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER), "{name}");
            }
            all_refuse(q.burst(2), &BuildError::TooLong { setting: "burst" });
        },
    },
    Case {
        name: "cost_0_1_max",
        run: || {
            let clock = ManualClock::new();
            for (name, l) in six(Quota::per_second(5), &clock) {
                let l = l.unwrap();
                let d = l.check_n(0).unwrap();
                assert!(d.is_allowed(), "{name}");
                assert_eq!(d.remaining(), 5, "{name}: cost 0 changes nothing");
                assert_eq!(l.check_n(1).unwrap().remaining(), 4, "{name}");
                assert_eq!(
                    l.check_n(u32::MAX),
                    Err(CheckError::CostExceedsLimit {
                        cost: u32::MAX,
                        limit: 5
                    }),
                    "{name}"
                );
                let sleeper = ManualSleeper(clock.clone());
                assert!(l.wait_n_with(u32::MAX, &sleeper).is_err(), "{name}");
                assert!(l.wait_n_with(0, &sleeper).unwrap().is_allowed(), "{name}");
            }
        },
    },
    // The token bucket's builder.
    Case {
        name: "token_capacity_0_1_max",
        run: || {
            assert_eq!(
                token(0, 1, S).err(),
                Some(BuildError::Zero {
                    setting: "capacity"
                })
            );
            let one = token(1, 1, S).unwrap();
            assert!(one.check().is_allowed());
            assert!(!one.check().is_allowed());
            let max = token(u32::MAX, 1, S).unwrap();
            assert!(max.check_n(u32::MAX).unwrap().is_allowed());
            assert_eq!(max.check().retry_after(), Some(S));
        },
    },
    Case {
        name: "token_refill_amount_0_1_max",
        run: || {
            assert_eq!(
                token(5, 0, S).err(),
                Some(BuildError::Zero {
                    setting: "refill amount"
                })
            );
            assert!(token(5, 1, S).is_ok());
            // More than one token per nanosecond.
            assert_eq!(token(5, u32::MAX, S).err(), Some(BuildError::RateTooHigh));
            // u32::MAX tokens every 5 s: one tick refills the whole bucket.
            let clock = ManualClock::new();
            let b = TokenBucket::builder()
                .capacity(u32::MAX)
                .refill(u32::MAX, 5 * S)
                .clock(clock.clone())
                .build()
                .unwrap();
            assert!(b.check_n(u32::MAX).unwrap().is_allowed());
            assert_eq!(b.check().retry_after(), Some(5 * S));
            clock.advance(5 * S);
            assert!(b.check_n(u32::MAX).unwrap().is_allowed());
        },
    },
    Case {
        name: "token_refill_interval_zero_1ns_max",
        run: || {
            assert_eq!(
                token(5, 1, Duration::ZERO).err(),
                Some(BuildError::Zero {
                    setting: "refill interval"
                })
            );
            assert_eq!(
                token(5, 1, Duration::MAX).err(),
                Some(BuildError::TooLong {
                    setting: "refill interval"
                })
            );
            let fast = token(5, 1, Duration::from_nanos(1)).unwrap();
            assert!(fast.check_n(5).unwrap().is_allowed());
            assert_eq!(fast.check().retry_after(), Some(Duration::from_nanos(1)));
            // One token per u64::MAX ns: the first refill is the clock's last
            // instant.
            let slow = token(1, 1, END).unwrap();
            assert!(slow.check().is_allowed());
            assert_eq!(slow.check().retry_after(), Some(Decision::RETRY_NEVER));
        },
    },
    Case {
        name: "token_initial_0_1_max",
        run: || {
            let b = |initial| {
                TokenBucket::builder()
                    .capacity(5)
                    .refill(1, S)
                    .initial(initial)
                    .clock(ManualClock::new())
                    .build()
            };
            let empty = b(0).unwrap();
            assert_eq!(empty.check().retry_after(), Some(S));
            let one = b(1).unwrap();
            assert!(one.check().is_allowed());
            assert!(!one.check().is_allowed());
            assert_eq!(
                b(u32::MAX).err(),
                Some(BuildError::InitialExceedsCapacity {
                    initial: u32::MAX,
                    capacity: 5
                })
            );
        },
    },
    // The leaky bucket's builder.
    Case {
        name: "leaky_rate_quota_errors",
        run: || {
            let build = |q: Quota| LeakyBucket::nginx(q, 2).build().err();
            assert_eq!(
                build(Quota::per_second(0)),
                Some(BuildError::Zero { setting: "rate" })
            );
            assert_eq!(
                build(Quota::with_period(Duration::ZERO)),
                Some(BuildError::Zero { setting: "period" })
            );
            assert_eq!(
                build(Quota::with_period(Duration::MAX)),
                Some(BuildError::TooLong { setting: "period" })
            );
            assert_eq!(
                build(Quota::per_second(u32::MAX)),
                Some(BuildError::RateTooHigh)
            );
            // The rate quota's burst is not used: 0 is fine.
            assert!(build(Quota::per_second(1).burst(0)).is_none());
        },
    },
    Case {
        name: "leaky_nginx_burst_0_1_max",
        run: || {
            let clock = ManualClock::new();
            let lb = |burst| {
                LeakyBucket::nginx(Quota::per_second(10), burst)
                    .nodelay()
                    .clock(clock.clone())
                    .build()
            };
            let zero = lb(0).unwrap();
            assert!(zero.check().is_allowed());
            assert_eq!(
                zero.check_n(2),
                Err(CheckError::CostExceedsLimit { cost: 2, limit: 1 })
            );
            admitted_at_retry_after("burst 0", &zero, &clock);
            let one = lb(1).unwrap();
            assert!(one.check_n(2).unwrap().is_allowed());
            admitted_at_retry_after("burst 1", &one, &clock);
            // u32::MAX excess intervals of 100 ms fit in u64 nanoseconds;
            // 1 + u32::MAX requests at once exceed a u32 cost, so the most
            // one call admits is u32::MAX.
            let max = lb(u32::MAX).unwrap();
            assert!(max.check_n(u32::MAX).unwrap().is_allowed());
            assert!(max.check().is_allowed(), "one more: 1 + burst at once");
            admitted_at_retry_after("burst max", &max, &clock);
            assert_eq!(
                LeakyBucket::nginx(Quota::per_hour(1), u32::MAX)
                    .build()
                    .err(),
                Some(BuildError::TooLong { setting: "burst" })
            );
        },
    },
    Case {
        name: "leaky_delay_0_1_max_and_nodelay",
        run: || {
            let clock = ManualClock::new();
            // A period above 2^32 ns, where n * period overflows u64 for n
            // = u32::MAX.
            let period = Duration::from_nanos((1 << 32) + 2);
            let delays = |delay: Option<u32>| -> Vec<Duration> {
                let b = LeakyBucket::nginx(Quota::with_period(period), 3).clock(clock.clone());
                let b = match delay {
                    Some(n) => b.delay(n),
                    None => b.nodelay(),
                };
                let lb = b.build().unwrap();
                let d: Vec<Duration> = (0..4).map(|_| lb.check().delay()).collect();
                assert!(!lb.check().is_allowed());
                d
            };
            let z = Duration::ZERO;
            assert_eq!(delays(Some(0)), [z, period, 2 * period, 3 * period]);
            assert_eq!(delays(Some(1)), [z, z, period, 2 * period]);
            assert_eq!(delays(Some(u32::MAX)), [z, z, z, z]);
            assert_eq!(delays(None), [z, z, z, z]);
        },
    },
    // The keyed store's builder.
    Case {
        name: "keyed_max_keys_0_1_max",
        run: || {
            let clock = ManualClock::new();
            let q = Quota::per_second(1);
            assert_eq!(
                keyed_gcra(q, &clock).max_keys(0).build::<u32>().err(),
                Some(BuildError::Zero {
                    setting: "max_keys"
                })
            );
            let one = keyed_gcra(q, &clock).max_keys(1).build::<u32>().unwrap();
            assert_eq!(one.capacity(), 1);
            assert!(one.check_key(&1).is_allowed());
            assert!(one.check_key(&2).is_allowed());
            assert_eq!(one.len(), 1);
            assert_eq!(one.evictions(), 1);
            assert!(one.check_key(&1).is_allowed(), "1 was evicted");
            let max = keyed_gcra(q, &clock)
                .max_keys(usize::MAX)
                .shards(4)
                .build::<u32>()
                .unwrap();
            for k in 0..1000 {
                assert!(max.check_key(&k).is_allowed());
            }
            assert_eq!(max.len(), 1000);
            assert_eq!(max.evictions(), 0);
        },
    },
    Case {
        name: "keyed_shards_0_1_max",
        run: || {
            let clock = ManualClock::new();
            let q = Quota::per_second(1);
            assert_eq!(
                keyed_gcra(q, &clock).shards(0).build::<u32>().err(),
                Some(BuildError::Zero { setting: "shards" })
            );
            let too_many = Some(BuildError::TooMany {
                setting: "shards",
                max: 65_536,
            });
            assert_eq!(
                keyed_gcra(q, &clock)
                    .shards(usize::MAX)
                    .build::<u32>()
                    .err(),
                too_many
            );
            assert_eq!(
                keyed_gcra(q, &clock).shards(65_537).build::<u32>().err(),
                too_many
            );
            let one = keyed_gcra(q, &clock)
                .shards(1)
                .max_keys(10)
                .build::<u32>()
                .unwrap();
            assert_eq!(one.capacity(), 10);
            let most = keyed_gcra(q, &clock).shards(65_536).build::<u32>().unwrap();
            assert!(most.check_key(&7).is_allowed());
            assert!(!most.check_key(&7).is_allowed());
            // Fewer shards than max_keys asks for are used, so the cap holds.
            let small = keyed_gcra(q, &clock)
                .shards(65_536)
                .max_keys(3)
                .build::<u32>()
                .unwrap();
            assert_eq!(small.capacity(), 2);
            for k in 0..100 {
                small.check_key(&k);
                assert!(small.len() <= 2);
            }
        },
    },
    Case {
        name: "keyed_seed_0_and_max",
        run: || {
            for seed in [0, u64::MAX] {
                let k = keyed_gcra(Quota::per_second(1), &ManualClock::new())
                    .seed(seed)
                    .build::<u64>()
                    .unwrap();
                for key in 0..100 {
                    assert!(k.check_key(&key).is_allowed());
                    assert!(!k.check_key(&key).is_allowed());
                }
            }
        },
    },
    Case {
        name: "keyed_cost_0_1_max",
        run: || {
            let k = keyed_gcra(Quota::per_second(3), &ManualClock::new())
                .build::<u8>()
                .unwrap();
            assert!(k.check_key_n(&1, 0).unwrap().is_allowed());
            assert_eq!(k.len(), 0, "cost 0 on a new key stores nothing");
            assert!(k.check_key_n(&1, 1).unwrap().is_allowed());
            assert_eq!(
                k.check_key_n(&1, u32::MAX),
                Err(CheckError::CostExceedsLimit {
                    cost: u32::MAX,
                    limit: 3
                })
            );
            assert!(k.check_key_n(&1, 2).unwrap().is_allowed());
            assert!(!k.check_key(&1).is_allowed());
            assert_eq!(k.len(), 1);
        },
    },
    // The concurrency limiter.
    Case {
        name: "concurrency_0_1_max",
        run: || {
            assert_eq!(
                ConcurrencyLimiter::new(0).err(),
                Some(BuildError::Zero {
                    setting: "max in flight"
                })
            );
            let one = ConcurrencyLimiter::new(1).unwrap();
            let p = one.try_acquire().unwrap();
            assert!(one.try_acquire().is_none());
            assert_eq!(
                one.try_acquire_n(u32::MAX).err(),
                Some(CheckError::CostExceedsLimit {
                    cost: u32::MAX,
                    limit: 1
                })
            );
            drop(p);
            let max = ConcurrencyLimiter::new(u32::MAX).unwrap();
            let all = max.try_acquire_n(u32::MAX).unwrap().unwrap();
            assert!(max.try_acquire_n(u32::MAX).unwrap().is_none());
            assert!(max.try_acquire().is_none());
            assert_eq!(max.in_flight(), u32::MAX);
            drop(all);
            assert_eq!(max.in_flight(), 0);
        },
    },
    Case {
        name: "concurrency_units_0",
        run: || {
            let c = ConcurrencyLimiter::new(1).unwrap();
            let _held = c.try_acquire().unwrap();
            // Zero units always fit and hold nothing.
            let none = c.try_acquire_n(0).unwrap().unwrap();
            assert_eq!(none.units(), 0);
            assert_eq!(c.in_flight(), 1);
        },
    },
    // The clock at the end of its range.
    Case {
        name: "clock_set_to_u64_max_after_build",
        run: || {
            let clock = ManualClock::new();
            let q = Quota::per_second(10);
            let built = six(q, &clock);
            clock.set(END);
            for (name, l) in built {
                let l = l.unwrap();
                let admitted = (0..100).filter(|_| l.check().is_allowed()).count();
                assert!(admitted <= 10, "{name}: {admitted}");
                let d = l.check();
                assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER), "{name}");
            }
        },
    },
    Case {
        name: "clock_at_u64_max_when_built",
        run: || at_most_the_burst(Quota::per_second(10), &ManualClock::starting_at(END)),
    },
    Case {
        name: "clock_at_u64_max_one_per_ns",
        run: || {
            let q = Quota::per_second(1_000_000_000).burst(10);
            at_most_the_burst(q, &ManualClock::starting_at(END));
            let clock = ManualClock::new();
            let built = six(q, &clock);
            clock.set(END);
            for (name, l) in built {
                let l = l.unwrap();
                assert!(
                    (0..100).filter(|_| l.check().is_allowed()).count() <= 10,
                    "{name}"
                );
                assert_eq!(
                    l.check().retry_after(),
                    Some(Decision::RETRY_NEVER),
                    "{name}"
                );
            }
        },
    },
    Case {
        name: "clock_within_a_burst_of_u64_max",
        run: || {
            // Five cells' time before the end: no limiter admits more than
            // its burst there, and running on to the end admits no more
            // than the quota allows over that span.
            let q = Quota::per_second(10);
            let start = Duration::from_nanos(u64::MAX - 500_000_000);
            let clock = ManualClock::starting_at(start);
            for (name, l) in six(q, &clock) {
                let l = l.unwrap();
                let mut admitted = 0;
                clock.set(start);
                for _ in 0..100 {
                    admitted += usize::from(l.check().is_allowed());
                    clock.advance(Duration::from_millis(10));
                }
                // Over the last 0.5 s (at most burst + 5 for any of them).
                assert!(admitted <= 10 + 5 + 1, "{name}: {admitted}");
                assert_eq!(
                    l.check().retry_after(),
                    Some(Decision::RETRY_NEVER),
                    "{name}"
                );
            }
        },
    },
    Case {
        name: "window_counter_period_2_pow_63",
        run: || {
            let clock = ManualClock::new();
            let swc = SlidingWindowCounter::with_clock(
                Quota::with_period(Duration::from_nanos(1 << 63)),
                clock.clone(),
            )
            .unwrap();
            assert!(swc.check().is_allowed());
            for at in [1 << 63, u64::MAX] {
                clock.set(Duration::from_nanos(at));
                let d = swc.check();
                assert!(!d.is_allowed());
                assert_eq!(d.retry_after(), Some(Decision::RETRY_NEVER));
                assert_eq!(d.reset_after(), Decision::RETRY_NEVER);
            }
        },
    },
    Case {
        name: "keyed_at_u64_max",
        run: || {
            let clock = ManualClock::new();
            let k = keyed_gcra(Quota::per_second(10), &clock)
                .build::<u8>()
                .unwrap();
            let fw = Keyed::builder(
                FixedWindow::with_clock(Quota::per_second(10), clock.clone()).unwrap(),
            )
            .build::<u8>()
            .unwrap();
            clock.set(END);
            for key in 0..3 {
                assert!((0..100).filter(|_| k.check_key(&key).is_allowed()).count() <= 10);
                assert!((0..100).filter(|_| fw.check_key(&key).is_allowed()).count() <= 10);
                let sleeper = ManualSleeper(clock.clone());
                assert_eq!(
                    k.wait_key_n_with(&key, 1, &sleeper),
                    Err(CheckError::EndOfClock)
                );
                assert_eq!(
                    fw.wait_key_n_with(&key, 1, &sleeper),
                    Err(CheckError::EndOfClock)
                );
            }
        },
    },
    // A clock stepping backwards.
    Case {
        name: "clock_steps_back_to_zero",
        run: || {
            // From 100 s back to the origin, where the log's entries cannot
            // move back by the whole step: every limiter still admits again
            // exactly at its retry_after.
            let clock = ManualClock::starting_at(100 * S);
            for (name, l) in six(Quota::per_second(4), &clock) {
                let l = l.unwrap();
                clock.set(100 * S);
                assert!(l.check_n(4).unwrap().is_allowed(), "{name}");
                clock.set(Duration::ZERO);
                admitted_at_retry_after(name, &*l, &clock);
            }
        },
    },
    Case {
        name: "clock_steps_back_from_u64_max",
        run: || {
            let clock = ManualClock::starting_at(END);
            for (name, l) in six(Quota::per_second(4), &clock) {
                let l = l.unwrap();
                clock.set(END);
                let _ = l.check_n(4).unwrap();
                clock.set(100 * S);
                // No time has passed: nothing more than the burst, and a
                // retry_after that comes true.
                let more = (0..10).filter(|_| l.check().is_allowed()).count();
                assert!(more <= 4, "{name}: {more}");
                admitted_at_retry_after(name, &*l, &clock);
            }
        },
    },
    Case {
        name: "clock_keeps_stepping_back",
        run: || {
            // Ten steps back of 1 s, checking at each: never more than a
            // clock standing still would admit (the burst), and the last
            // retry_after comes true.
            let clock = ManualClock::starting_at(1000 * S);
            for (name, l) in six(Quota::per_second(4), &clock) {
                let l = l.unwrap();
                clock.set(1000 * S);
                let mut admitted = 0;
                for step in 0..10u32 {
                    clock.set(1000 * S - step * S);
                    admitted += (0..10).filter(|_| l.check().is_allowed()).count();
                }
                assert!(admitted <= 4, "{name}: {admitted}");
                admitted_at_retry_after(name, &*l, &clock);
            }
        },
    },
    Case {
        name: "keyed_clock_steps_back",
        run: || {
            let clock = ManualClock::starting_at(100 * S);
            let k = keyed_gcra(Quota::per_second(4), &clock)
                .build::<u8>()
                .unwrap();
            assert!(k.check_key_n(&1, 4).unwrap().is_allowed());
            clock.set(Duration::ZERO);
            let d = k.check_key(&1);
            assert_eq!(d.retry_after(), Some(Duration::from_millis(250)));
            clock.advance(Duration::from_millis(250));
            assert!(k.check_key(&1).is_allowed());
            // The keyed store keeps the stepped-back key (its state is live).
            k.sweep();
            assert_eq!(k.len(), 1);
        },
    },
];

#[test]
fn bad_input() {
    run_isolated("bad_input", CASES, Limits::default());
}

#[cfg(feature = "async")]
#[test]
fn bad_input_async() {
    run_isolated(
        "bad_input_async",
        &[Case {
            name: "until_ready_at_u64_max",
            run: || {
                let clock = ManualClock::starting_at(END);
                let g = Gcra::with_clock(Quota::per_second(10), clock.clone()).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let r = rt.block_on(sysblocks_rate_limiter::until_ready_n_with(&g, 1, |d| {
                    clock.advance(d);
                    std::future::ready(())
                }));
                assert_eq!(r, Err(CheckError::EndOfClock));
                assert_eq!(
                    rt.block_on(sysblocks_rate_limiter::until_ready_n_with(
                        &g,
                        u32::MAX,
                        |_| std::future::ready(())
                    )),
                    Err(CheckError::CostExceedsLimit {
                        cost: u32::MAX,
                        limit: 10
                    })
                );
            },
        }],
        Limits::default(),
    );
}
