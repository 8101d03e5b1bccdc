//! Owned picks: `'static`, movable to other threads and futures, counted in
//! flight until dropped, and reporting the latency they measured.

use std::sync::Arc;
use std::time::Duration;

use sysblocks_lb::{
    Balancer, Context, ManualClock, OwnedPick, PeakEwma, RoundRobin, DEFAULT_INITIAL_LATENCY,
};

fn assert_static_send<T: Send + 'static>(_: &T) {}

#[test]
fn owned_pick_outlives_the_borrow_and_moves_between_threads() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend("a".to_owned(), 1)
            .backend("b".to_owned(), 1)
            .build()
            .unwrap(),
    );
    let pick: OwnedPick<String> = b.pick_owned(&Context::default()).unwrap();
    assert_static_send(&pick);
    assert_eq!(pick.in_flight(), 1);
    let id = pick.id();
    assert_eq!(b.in_flight(id), Some(1));
    let name = std::thread::spawn(move || {
        let name = pick.clone();
        drop(pick);
        name
    })
    .join()
    .unwrap();
    assert!(name == "a" || name == "b");
    assert_eq!(b.in_flight(id), Some(0));
}

#[test]
fn owned_pick_keeps_a_removed_backend_and_the_balancer_alive() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(7u32, 1)
            .build()
            .unwrap(),
    );
    let pick = b.pick_owned(&Context::default()).unwrap();
    assert!(b.remove(pick.id()));
    drop(b);
    // The backend's value and the balancer (for the outcome) are still here.
    assert_eq!(*pick, 7);
    pick.failure();
}

#[test]
fn finish_records_the_latency_since_the_pick() {
    let clock = ManualClock::new();
    let b = Arc::new(
        Balancer::builder(PeakEwma::with_seed(1).initial_latency(DEFAULT_INITIAL_LATENCY))
            .backend(0u8, 1)
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let pick = b.pick_owned(&Context::default()).unwrap();
    clock.advance(Duration::from_millis(250));
    assert_eq!(pick.elapsed(), Duration::from_millis(250));
    pick.finish(true);
    // The initial estimate is 30 ms (tower's start): a slower sample
    // replaces it at once.
    assert_eq!(b.stats()[0].latency_estimate, Duration::from_millis(250));
    assert_eq!(b.stats()[0].in_flight, 0);
}

#[test]
fn finish_false_counts_towards_ejection() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(0u8, 1)
            .backend(1u8, 1)
            .build()
            .unwrap(),
    );
    for _ in 0..10 {
        let p = b.pick_owned(&Context::default()).unwrap();
        let bad = *p == 0;
        p.finish(!bad);
    }
    assert!(b.stats()[0].ejected);
    assert!(!b.stats()[1].ejected);
}
