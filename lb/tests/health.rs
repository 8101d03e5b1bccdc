//! Outlier ejection, active health checks, failover tiers, panic mode and
//! membership changes.

use std::time::Duration;

use sysblocks_lb::{
    BackendId, Balancer, Context, HealthCheck, ManualClock, OutlierDetection, RoundRobin,
};

fn ctx() -> Context {
    Context::default()
}

fn ten(clock: &ManualClock) -> Balancer<usize, RoundRobin> {
    let mut b = Balancer::builder(RoundRobin::new()).clock(clock.clone());
    for i in 0..10 {
        b = b.backend(i, 1);
    }
    b.build().unwrap()
}

/// Fails every request to backend `bad` until `n` picks have gone there.
fn fail_on(b: &Balancer<usize, RoundRobin>, bad: usize, n: usize) {
    let mut failed = 0;
    let mut guard = 0;
    while failed < n {
        guard += 1;
        assert!(guard < 10_000, "backend {bad} never picked");
        let p = b.pick(&ctx()).unwrap();
        if *p == bad {
            p.failure();
            failed += 1;
        } else {
            p.success(Duration::from_millis(1));
        }
    }
}

#[test]
fn five_consecutive_failures_eject_for_envoy_times() {
    let clock = ManualClock::new();
    let b = ten(&clock);
    fail_on(&b, 3, 4);
    assert!(!b.stats()[3].ejected, "four failures are not enough");
    fail_on(&b, 3, 1);
    let s = &b.stats()[3];
    assert!(s.ejected);
    assert_eq!(s.times_ejected, 1);
    for _ in 0..100 {
        assert_ne!(*b.pick(&ctx()).unwrap(), 3);
    }
    // 30 s later it is back.
    clock.advance(Duration::from_secs(30) - Duration::from_nanos(1));
    assert!(!b.candidates().contains(&BackendId(3)));
    let _ = b.pick(&ctx());
    assert!(!b.candidates().contains(&BackendId(3)));
    clock.advance(Duration::from_nanos(1));
    let _ = b.pick(&ctx());
    assert!(b.candidates().contains(&BackendId(3)));
    // Second ejection: 60 s.
    fail_on(&b, 3, 5);
    assert_eq!(b.stats()[3].times_ejected, 2);
    clock.advance(Duration::from_secs(59));
    let _ = b.pick(&ctx());
    assert!(b.stats()[3].ejected);
    clock.advance(Duration::from_secs(1));
    let _ = b.pick(&ctx());
    assert!(!b.stats()[3].ejected);
    // Capped at 300 s from the tenth ejection on.
    for k in 3..=12u64 {
        fail_on(&b, 3, 5);
        assert_eq!(b.stats()[3].times_ejected as u64, k);
        let len = (30 * k).min(300);
        clock.advance(Duration::from_secs(len - 1));
        let _ = b.pick(&ctx());
        assert!(b.stats()[3].ejected, "ejection {k} shorter than {len} s");
        clock.advance(Duration::from_secs(1));
        let _ = b.pick(&ctx());
        assert!(!b.stats()[3].ejected, "ejection {k} longer than {len} s");
    }
}

#[test]
fn a_success_resets_the_streak() {
    let clock = ManualClock::new();
    let b = Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .clock(clock)
        .build()
        .unwrap();
    for _ in 0..10 {
        for _ in 0..4 {
            b.pick(&ctx()).unwrap().failure();
        }
        b.pick(&ctx()).unwrap().success(Duration::from_millis(1));
    }
    assert!(!b.stats()[0].ejected);
}

#[test]
fn at_most_ten_percent_but_at_least_one_is_ejected() {
    let clock = ManualClock::new();
    let b = ten(&clock);
    fail_on(&b, 1, 5);
    fail_on(&b, 2, 5);
    let s = b.stats();
    assert!(s[1].ejected);
    assert!(!s[2].ejected, "10 % of 10 backends is one");
    // With 20 backends two may be ejected.
    let mut bb = Balancer::builder(RoundRobin::new()).clock(clock.clone());
    for i in 0..20 {
        bb = bb.backend(i, 1);
    }
    let b20 = bb.build().unwrap();
    fail_on(&b20, 1, 5);
    fail_on(&b20, 2, 5);
    fail_on(&b20, 3, 5);
    let s = b20.stats();
    assert_eq!(s.iter().filter(|s| s.ejected).count(), 2);
}

#[test]
fn without_detection_nothing_is_ejected() {
    let b = Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .backend(1, 1)
        .without_outlier_detection()
        .build()
        .unwrap();
    fail_on(&b, 0, 50);
    assert!(!b.stats()[0].ejected);
}

#[test]
fn custom_detection_settings_are_honoured() {
    let clock = ManualClock::new();
    let b = Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .backend(1, 1)
        .clock(clock.clone())
        .outlier_detection(OutlierDetection {
            consecutive_failures: 2,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(2),
            max_ejection_percent: 50,
        })
        .build()
        .unwrap();
    fail_on(&b, 0, 2);
    assert!(b.stats()[0].ejected);
    clock.advance(Duration::from_secs(1));
    let _ = b.pick(&ctx());
    assert!(!b.stats()[0].ejected);
}

fn tiers(clock: &ManualClock) -> Balancer<&'static str, RoundRobin> {
    tiers_with(
        clock,
        sysblocks_lb::DEFAULT_OVERPROVISIONING_PERCENT as f64 / 100.0,
    )
}

/// The two tiers with overprovisioning factor `factor`.
fn tiers_with(clock: &ManualClock, factor: f64) -> Balancer<&'static str, RoundRobin> {
    Balancer::builder(RoundRobin::new())
        .overprovisioning_factor(factor)
        .backend_in_tier("a1", 1, 0)
        .backend_in_tier("a2", 1, 0)
        .backend_in_tier("p1", 1, 1)
        .backend_in_tier("p2", 1, 1)
        .clock(clock.clone())
        .health_check(HealthCheck {
            interval: Duration::from_secs(1),
            unhealthy_threshold: 2,
            healthy_threshold: 3,
        })
        .build()
        .unwrap()
}

#[test]
fn failover_to_the_passive_tier_and_back() {
    let clock = ManualClock::new();
    let b = tiers(&clock);
    for _ in 0..20 {
        assert!(b.pick(&ctx()).unwrap().starts_with('a'));
    }
    let active_up = std::cell::Cell::new(false);
    let probe = |name: &&str| !name.starts_with('a') || active_up.get();
    // First failed round: still active (threshold 2).
    assert_eq!(b.check_health(probe), 4);
    assert_eq!(b.active_tier(), Some(0));
    // A second call within the interval probes nothing.
    assert_eq!(b.check_health(probe), 0);
    clock.advance(Duration::from_secs(1));
    b.check_health(probe);
    assert_eq!(b.active_tier(), Some(1));
    for _ in 0..20 {
        assert!(
            b.pick(&ctx()).unwrap().starts_with('p'),
            "after detection, passive only"
        );
    }
    // Recovery needs three passed probes in a row.
    active_up.set(true);
    for round in 0..3 {
        clock.advance(Duration::from_secs(1));
        b.check_health(probe);
        let expect = if round < 2 { Some(1) } else { Some(0) };
        assert_eq!(b.active_tier(), expect, "round {round}");
    }
    for _ in 0..20 {
        assert!(b.pick(&ctx()).unwrap().starts_with('a'));
    }
}

#[test]
fn active_active_within_a_tier_survives_one_loss() {
    // All-or-nothing failover (an infinite overprovisioning factor): the
    // tier keeps all the traffic while one backend is healthy.
    let clock = ManualClock::new();
    let b = tiers_with(&clock, f64::INFINITY);
    let probe = |name: &&str| *name != "a1";
    b.check_health(probe);
    clock.advance(Duration::from_secs(1));
    b.check_health(probe);
    assert_eq!(b.active_tier(), Some(0));
    for _ in 0..10 {
        assert_eq!(*b.pick(&ctx()).unwrap(), "a2");
    }
}

/// Envoy's spillover: with one of two tier-0 backends down, tier 0's
/// health is 50 % x 1.4 = 70, so it keeps 70 % of the traffic and tier 1
/// takes 30 %.
#[test]
fn a_half_healthy_tier_spills_thirty_percent() {
    let clock = ManualClock::new();
    let b = tiers(&clock);
    assert_eq!(b.tier_loads(), vec![(0, 100)]);
    let probe = |name: &&str| *name != "a1";
    b.check_health(probe);
    clock.advance(Duration::from_secs(1));
    b.check_health(probe);
    assert_eq!(b.tier_loads(), vec![(0, 70), (1, 30)]);
    assert_eq!(b.active_tier(), Some(0));
    assert!(!b.is_panicking(), "tier 1 takes the rest: no panic");
    let n = 20_000;
    let mut to_a2 = 0;
    for _ in 0..n {
        let p = b.pick(&ctx()).unwrap();
        assert_ne!(*p, "a1");
        to_a2 += usize::from(*p == "a2");
    }
    let share = to_a2 as f64 / n as f64;
    assert!((share - 0.7).abs() < 0.02, "tier 0 share {share}");
}

/// Envoy's panic threshold: a single tier with a third of its backends
/// healthy (33 % < 50 %) cannot hand its traffic to anyone, so it balances
/// over all of them; at exactly 50 % it does not panic; with the
/// threshold at 0 only a tier with no healthy backend panics.
#[test]
fn panic_threshold_balances_over_all_backends_below_it() {
    let build = |threshold: u8, n: usize| {
        let mut b = Balancer::builder(RoundRobin::new())
            .clock(ManualClock::new())
            .panic_threshold(threshold)
            .health_check(HealthCheck {
                unhealthy_threshold: 1,
                ..HealthCheck::default()
            });
        for i in 0..n {
            b = b.backend(i, 1);
        }
        b.build().unwrap()
    };
    let b = build(50, 3);
    b.check_health(|&i| i == 0);
    assert!(b.is_panicking());
    assert_eq!(b.candidates().len(), 3);
    let seen: std::collections::BTreeSet<usize> =
        (0..6).map(|_| *b.pick(&ctx()).unwrap()).collect();
    assert_eq!(seen.len(), 3);
    let b = build(50, 4);
    b.check_health(|&i| i < 2);
    assert!(!b.is_panicking(), "50 % is not below 50 %");
    assert_eq!(b.candidates(), vec![BackendId(0), BackendId(1)]);
    let b = build(0, 3);
    b.check_health(|&i| i == 0);
    assert!(!b.is_panicking());
    assert_eq!(b.candidates(), vec![BackendId(0)]);
}

/// The threshold is disregarded while other tiers can take the traffic
/// (normalised health 100 %), as in Envoy.
#[test]
fn panic_threshold_is_disregarded_while_the_tiers_cover_the_traffic() {
    let clock = ManualClock::new();
    let b = Balancer::builder(RoundRobin::new())
        .backend_in_tier(0usize, 1, 0)
        .backend_in_tier(1, 1, 0)
        .backend_in_tier(2, 1, 0)
        .backend_in_tier(10, 1, 1)
        .clock(clock.clone())
        .health_check(HealthCheck {
            unhealthy_threshold: 1,
            ..HealthCheck::default()
        })
        .build()
        .unwrap();
    // Tier 0: 1 of 3 healthy, health 46; tier 1 takes the other 54.
    b.check_health(|&i| i == 0 || i == 10);
    assert_eq!(b.tier_loads(), vec![(0, 46), (1, 54)]);
    assert!(!b.is_panicking());
    assert_eq!(b.candidates(), vec![BackendId(0), BackendId(3)]);
}

/// Slow start: a backend added later takes a share that grows with
/// Envoy's time factor; after the window it takes its full share.
#[test]
fn slow_start_ramps_a_new_backends_share() {
    let clock = ManualClock::new();
    let b = Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .clock(clock.clone())
        .seed(3)
        .slow_start(sysblocks_lb::SlowStart::new(Duration::from_secs(10)))
        .build()
        .unwrap();
    b.add(1, 1).unwrap();
    let share_of_new =
        |n: usize| (0..n).filter(|_| *b.pick(&ctx()).unwrap() == 1).count() as f64 / n as f64;
    // Factor 0.1 (the floor) at first: round robin offers it every second
    // pick; it is taken with probability 0.1 per offer, and a declined
    // offer is redrawn (up to four times), which lands on backend 0.
    let early = share_of_new(10_000);
    assert!(early < 0.2, "share at 0 s: {early}");
    clock.advance(Duration::from_secs(5));
    let middle = share_of_new(10_000);
    assert!(
        middle > early + 0.1 && middle < 0.45,
        "share at 5 s: {middle}"
    );
    clock.advance(Duration::from_secs(5));
    let late = share_of_new(10_000);
    assert!((late - 0.5).abs() < 1e-9, "share after the window: {late}");
}

/// A backend returning from an ejection ramps up again.
#[test]
fn slow_start_after_an_ejection() {
    let clock = ManualClock::new();
    let mut bb = Balancer::builder(RoundRobin::new())
        .clock(clock.clone())
        .seed(5)
        .slow_start(sysblocks_lb::SlowStart::new(Duration::from_secs(60)));
    for i in 0..10 {
        bb = bb.backend(i, 1);
    }
    let b = bb.build().unwrap();
    let share =
        |n: usize| (0..n).filter(|_| *b.pick(&ctx()).unwrap() == 3).count() as f64 / n as f64;
    assert!(
        (share(10_000) - 0.1).abs() < 1e-9,
        "builder backends start warm"
    );
    fail_on(&b, 3, 5);
    assert!(b.stats()[3].ejected);
    clock.advance(Duration::from_secs(30));
    let _ = b.pick(&ctx());
    assert!(!b.stats()[3].ejected);
    let back = share(10_000);
    assert!(back < 0.05, "share just after readmission: {back}");
    clock.advance(Duration::from_secs(60));
    assert!((share(10_000) - 0.1).abs() < 1e-9);
}

#[test]
fn panic_mode_when_nothing_is_healthy() {
    let clock = ManualClock::new();
    let b = tiers(&clock);
    for _ in 0..2 {
        b.check_health(|_| false);
        clock.advance(Duration::from_secs(1));
    }
    assert!(b.is_panicking());
    // Panic mode balances over the first tier, ignoring health.
    let seen: Vec<_> = (0..4).map(|_| *b.pick(&ctx()).unwrap()).collect();
    assert_eq!(seen, vec!["a1", "a2", "a1", "a2"]);

    let off = Balancer::builder(RoundRobin::new())
        .backend("x", 1)
        .clock(clock.clone())
        .panic_mode(false)
        .build()
        .unwrap();
    for _ in 0..3 {
        off.check_health(|_| false);
        clock.advance(Duration::from_secs(2));
    }
    assert!(off.is_panicking());
    assert!(off.pick(&ctx()).is_none());
}

#[test]
fn add_and_remove_while_picks_are_held() {
    let b = Balancer::builder(RoundRobin::new())
        .backend(0usize, 1)
        .build()
        .unwrap();
    let held = b.pick(&ctx()).unwrap();
    assert_eq!(b.in_flight(BackendId(0)), Some(1));
    let id1 = b.add(1, 1).unwrap();
    assert_eq!(id1, BackendId(1));
    assert!(b.remove(BackendId(0)));
    assert!(!b.remove(BackendId(0)));
    // The held pick still derefs to its backend and is still counted there.
    assert_eq!(*held, 0);
    assert_eq!(held.in_flight(), 1);
    for _ in 0..10 {
        assert_eq!(*b.pick(&ctx()).unwrap(), 1);
    }
    drop(held);
    assert_eq!(b.len(), 1);
    assert!(b.remove(id1));
    assert!(b.pick(&ctx()).is_none());
    assert!(b.is_empty());
}

#[test]
fn picks_are_send_and_the_balancer_is_shared() {
    fn send_sync<X: Send + Sync>() {}
    send_sync::<Balancer<String, RoundRobin>>();
    fn send<X: Send>() {}
    send::<sysblocks_lb::Pick<'static, String>>();

    let b = std::sync::Arc::new(
        Balancer::builder(sysblocks_lb::LeastConnections::new())
            .backend(0usize, 1)
            .backend(1, 1)
            .backend(2, 1)
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let b = std::sync::Arc::clone(&b);
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    let p = b.pick(&ctx()).unwrap();
                    if (i + t) % 1000 == 0 {
                        let _ = b.add(9, 1).map(|id| b.remove(id));
                    }
                    drop(p);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(b.stats().iter().all(|s| s.in_flight == 0));
    assert_eq!(b.len(), 3);
}

/// The interval-driven runner: a real thread on a short real interval
/// takes a backend out after two failed probes and back after two passed
/// ones, and stops when its handle is dropped. Bounded: each wait gives up
/// after 20 s (it takes a few intervals of 2 ms when the machine is idle).
#[cfg(not(sysblocks_loom))] // the checker thread is not part of the loom build
#[test]
fn health_checker_thread_probes_on_its_interval_and_stops_on_drop() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend("a", 1)
            .backend("b", 1)
            .health_check(HealthCheck {
                interval: Duration::from_millis(2),
                unhealthy_threshold: 2,
                healthy_threshold: 2,
            })
            .build()
            .unwrap(),
    );
    let b_down = Arc::new(AtomicBool::new(true));
    let probes = Arc::new(AtomicUsize::new(0));
    let (down, count) = (Arc::clone(&b_down), Arc::clone(&probes));
    let checker = b.spawn_health_checker(move |&name: &&str| {
        count.fetch_add(1, Ordering::Relaxed);
        !(name == "b" && down.load(Ordering::Relaxed))
    });
    let wait_until = |what: &str, cond: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !cond() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait_until("b taken out", &|| b.candidates() == vec![BackendId(0)]);
    assert!(probes.load(Ordering::Relaxed) >= 4, "two rounds at least");
    b_down.store(false, Ordering::Relaxed);
    wait_until("b back", &|| b.candidates().len() == 2);
    drop(checker);
    let after_stop = probes.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(probes.load(Ordering::Relaxed), after_stop, "thread stopped");
    // The thread released its reference to the balancer.
    assert_eq!(Arc::strong_count(&b), 1);
}
