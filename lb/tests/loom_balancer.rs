//! loom models: in-flight counts stay exact under concurrent pick/drop;
//! membership changes never hand out a removed backend or lose a count;
//! ejection, readmission on expiry and the health check's verdicts, racing
//! with picks and with each other, leave the published view equal to the
//! backends' state, and no pick that starts after a change returned uses
//! the old view.
//! Run with `RUSTFLAGS="--cfg sysblocks_loom"`; without it this file is empty.
#![cfg(sysblocks_loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use sysblocks_lb::{
    BackendId, Balancer, Candidates, Clock, Context, HealthCheck, LeastConnections, ManualClock,
    OutlierDetection, PowerOfTwoChoices, RoundRobin, Strategy,
};

fn two<S: sysblocks_lb::Strategy>(s: S) -> Balancer<usize, S> {
    Balancer::builder(s)
        .backend(0usize, 1)
        .backend(1, 1)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

#[test]
fn loom_pick_drop_keeps_in_flight_exact() {
    sysblocks_sync::model(|| {
        let b = Arc::new(two(LeastConnections::new()));
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || {
            let p = b2.pick(&Context::default()).unwrap();
            assert!(p.in_flight() >= 1);
            let id = p.id();
            drop(p);
            id
        });
        let p = b.pick(&Context::default()).unwrap();
        assert!(p.in_flight() >= 1);
        drop(p);
        let _ = t.join().unwrap();
        for s in b.stats() {
            assert_eq!(s.in_flight, 0, "{s:?}");
        }
    });
}

#[test]
fn loom_held_picks_are_counted() {
    sysblocks_sync::model(|| {
        let b = Arc::new(two(PowerOfTwoChoices::with_seed(1)));
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || {
            let p = b2.pick(&Context::default()).unwrap();
            let id = p.id();
            p.failure();
            id
        });
        let held = b.pick(&Context::default()).unwrap();
        let mine = held.id();
        let theirs = t.join().unwrap();
        // Their pick is dropped, mine is held: exactly one in flight, on mine.
        for s in b.stats() {
            let expect = u64::from(s.id == mine);
            assert_eq!(s.in_flight, expect, "{s:?} mine {mine} theirs {theirs}");
        }
        drop(held);
        assert!(b.stats().iter().all(|s| s.in_flight == 0));
    });
}

#[test]
fn loom_remove_is_never_picked_after_it_returns() {
    sysblocks_sync::model(|| {
        let b = Arc::new(two(RoundRobin::new()));
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || {
            // Picks racing with the removal may get backend 0; they hold it
            // and it is counted where it is.
            let p = b2.pick(&Context::default()).unwrap();
            assert!(p.in_flight() >= 1);
            drop(p);
        });
        assert!(b.remove(BackendId(0)));
        for _ in 0..2 {
            let p = b.pick(&Context::default()).unwrap();
            assert_eq!(*p, 1, "removed backend picked after remove returned");
        }
        t.join().unwrap();
        let stats = b.stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].in_flight, 0);
    });
}

#[test]
fn loom_cached_snapshot_is_not_used_after_remove_returns() {
    sysblocks_sync::model(|| {
        let b = Arc::new(two(RoundRobin::new()));
        // Held across the removal, so that backend 0 stays alive and only
        // the snapshot check (not a failed upgrade) can keep it out.
        let held = b.pick(&Context::default()).unwrap();
        assert_eq!(*held, 0);
        let removed = Arc::new(AtomicBool::new(false));
        let (b2, removed2) = (Arc::clone(&b), Arc::clone(&removed));
        let t = thread::spawn(move || {
            // Fills this thread's cached snapshot, possibly the old one.
            drop(b2.pick(&Context::default()).unwrap());
            while !removed2.load(Ordering::Acquire) {
                thread::yield_now();
            }
            // After the removal returned (it happened before the flag), the
            // cached snapshot must not be used: both picks get backend 1.
            for _ in 0..2 {
                let p = b2.pick(&Context::default()).unwrap();
                assert_eq!(*p, 1, "removed backend picked from a cached snapshot");
            }
        });
        assert!(b.remove(BackendId(0)));
        removed.store(true, Ordering::Release);
        t.join().unwrap();
        assert_eq!(held.in_flight(), 1);
        drop(held);
        assert_eq!(b.stats()[0].in_flight, 0);
    });
}

#[test]
fn loom_add_while_picking_loses_no_count() {
    sysblocks_sync::model(|| {
        let b = Arc::new(
            Balancer::builder(RoundRobin::new())
                .backend(0usize, 1)
                .clock(ManualClock::new())
                .build()
                .unwrap(),
        );
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || {
            let p = b2.pick(&Context::default()).unwrap();
            let id = p.id();
            (id, p.in_flight())
        });
        let held = b.pick(&Context::default()).unwrap();
        let new = b.add(1, 1).unwrap();
        let (their_id, _) = t.join().unwrap();
        assert!(their_id == BackendId(0) || their_id == new);
        let total: u64 = b.stats().iter().map(|s| s.in_flight).sum();
        assert_eq!(total, 1, "only my held pick is in flight");
        drop(held);
        assert!(b.stats().iter().all(|s| s.in_flight == 0));
    });
}

/// Picks the candidate whose id is the context's key, else the first one:
/// the models choose their backends instead of depending on a rotation.
#[derive(Debug)]
struct ById;

impl Strategy for ById {
    type State = ();

    fn prepare<T>(&self, _: Candidates<'_, T>) {}

    fn pick<T>(
        &self,
        (): &(),
        c: Candidates<'_, T>,
        ctx: &Context,
        _: &dyn Clock,
    ) -> Option<usize> {
        (0..c.len())
            .find(|&i| Some(c.get(i).id().0) == ctx.key())
            .or(Some(0))
    }
}

fn key(id: u64) -> Context {
    Context::with_key(id)
}

/// Two backends in tier 0, panic mode on, a manual clock.
fn by_id(clock: &ManualClock, od: OutlierDetection, hc: HealthCheck) -> Balancer<usize, ById> {
    Balancer::builder(ById)
        .backend(0usize, 1)
        .backend(1, 1)
        .clock(clock.clone())
        .outlier_detection(od)
        .health_check(hc)
        .build()
        .unwrap()
}

/// Ejects after `failures` in a row, for 1 ns, any share of the backends.
fn eject_after(failures: u32) -> OutlierDetection {
    OutlierDetection {
        consecutive_failures: failures,
        base_ejection_time: Duration::from_nanos(1),
        max_ejection_time: Duration::from_nanos(1),
        max_ejection_percent: 100,
    }
}

/// One failed probe takes a backend out.
fn strict_probes() -> HealthCheck {
    HealthCheck {
        unhealthy_threshold: 1,
        ..HealthCheck::default()
    }
}

/// The published candidates are what the backends' state says: the
/// healthy ones, or all of them (panic mode) when none is.
fn assert_view_matches_state(b: &Balancer<usize, ById>) {
    let stats = b.stats();
    let healthy: Vec<BackendId> = stats
        .iter()
        .filter(|s| !s.ejected && s.probe_healthy)
        .map(|s| s.id)
        .collect();
    let panicking = healthy.is_empty();
    let expect = if panicking {
        stats.iter().map(|s| s.id).collect()
    } else {
        healthy
    };
    assert_eq!(b.candidates(), expect, "{stats:?}");
    assert_eq!(b.is_panicking(), panicking, "{stats:?}");
    assert!(stats.iter().all(|s| s.in_flight == 0), "{stats:?}");
}

#[test]
fn loom_failure_streak_ejects_while_another_thread_picks() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(by_id(&clock, eject_after(2), HealthCheck::default()));
        let ejected = Arc::new(AtomicBool::new(false));
        let (b2, ejected2) = (Arc::clone(&b), Arc::clone(&ejected));
        let t = thread::spawn(move || {
            // Races with the streak: backend 1 or, once ejected, 0.
            let p = b2.pick(&key(1)).unwrap();
            assert!(p.in_flight() >= 1);
            drop(p);
            while !ejected2.load(Ordering::Acquire) {
                thread::yield_now();
            }
            // The ejection returned before the flag: never backend 1 now.
            assert_eq!(*b2.pick(&key(1)).unwrap(), 0, "ejected backend picked");
        });
        for _ in 0..2 {
            let p = b.pick(&key(1)).unwrap();
            assert_eq!(*p, 1);
            p.failure();
        }
        ejected.store(true, Ordering::Release);
        assert_eq!(*b.pick(&key(1)).unwrap(), 0);
        t.join().unwrap();
        let s = b.stats();
        assert!(s[1].ejected && s[1].times_ejected == 1, "{s:?}");
        assert_view_matches_state(&b);
    });
}

#[test]
fn loom_readmission_on_expiry_races_with_a_pick() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(by_id(&clock, eject_after(1), HealthCheck::default()));
        b.pick(&key(1)).unwrap().failure();
        assert_eq!(b.candidates(), vec![BackendId(0)]);
        clock.advance(Duration::from_nanos(1));
        // Both picks see the expiry; one readmits (the other may find the
        // lock taken and pick from the old view), and both get a backend.
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || *b2.pick(&key(1)).unwrap());
        let mine = *b.pick(&key(1)).unwrap();
        let theirs = t.join().unwrap();
        assert!(mine <= 1 && theirs <= 1);
        let s = b.stats();
        assert!(!s[1].ejected && s[1].times_ejected == 1, "{s:?}");
        assert_view_matches_state(&b);
        assert_eq!(*b.pick(&key(1)).unwrap(), 1);
    });
}

#[test]
fn loom_ejection_races_with_readmission() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(by_id(&clock, eject_after(1), HealthCheck::default()));
        b.pick(&key(1)).unwrap().failure();
        let p0 = b.pick(&key(0)).unwrap();
        assert_eq!(*p0, 0);
        clock.advance(Duration::from_nanos(1));
        // Their pick readmits backend 1 while my failure ejects backend 0.
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || drop(b2.pick(&key(1)).unwrap()));
        p0.failure();
        t.join().unwrap();
        assert!(b.stats()[0].ejected);
        assert_view_matches_state(&b);
        // A readmission the race deferred happens on the next pick.
        assert_eq!(*b.pick(&key(0)).unwrap(), 1);
        assert_eq!(b.candidates(), vec![BackendId(1)]);
        assert_view_matches_state(&b);
    });
}

#[test]
fn loom_probe_verdict_races_with_a_pick() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(by_id(&clock, OutlierDetection::default(), strict_probes()));
        let checked = Arc::new(AtomicBool::new(false));
        let (b2, checked2) = (Arc::clone(&b), Arc::clone(&checked));
        let t = thread::spawn(move || {
            // Races with the verdict: backend 1 or, once out, 0.
            drop(b2.pick(&key(1)).unwrap());
            while !checked2.load(Ordering::Acquire) {
                thread::yield_now();
            }
            assert_eq!(*b2.pick(&key(1)).unwrap(), 0, "unhealthy backend picked");
        });
        assert_eq!(b.check_health(|&v| v != 1), 2);
        checked.store(true, Ordering::Release);
        t.join().unwrap();
        assert!(!b.stats()[1].probe_healthy);
        assert_eq!(b.candidates(), vec![BackendId(0)]);
        assert_view_matches_state(&b);
    });
}

#[test]
fn loom_probe_verdict_races_with_ejection() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let b = Arc::new(by_id(&clock, eject_after(1), strict_probes()));
        let p0 = b.pick(&key(0)).unwrap();
        let b2 = Arc::clone(&b);
        // Their probe takes backend 1 out while my failure ejects 0: the
        // last view published must hold both changes (panic mode).
        let t = thread::spawn(move || b2.check_health(|&v| v != 1));
        p0.failure();
        assert_eq!(t.join().unwrap(), 2);
        let s = b.stats();
        assert!(s[0].ejected && !s[1].probe_healthy, "{s:?}");
        assert!(b.is_panicking());
        assert_view_matches_state(&b);
    });
}

#[test]
fn loom_owned_pick_dropped_on_another_thread_is_counted_out() {
    sysblocks_sync::model(|| {
        let b = std::sync::Arc::new(two(RoundRobin::new()));
        let p = b.pick_owned(&Context::default()).unwrap();
        let id = p.id();
        let t = thread::spawn(move || {
            assert!(p.in_flight() >= 1);
            drop(p);
        });
        let q = b.pick(&Context::default()).unwrap();
        drop(q);
        t.join().unwrap();
        assert_eq!(b.in_flight(id), Some(0));
    });
}
