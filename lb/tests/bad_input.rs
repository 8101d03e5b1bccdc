//! Bad input, swept at the edges of every setting and argument: empty
//! backend sets, weights and tiers of 0, 1 and `u32::MAX`, virtual nodes
//! and load factors, outlier-detection and health-check settings at
//! `Duration::ZERO` and `Duration::MAX`, percentages past 100, latencies
//! that are not finite, a `ManualClock` at `u64::MAX` ns and one stepping
//! backwards. Each case runs in a child process under an address-space
//! limit and a timeout (`sysblocks_testkit::run_isolated`), so a panic, an
//! abort on a runaway allocation or a hang fails it; each ends in a typed
//! error or in the behaviour the docs state, and asserts which.
#![cfg(not(sysblocks_loom))] // child processes and real threads

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sysblocks_consistent_hash::{HashRing, MAX_POINTS, MAX_TABLE_SIZE};
use sysblocks_lb::{
    BackendId, Balancer, BuildError, Candidates, Clock, ConsistentHashing, Context, HashAlgorithm,
    HashTableError, HealthCheck, LeastConnections, ManualClock, OutlierDetection, PeakEwma,
    PowerOfTwoChoices, Random, RoundRobin, SmoothWeightedRoundRobin, Strategy,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

fn ctx() -> Context {
    Context::default()
}

fn hash_table_error(e: HashTableError) -> Option<BuildError> {
    Some(BuildError::HashTable(e))
}

fn too_large(setting: &'static str, max: u64) -> HashTableError {
    HashTableError::TooLarge { setting, max }
}

/// A balancer over `weights` (values are the indices) with `s`.
fn weighted<S: Strategy>(s: S, weights: &[u32]) -> Result<Balancer<usize, S>, BuildError> {
    let mut b = Balancer::builder(s).clock(ManualClock::new());
    for (i, &w) in weights.iter().enumerate() {
        b = b.backend(i, w);
    }
    b.build()
}

fn ring(vnodes: u32) -> ConsistentHashing {
    ConsistentHashing::with_algorithm(HashAlgorithm::Ring { vnodes })
}

/// No backends: builds, and every pick is `None`, keyed or not.
fn empty<S: Strategy>(s: S) {
    let b = weighted(s, &[]).unwrap();
    assert!(b.is_empty());
    for c in [ctx(), Context::with_key(0), Context::with_key(u64::MAX)] {
        assert!(b.pick(&c).is_none());
    }
    assert!(b.candidates().is_empty());
    assert_eq!(b.active_tier(), None);
    assert!(!b.is_panicking());
    assert_eq!(b.check_health(|_| true), 0);
    assert!(b.stats().is_empty());
}

/// Picks (with `RoundRobin` over two or more backends) until backend
/// `bad` has failed `n` times.
fn fail<S: Strategy>(b: &Balancer<usize, S>, bad: usize, n: usize) {
    let mut failed = 0;
    for _ in 0..10_000 {
        if failed == n {
            return;
        }
        let p = b.pick(&ctx()).unwrap();
        if *p == bad {
            p.failure();
            failed += 1;
        }
    }
    panic!("backend {bad} failed only {failed} of {n} times");
}

fn outlier(od: OutlierDetection) -> Result<Balancer<usize, RoundRobin>, BuildError> {
    Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .backend(1, 1)
        .clock(ManualClock::new())
        .outlier_detection(od)
        .build()
}

fn health(hc: HealthCheck) -> Result<Balancer<usize, RoundRobin>, BuildError> {
    Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .backend(1, 1)
        .clock(ManualClock::new())
        .health_check(hc)
        .build()
}

fn bad_factor(c: f64) {
    match Balancer::<u8, _>::builder(ConsistentHashing::ring().bounded_load(c)).build() {
        Err(BuildError::OutOfRange { setting, .. }) => {
            assert_eq!(setting, "ConsistentHashing::bounded_load");
        }
        other => panic!("{c}: {other:?}"),
    }
}

#[test]
fn backends_and_weights() {
    run_isolated(
        "backends_and_weights",
        &[
            Case {
                name: "no_backends_any_strategy",
                run: || {
                    empty(RoundRobin::new());
                    empty(SmoothWeightedRoundRobin::new());
                    empty(Random::with_seed(1));
                    empty(LeastConnections::new());
                    empty(PowerOfTwoChoices::with_seed(1));
                    empty(PeakEwma::with_seed(1));
                    empty(ConsistentHashing::ring());
                    empty(ConsistentHashing::maglev());
                    empty(ConsistentHashing::ring().bounded_load(1.0));
                },
            },
            Case {
                name: "weight_0",
                run: || {
                    let zero = BuildError::Zero { setting: "weight" };
                    assert_eq!(
                        weighted(RoundRobin::new(), &[1, 0]).err(),
                        Some(zero.clone())
                    );
                    let b = weighted(RoundRobin::new(), &[1]).unwrap();
                    assert_eq!(b.add(1, 0), Err(zero.clone()));
                    assert_eq!(b.add_in_tier(1, 0, 3), Err(zero));
                    assert_eq!(b.len(), 1);
                },
            },
            Case {
                name: "weight_1_everywhere",
                run: || {
                    let b = weighted(SmoothWeightedRoundRobin::new(), &[1, 1, 1]).unwrap();
                    let seq: Vec<usize> = (0..6).map(|_| *b.pick(&ctx()).unwrap()).collect();
                    assert_eq!(seq, vec![0, 1, 2, 0, 1, 2]);
                },
            },
            Case {
                name: "weight_max_alone",
                run: || {
                    let b = weighted(SmoothWeightedRoundRobin::new(), &[u32::MAX]).unwrap();
                    assert!((0..100).all(|_| *b.pick(&ctx()).unwrap() == 0));
                    let b = weighted(Random::with_seed(3), &[u32::MAX]).unwrap();
                    assert!((0..100).all(|_| *b.pick(&ctx()).unwrap() == 0));
                },
            },
            Case {
                name: "weight_max_beside_weight_1",
                run: || {
                    // SWRR: the light backend's current weight reaches the
                    // heavy one's only after about 2^31 picks.
                    let b = weighted(SmoothWeightedRoundRobin::new(), &[u32::MAX - 1, 1]).unwrap();
                    assert!((0..1000).all(|_| *b.pick(&ctx()).unwrap() == 0));
                    let b = weighted(Random::with_seed(5), &[u32::MAX - 1, 1]).unwrap();
                    assert!((0..1000).all(|_| *b.pick(&ctx()).unwrap() == 0));
                    let b = weighted(PowerOfTwoChoices::with_seed(5), &[u32::MAX - 1, 1]).unwrap();
                    let held: Vec<_> = (0..100).map(|_| b.pick(&ctx()).unwrap()).collect();
                    assert!(held.iter().filter(|p| ***p == 1).count() <= 1);
                    drop(held);
                    let b = weighted(LeastConnections::new(), &[u32::MAX - 1, 1]).unwrap();
                    let held: Vec<_> = (0..100).map(|_| b.pick(&ctx()).unwrap()).collect();
                    // Per unit of weight the heavy backend stays the less
                    // loaded: every pick after the first goes to it.
                    assert!(held.iter().filter(|p| ***p == 1).count() <= 1);
                },
            },
            Case {
                name: "weights_overflow",
                run: || {
                    assert_eq!(
                        weighted(RoundRobin::new(), &[u32::MAX, 1]).err(),
                        Some(BuildError::WeightOverflow)
                    );
                    let b = weighted(RoundRobin::new(), &[u32::MAX]).unwrap();
                    assert_eq!(b.add(1, 1), Err(BuildError::WeightOverflow));
                    assert_eq!(b.len(), 1);
                    assert_eq!(b.candidates(), vec![BackendId(0)]);
                },
            },
            Case {
                name: "tiers_0_1_max",
                run: || {
                    let b = Balancer::builder(RoundRobin::new())
                        .backend_in_tier(0usize, 1, u32::MAX)
                        .clock(ManualClock::new())
                        .build()
                        .unwrap();
                    assert_eq!(b.active_tier(), Some(u32::MAX));
                    assert_eq!(*b.pick(&ctx()).unwrap(), 0);
                    b.add_in_tier(1, 1, 1).unwrap();
                    assert_eq!(b.active_tier(), Some(1));
                    b.add_in_tier(2, 1, 0).unwrap();
                    assert_eq!(b.active_tier(), Some(0));
                    assert!((0..10).all(|_| *b.pick(&ctx()).unwrap() == 2));
                },
            },
            Case {
                name: "unknown_ids",
                run: || {
                    let b = weighted(RoundRobin::new(), &[1]).unwrap();
                    assert!(!b.remove(BackendId(u64::MAX)));
                    assert!(!b.remove(BackendId(1)));
                    assert_eq!(b.in_flight(BackendId(u64::MAX)), None);
                    assert!(b.remove(BackendId(0)));
                    assert!(!b.remove(BackendId(0)));
                    assert!(b.pick(&ctx()).is_none());
                },
            },
            Case {
                name: "many_backends",
                run: || {
                    let n = 100_000;
                    let b = weighted(RoundRobin::new(), &vec![1; n]).unwrap();
                    assert_eq!(b.len(), n);
                    let seq: Vec<usize> = (0..n + 1).map(|_| *b.pick(&ctx()).unwrap()).collect();
                    assert_eq!(seq[n], 0);
                    assert_eq!(seq[n - 1], n - 1);
                },
            },
            Case {
                name: "strategy_index_out_of_range_is_a_refusal",
                run: || {
                    #[derive(Debug)]
                    struct Wild;
                    impl Strategy for Wild {
                        type State = ();
                        fn prepare<T>(&self, _: Candidates<'_, T>) {}
                        fn pick<T>(
                            &self,
                            (): &(),
                            _: Candidates<'_, T>,
                            _: &Context,
                            _: &dyn Clock,
                        ) -> Option<usize> {
                            Some(usize::MAX)
                        }
                    }
                    let b = weighted(Wild, &[1, 1]).unwrap();
                    assert!(b.pick(&ctx()).is_none());
                    assert!(b.stats().iter().all(|s| s.in_flight == 0));
                },
            },
            Case {
                name: "latencies_zero_max_and_not_finite",
                run: || {
                    let b = weighted(PeakEwma::with_seed(1), &[1]).unwrap();
                    let initial = b.stats()[0].latency_estimate;
                    b.pick(&ctx()).unwrap().success(Duration::ZERO);
                    for bad in [
                        f64::NAN,
                        f64::INFINITY,
                        f64::NEG_INFINITY,
                        -1.0,
                        0.0,
                        f64::MAX,
                    ] {
                        // f64::MAX seconds is infinite nanoseconds.
                        b.pick(&ctx()).unwrap().success_secs(bad);
                    }
                    assert_eq!(b.stats()[0].latency_estimate, initial);
                    b.pick(&ctx()).unwrap().success(Duration::MAX);
                    assert_eq!(
                        b.stats()[0].latency_estimate,
                        Duration::from_nanos(u64::MAX)
                    );
                    assert_eq!(*b.pick(&ctx()).unwrap(), 0);
                },
            },
            Case {
                name: "peak_ewma_settings",
                run: || {
                    assert_eq!(
                        weighted(PeakEwma::with_seed(1).decay(Duration::ZERO), &[1]).err(),
                        Some(BuildError::Zero {
                            setting: "PeakEwma::decay"
                        })
                    );
                    for (decay, initial) in [
                        (Duration::MAX, Duration::MAX),
                        (Duration::from_nanos(1), Duration::ZERO),
                        (Duration::MAX, Duration::ZERO),
                    ] {
                        let s = PeakEwma::with_seed(1).decay(decay).initial_latency(initial);
                        let b = weighted(s, &[1, 1, 1]).unwrap();
                        let held: Vec<_> = (0..30).map(|_| b.pick(&ctx()).unwrap()).collect();
                        for p in held {
                            p.success(Duration::from_millis(1));
                        }
                        assert!(b.stats().iter().all(|s| s.in_flight == 0));
                    }
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn consistent_hashing() {
    run_isolated(
        "consistent_hashing",
        &[
            Case {
                // Defect 18: built Ok with no ring, and keyed picks went
                // round robin.
                name: "ring_weights_26843546_and_1",
                run: || {
                    let err = weighted(ConsistentHashing::ring(), &[26_843_546, 1]).err();
                    assert_eq!(err, hash_table_error(too_large("points", MAX_POINTS)));
                },
            },
            Case {
                // Defect 18: aborted on a 103 GB allocation.
                name: "ring_weights_26843545_and_1",
                run: || {
                    let err = weighted(ConsistentHashing::ring(), &[26_843_545, 1]).err();
                    assert_eq!(err, hash_table_error(too_large("points", MAX_POINTS)));
                },
            },
            Case {
                // Defect 18: aborted on a 103 GB allocation, with one
                // backend or none.
                name: "ring_vnodes_max",
                run: || {
                    for weights in [&[][..], &[1][..]] {
                        let err = weighted(ring(u32::MAX), weights).err();
                        assert_eq!(err, hash_table_error(too_large("vnodes", MAX_POINTS)));
                    }
                },
            },
            Case {
                name: "ring_vnodes_0",
                run: || {
                    assert_eq!(
                        weighted(ring(0), &[1]).err(),
                        Some(BuildError::Zero {
                            setting: "HashAlgorithm::Ring::vnodes"
                        })
                    );
                },
            },
            Case {
                name: "ring_vnodes_1",
                run: || {
                    let b = weighted(ring(1), &[1, 1, 1]).unwrap();
                    let mut r = HashRing::with_vnodes(1).unwrap();
                    for id in 0..3u64 {
                        r.add(id).unwrap();
                    }
                    for key in (0..500u64).chain([u64::MAX]) {
                        let want = *r.get(&key).unwrap() as usize;
                        assert_eq!(*b.pick(&Context::with_key(key)).unwrap(), want);
                    }
                },
            },
            Case {
                name: "ring_at_the_maximum_then_an_add",
                run: || {
                    let b = weighted(ring(1), &[MAX_POINTS as u32]).unwrap();
                    assert_eq!(*b.pick(&Context::with_key(9)).unwrap(), 0);
                    // One more point does not fit: refused, nothing changes.
                    let err = b.add(1, 1).err();
                    assert_eq!(err, hash_table_error(too_large("points", MAX_POINTS)));
                    assert_eq!(b.len(), 1);
                    assert_eq!(b.candidates(), vec![BackendId(0)]);
                    assert_eq!(*b.pick(&Context::with_key(9)).unwrap(), 0);
                    // Once the backend is gone, one of weight 1 fits again.
                    assert!(b.remove(BackendId(0)));
                    b.add(1, 1).unwrap();
                    assert_eq!(*b.pick(&Context::with_key(9)).unwrap(), 1);
                },
            },
            Case {
                name: "maglev_too_many_backends",
                run: || {
                    let n = (MAX_TABLE_SIZE / 100 + 1) as usize;
                    let err = weighted(ConsistentHashing::maglev(), &vec![1; n]).err();
                    assert_eq!(
                        err,
                        hash_table_error(too_large("table size", MAX_TABLE_SIZE))
                    );
                },
            },
            Case {
                name: "maglev_weight_max_beside_weight_1",
                run: || {
                    let b = weighted(ConsistentHashing::maglev(), &[u32::MAX - 1, 1]).unwrap();
                    // One table entry of 65,537 is the light backend's.
                    let light = (0..1000u64)
                        .filter(|&k| *b.pick(&Context::with_key(k)).unwrap() == 1)
                        .count();
                    assert!(light <= 1, "{light}");
                },
            },
            Case {
                name: "bounded_load_nan",
                run: || bad_factor(f64::NAN),
            },
            Case {
                name: "bounded_load_infinity",
                run: || bad_factor(f64::INFINITY),
            },
            Case {
                name: "bounded_load_negative_infinity",
                run: || bad_factor(f64::NEG_INFINITY),
            },
            Case {
                name: "bounded_load_negative_and_zero",
                run: || {
                    bad_factor(-1.5);
                    bad_factor(0.0);
                    bad_factor(-0.0);
                },
            },
            Case {
                name: "bounded_load_below_1",
                run: || {
                    bad_factor(1.0 - f64::EPSILON);
                    bad_factor(f64::MIN_POSITIVE);
                },
            },
            Case {
                name: "bounded_load_1",
                run: || {
                    for alg in [HashAlgorithm::Ring { vnodes: 40 }, HashAlgorithm::Maglev] {
                        let s = ConsistentHashing::with_algorithm(alg).bounded_load(1.0);
                        let b = weighted(s, &[1; 4]).unwrap();
                        let mut held = Vec::new();
                        for m in 1..=40u64 {
                            held.push(b.pick(&Context::with_key(7)).unwrap());
                            let max = b.stats().iter().map(|s| s.in_flight).max().unwrap();
                            assert!(max <= m.div_ceil(4), "{alg:?}: {max} after {m}");
                        }
                    }
                },
            },
            Case {
                name: "bounded_load_max",
                run: || {
                    // No cap is ever reached: one hot key stays on its
                    // backend, as without a bound.
                    let s = ConsistentHashing::ring().bounded_load(f64::MAX);
                    let b = weighted(s, &[1; 4]).unwrap();
                    let held: Vec<_> = (0..50)
                        .map(|_| b.pick(&Context::with_key(7)).unwrap())
                        .collect();
                    assert_eq!(b.stats().iter().map(|s| s.in_flight).max(), Some(50));
                    drop(held);
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn outlier_detection() {
    run_isolated(
        "outlier_detection",
        &[
            Case {
                name: "consecutive_failures_0",
                run: || {
                    let od = OutlierDetection {
                        consecutive_failures: 0,
                        ..OutlierDetection::default()
                    };
                    assert_eq!(
                        outlier(od).err(),
                        Some(BuildError::Zero {
                            setting: "OutlierDetection::consecutive_failures"
                        })
                    );
                },
            },
            Case {
                name: "consecutive_failures_1",
                run: || {
                    let b = outlier(OutlierDetection {
                        consecutive_failures: 1,
                        ..OutlierDetection::default()
                    })
                    .unwrap();
                    fail(&b, 1, 1);
                    assert!(b.stats()[1].ejected);
                    assert_eq!(b.candidates(), vec![BackendId(0)]);
                },
            },
            Case {
                name: "consecutive_failures_max",
                run: || {
                    let b = outlier(OutlierDetection {
                        consecutive_failures: u32::MAX,
                        ..OutlierDetection::default()
                    })
                    .unwrap();
                    fail(&b, 1, 2000);
                    assert!(!b.stats()[1].ejected);
                },
            },
            Case {
                name: "base_ejection_time_zero",
                run: || {
                    let od = OutlierDetection {
                        base_ejection_time: Duration::ZERO,
                        ..OutlierDetection::default()
                    };
                    assert_eq!(
                        outlier(od).err(),
                        Some(BuildError::Zero {
                            setting: "OutlierDetection::base_ejection_time"
                        })
                    );
                },
            },
            Case {
                name: "max_ejection_time_below_base_or_zero",
                run: || {
                    for max in [Duration::ZERO, Duration::from_secs(29)] {
                        let od = OutlierDetection {
                            max_ejection_time: max,
                            ..OutlierDetection::default()
                        };
                        assert!(matches!(
                            outlier(od).err(),
                            Some(BuildError::OutOfRange {
                                setting: "OutlierDetection::max_ejection_time",
                                ..
                            })
                        ));
                    }
                },
            },
            Case {
                name: "ejection_times_max_last_for_good",
                run: || {
                    let clock = ManualClock::new();
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .backend(1, 1)
                        .clock(clock.clone())
                        .outlier_detection(OutlierDetection {
                            base_ejection_time: Duration::MAX,
                            max_ejection_time: Duration::MAX,
                            ..OutlierDetection::default()
                        })
                        .build()
                        .unwrap();
                    fail(&b, 1, 5);
                    assert!(b.stats()[1].ejected);
                    for step in [Duration::from_secs(1 << 30), Duration::MAX] {
                        clock.advance(step);
                        assert!((0..4).all(|_| *b.pick(&ctx()).unwrap() == 0));
                        assert!(b.stats()[1].ejected);
                    }
                    assert_eq!(clock.now_nanos(), u64::MAX);
                },
            },
            Case {
                name: "max_ejection_percent_0_100_101_max",
                run: || {
                    // 0 %: still one at a time.
                    let b = outlier(OutlierDetection {
                        max_ejection_percent: 0,
                        ..OutlierDetection::default()
                    })
                    .unwrap();
                    fail(&b, 1, 5);
                    fail(&b, 0, 5);
                    assert_eq!(b.stats().iter().filter(|s| s.ejected).count(), 1);
                    // 100 %: every backend, and then panic mode serves them.
                    let b = outlier(OutlierDetection {
                        max_ejection_percent: 100,
                        ..OutlierDetection::default()
                    })
                    .unwrap();
                    fail(&b, 1, 5);
                    for _ in 0..5 {
                        b.pick(&ctx()).unwrap().failure();
                    }
                    assert!(b.stats().iter().all(|s| s.ejected));
                    assert!(b.is_panicking());
                    assert_eq!(b.candidates().len(), 2);
                    for pct in [101, u8::MAX] {
                        let od = OutlierDetection {
                            max_ejection_percent: pct,
                            ..OutlierDetection::default()
                        };
                        assert!(matches!(
                            outlier(od).err(),
                            Some(BuildError::OutOfRange {
                                setting: "OutlierDetection::max_ejection_percent",
                                ..
                            })
                        ));
                    }
                },
            },
            Case {
                name: "outlier_detection_off",
                run: || {
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .backend(1, 1)
                        .clock(ManualClock::new())
                        .without_outlier_detection()
                        .build()
                        .unwrap();
                    fail(&b, 1, 100);
                    assert!(b.stats().iter().all(|s| !s.ejected));
                },
            },
            Case {
                name: "clock_at_u64_max",
                run: || {
                    let clock = ManualClock::starting_at(Duration::MAX);
                    assert_eq!(clock.now_nanos(), u64::MAX);
                    let b = Balancer::builder(PeakEwma::with_seed(3))
                        .backend(0usize, 1)
                        .backend(1, 1)
                        .clock(clock.clone())
                        .build()
                        .unwrap();
                    // The clock cannot advance, so an ejection there lasts.
                    fail(&b, 1, 5);
                    assert!(b.stats()[1].ejected);
                    clock.advance(Duration::from_secs(3600));
                    assert!((0..10).all(|_| *b.pick(&ctx()).unwrap() == 0));
                    assert!(b.stats()[1].ejected);
                    b.pick(&ctx()).unwrap().success(Duration::from_millis(2));
                    // Documented: at the clock's end every call probes.
                    assert_eq!(b.check_health(|_| true), 2);
                    assert_eq!(b.check_health(|_| true), 2);
                    let id = b.add(2, 1).unwrap();
                    assert!(b.candidates().contains(&id));
                },
            },
            Case {
                name: "clock_stepping_back_delays_readmission",
                run: || {
                    let clock = ManualClock::starting_at(Duration::from_secs(100));
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .backend(1, 1)
                        .clock(clock.clone())
                        .build()
                        .unwrap();
                    fail(&b, 1, 5); // ejected until 130 s
                    clock.set(Duration::from_secs(90));
                    let _ = b.pick(&ctx());
                    assert!(b.stats()[1].ejected, "a step back ends nothing early");
                    clock.set(Duration::from_secs(130) - Duration::from_nanos(1));
                    let _ = b.pick(&ctx());
                    assert!(b.stats()[1].ejected);
                    clock.set(Duration::from_secs(130));
                    let _ = b.pick(&ctx());
                    assert!(!b.stats()[1].ejected);
                    assert_eq!(b.candidates().len(), 2);
                    // Backwards again while nothing is ejected: no effect.
                    clock.set(Duration::ZERO);
                    assert_eq!(b.candidates().len(), 2);
                    assert!(b.pick(&ctx()).is_some());
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn health_checks() {
    run_isolated(
        "health_checks",
        &[
            Case {
                name: "zero_settings",
                run: || {
                    let hc = HealthCheck::default();
                    for (bad, setting) in [
                        (
                            HealthCheck {
                                interval: Duration::ZERO,
                                ..hc
                            },
                            "HealthCheck::interval",
                        ),
                        (
                            HealthCheck {
                                unhealthy_threshold: 0,
                                ..hc
                            },
                            "HealthCheck::unhealthy_threshold",
                        ),
                        (
                            HealthCheck {
                                healthy_threshold: 0,
                                ..hc
                            },
                            "HealthCheck::healthy_threshold",
                        ),
                    ] {
                        assert_eq!(health(bad).err(), Some(BuildError::Zero { setting }));
                    }
                },
            },
            Case {
                name: "thresholds_1",
                run: || {
                    let b = health(HealthCheck {
                        interval: Duration::from_nanos(1),
                        unhealthy_threshold: 1,
                        healthy_threshold: 1,
                    })
                    .unwrap();
                    assert_eq!(b.check_health(|&v| v != 1), 2);
                    assert_eq!(b.candidates(), vec![BackendId(0)]);
                },
            },
            Case {
                name: "thresholds_max",
                run: || {
                    let clock = ManualClock::new();
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .clock(clock.clone())
                        .health_check(HealthCheck {
                            interval: Duration::from_nanos(1),
                            unhealthy_threshold: u32::MAX,
                            healthy_threshold: u32::MAX,
                        })
                        .build()
                        .unwrap();
                    for _ in 0..1000 {
                        assert_eq!(b.check_health(|_| false), 1);
                        clock.advance(Duration::from_nanos(1));
                    }
                    assert!(b.stats()[0].probe_healthy);
                },
            },
            Case {
                name: "interval_max_probes_once",
                run: || {
                    let clock = ManualClock::new();
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .clock(clock.clone())
                        .health_check(HealthCheck {
                            interval: Duration::MAX,
                            ..HealthCheck::default()
                        })
                        .build()
                        .unwrap();
                    assert_eq!(b.check_health(|_| true), 1);
                    // About 34 years later, still not due.
                    clock.advance(Duration::from_secs(1 << 30));
                    assert_eq!(b.check_health(|_| true), 0);
                },
            },
            Case {
                name: "interval_max_checker_thread_stops",
                run: || {
                    let b = Arc::new(
                        health(HealthCheck {
                            interval: Duration::MAX,
                            ..HealthCheck::default()
                        })
                        .unwrap(),
                    );
                    let probes = Arc::new(AtomicUsize::new(0));
                    let count = Arc::clone(&probes);
                    let checker = b.spawn_health_checker(move |_| {
                        count.fetch_add(1, Ordering::Relaxed);
                        true
                    });
                    // The first round runs at once; then the thread waits
                    // for ever, and dropping the handle wakes and joins it.
                    while probes.load(Ordering::Relaxed) < 2 {
                        std::thread::yield_now();
                    }
                    drop(checker);
                    assert_eq!(probes.load(Ordering::Relaxed), 2);
                    assert_eq!(Arc::strong_count(&b), 1);
                },
            },
            Case {
                name: "clock_stepping_back_delays_probes",
                run: || {
                    let clock = ManualClock::starting_at(Duration::from_secs(100));
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .clock(clock.clone())
                        .build()
                        .unwrap();
                    assert_eq!(b.check_health(|_| true), 1); // next at 102 s
                    clock.set(Duration::from_secs(90));
                    assert_eq!(b.check_health(|_| true), 0);
                    clock.set(Duration::from_secs(101));
                    assert_eq!(b.check_health(|_| true), 0);
                    clock.set(Duration::from_secs(102));
                    assert_eq!(b.check_health(|_| true), 1);
                },
            },
            Case {
                name: "all_unhealthy_panic_mode_on_and_off",
                run: || {
                    let hc = HealthCheck {
                        unhealthy_threshold: 1,
                        ..HealthCheck::default()
                    };
                    let b = health(hc).unwrap();
                    b.check_health(|_| false);
                    assert!(b.is_panicking());
                    assert_eq!(b.candidates().len(), 2);
                    assert!(b.pick(&ctx()).is_some());
                    let b = Balancer::builder(RoundRobin::new())
                        .backend(0usize, 1)
                        .clock(ManualClock::new())
                        .health_check(hc)
                        .panic_mode(false)
                        .build()
                        .unwrap();
                    b.check_health(|_| false);
                    assert!(b.is_panicking());
                    assert!(b.pick(&ctx()).is_none());
                    assert_eq!(b.active_tier(), None);
                },
            },
        ],
        Limits::default(),
    );
}

/// Envoy's settings out of range: NaN, negative or infinite factors,
/// percentages over 100 and zero windows, counts and intervals are typed
/// errors from `build()`, each naming its setting.
#[test]
fn envoy_settings_out_of_range() {
    use sysblocks_lb::{FailurePercentageEjection, SlowStart, SuccessRateEjection};

    type Builder = sysblocks_lb::BalancerBuilder<usize, RoundRobin>;
    let base = || Balancer::builder(RoundRobin::new()).backend(0usize, 1);
    let out_of_range = |setting| BuildError::OutOfRange {
        setting,
        expected: "",
    };
    let same = |got: Option<BuildError>, want: &BuildError| match (got, want) {
        (Some(BuildError::Zero { setting: a }), BuildError::Zero { setting: b }) => a == *b,
        (
            Some(BuildError::OutOfRange { setting: a, .. }),
            BuildError::OutOfRange { setting: b, .. },
        ) => a == *b,
        _ => false,
    };
    let sr = SuccessRateEjection::default();
    let fp = FailurePercentageEjection::default();
    let ss = SlowStart::new(Duration::from_secs(1));
    let mut cases: Vec<(Builder, BuildError)> = Vec::new();
    for f in [f64::NAN, -1.0, -0.0001, f64::INFINITY] {
        cases.push((
            base().success_rate_ejection(SuccessRateEjection {
                stdev_factor: f,
                ..sr
            }),
            out_of_range("SuccessRateEjection::stdev_factor"),
        ));
    }
    for f in [f64::NAN, -1.4, 0.0, 0.004, f64::NEG_INFINITY] {
        cases.push((
            base().overprovisioning_factor(f),
            out_of_range("overprovisioning_factor"),
        ));
    }
    for f in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
        cases.push((
            base().slow_start(SlowStart {
                aggression: f,
                ..ss
            }),
            out_of_range("SlowStart::aggression"),
        ));
    }
    for pct in [101, u8::MAX] {
        cases.push((base().panic_threshold(pct), out_of_range("panic_threshold")));
        cases.push((
            base().failure_percentage_ejection(FailurePercentageEjection {
                threshold: pct,
                ..fp
            }),
            out_of_range("FailurePercentageEjection::threshold"),
        ));
        cases.push((
            base().slow_start(SlowStart {
                min_weight_percent: pct,
                ..ss
            }),
            out_of_range("SlowStart::min_weight_percent"),
        ));
    }
    let zero = |setting| BuildError::Zero { setting };
    cases.push((
        base().slow_start(SlowStart::new(Duration::ZERO)),
        zero("SlowStart::window"),
    ));
    cases.push((
        base().ejection_interval(Duration::ZERO),
        zero("ejection_interval"),
    ));
    cases.push((
        base().success_rate_ejection(SuccessRateEjection {
            minimum_hosts: 0,
            ..sr
        }),
        zero("SuccessRateEjection::minimum_hosts"),
    ));
    cases.push((
        base().success_rate_ejection(SuccessRateEjection {
            request_volume: 0,
            ..sr
        }),
        zero("SuccessRateEjection::request_volume"),
    ));
    cases.push((
        base().failure_percentage_ejection(FailurePercentageEjection {
            minimum_hosts: 0,
            ..fp
        }),
        zero("FailurePercentageEjection::minimum_hosts"),
    ));
    cases.push((
        base().failure_percentage_ejection(FailurePercentageEjection {
            request_volume: 0,
            ..fp
        }),
        zero("FailurePercentageEjection::request_volume"),
    ));
    for (builder, want) in cases {
        let got = builder.build().err();
        assert!(same(got.clone(), &want), "{got:?} for {want:?}");
    }
    // The edges that are valid: 0 and 100 %, a zero factor, infinity.
    for ok in [
        base().panic_threshold(0),
        base().panic_threshold(100),
        base().overprovisioning_factor(f64::INFINITY),
        base().overprovisioning_factor(0.01),
        base().success_rate_ejection(SuccessRateEjection {
            stdev_factor: 0.0,
            ..sr
        }),
        base().failure_percentage_ejection(FailurePercentageEjection { threshold: 0, ..fp }),
        base().slow_start(SlowStart {
            min_weight_percent: 100,
            aggression: f64::MIN_POSITIVE,
            window: Duration::MAX,
        }),
    ] {
        let b = ok.build().expect("valid edge");
        assert!(b.pick(&ctx()).is_some());
    }
}
