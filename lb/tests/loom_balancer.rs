//! loom models: in-flight counts stay exact under concurrent pick/drop, and
//! membership changes never hand out a removed backend or lose a count.
//! Run with `RUSTFLAGS="--cfg sysblocks_loom"`; without it this file is empty.
#![cfg(sysblocks_loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use sysblocks_lb::{
    BackendId, Balancer, Context, LeastConnections, ManualClock, PowerOfTwoChoices, RoundRobin,
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
