//! The tower `Balance` service over mock backends: every strategy balances,
//! discovery inserts and removes, a backend that is not ready is not
//! picked, and outcomes are recorded from the response future through the
//! classifier.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;

use tower::discover::{Change, ServiceList};
use tower::{Service, ServiceExt};

use sysblocks_lb::{
    Balance, Balancer, BoxError, LeastConnections, ManualClock, OutlierDetection, PeakEwma,
    PowerOfTwoChoices, Random, RoundRobin, SmoothWeightedRoundRobin, Strategy,
};

/// A backend that answers with its id (or a status), and whose readiness
/// the test switches.
#[derive(Clone)]
struct Mock {
    id: usize,
    status: u16,
    ready: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    /// Advanced by each call, so the latency is known.
    clock: Option<(ManualClock, Duration)>,
}

impl Mock {
    fn new(id: usize) -> Self {
        Self {
            id,
            status: 200,
            ready: Arc::new(AtomicBool::new(true)),
            waker: Arc::new(Mutex::new(None)),
            clock: None,
        }
    }

    fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        if ready {
            if let Some(w) = self.waker.lock().unwrap().take() {
                w.wake();
            }
        }
    }
}

impl Service<()> for Mock {
    type Response = (usize, u16);
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<(usize, u16), Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        if self.ready.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn call(&mut self, (): ()) -> Self::Future {
        let answer = (self.id, self.status);
        let clock = self.clock.clone();
        Box::pin(async move {
            if let Some((clock, d)) = clock {
                clock.advance(d);
            }
            Ok(answer)
        })
    }
}

/// A discovery stream the test feeds by hand.
struct Feed {
    changes: Arc<Mutex<Vec<Change<usize, Mock>>>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl futures_core::Stream for Feed {
    type Item = Result<Change<usize, Mock>, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let mut changes = self.changes.lock().unwrap();
        if changes.is_empty() {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        } else {
            Poll::Ready(Some(Ok(changes.remove(0))))
        }
    }
}

#[derive(Clone)]
struct FeedHandle {
    changes: Arc<Mutex<Vec<Change<usize, Mock>>>>,
    waker: Arc<Mutex<Option<Waker>>>,
}

impl FeedHandle {
    fn send(&self, change: Change<usize, Mock>) {
        self.changes.lock().unwrap().push(change);
        if let Some(w) = self.waker.lock().unwrap().take() {
            w.wake();
        }
    }
}

fn feed() -> (Feed, FeedHandle) {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let waker = Arc::new(Mutex::new(None));
    (
        Feed {
            changes: Arc::clone(&changes),
            waker: Arc::clone(&waker),
        },
        FeedHandle { changes, waker },
    )
}

async fn call<S>(svc: &mut S) -> S::Response
where
    S: Service<(), Error = BoxError>,
{
    svc.ready()
        .await
        .expect("ready")
        .call(())
        .await
        .expect("answer")
}

async fn spread<St: Strategy>(strategy: St) -> HashMap<usize, usize> {
    let mocks: Vec<Mock> = (0..4).map(Mock::new).collect();
    let mut lb = Balance::new(ServiceList::new(mocks), strategy).unwrap();
    let mut seen = HashMap::new();
    for _ in 0..400 {
        let (id, _) = call(&mut lb).await;
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn every_strategy_balances_over_discovered_services() {
    let rr = spread(RoundRobin::new()).await;
    assert_eq!(rr.len(), 4);
    assert!(rr.values().all(|&n| n == 100), "{rr:?}");
    let swrr = spread(SmoothWeightedRoundRobin::new()).await;
    assert!(swrr.values().all(|&n| n == 100), "{swrr:?}");
    for seen in [
        spread(Random::with_seed(1)).await,
        spread(LeastConnections::new()).await,
        spread(PowerOfTwoChoices::with_seed(2)).await,
        spread(PeakEwma::with_seed(3)).await,
    ] {
        // With instant answers the latency and in-flight signals tie, so
        // the two-choice strategies may favour some backends.
        assert!(seen.len() >= 2, "{seen:?}");
        assert_eq!(seen.values().sum::<usize>(), 400);
    }
}

#[tokio::test]
async fn a_backend_that_is_not_ready_is_not_picked() {
    let mocks: Vec<Mock> = (0..3).map(Mock::new).collect();
    let slow = mocks[0].clone();
    slow.set_ready(false);
    let mut lb = Balance::new(ServiceList::new(mocks), RoundRobin::new()).unwrap();
    for _ in 0..30 {
        let (id, _) = call(&mut lb).await;
        assert_ne!(id, 0);
    }
    assert_eq!(lb.balancer().candidates().len(), 2);
    slow.set_ready(true);
    let mut back = false;
    for _ in 0..30 {
        back |= call(&mut lb).await.0 == 0;
    }
    assert!(back, "a backend that became ready is picked again");
}

#[tokio::test]
async fn poll_ready_waits_while_no_backend_is_ready() {
    let mock = Mock::new(0);
    mock.set_ready(false);
    let mut lb = Balance::new(ServiceList::new(vec![mock.clone()]), RoundRobin::new()).unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(50), lb.ready()).await;
    assert!(waiting.is_err(), "not ready while its only backend is not");
    let flip = mock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        flip.set_ready(true);
    });
    let (id, _) = tokio::time::timeout(Duration::from_secs(5), call(&mut lb))
        .await
        .expect("woken when the backend becomes ready");
    assert_eq!(id, 0);
}

#[tokio::test]
async fn discovery_inserts_and_removes_backends() {
    let (stream, handle) = feed();
    let mut lb = Balance::new(stream, RoundRobin::new()).unwrap();
    for id in 0..3 {
        handle.send(Change::Insert(id, Mock::new(id)));
    }
    let mut seen = [0usize; 3];
    for _ in 0..30 {
        seen[call(&mut lb).await.0] += 1;
    }
    assert_eq!(seen, [10, 10, 10]);
    handle.send(Change::Remove(1));
    for _ in 0..30 {
        assert_ne!(call(&mut lb).await.0, 1, "a removed backend is not picked");
    }
    assert_eq!(lb.len(), 2);
    // Re-inserting a key replaces its service.
    let mut replacement = Mock::new(9);
    replacement.status = 201;
    handle.send(Change::Insert(0, replacement));
    let mut nine = false;
    for _ in 0..10 {
        let (id, _) = call(&mut lb).await;
        assert_ne!(id, 0);
        nine |= id == 9;
    }
    assert!(nine);
    assert_eq!(lb.len(), 2);
}

fn server_errors(r: Result<&(usize, u16), &Infallible>) -> bool {
    r.map_or(true, |(_, status)| *status >= 500)
}

#[tokio::test]
async fn the_classifier_decides_failures_and_ejects() {
    let mut mocks: Vec<Mock> = (0..3).map(Mock::new).collect();
    mocks[1].status = 503;
    let mut lb = Balance::new(ServiceList::new(mocks), RoundRobin::new())
        .unwrap()
        .classify(server_errors);
    for _ in 0..30 {
        call(&mut lb).await;
    }
    let stats = lb.balancer().stats();
    assert!(stats[1].ejected, "{stats:?}");
    assert!(!stats[0].ejected && !stats[2].ejected);
    for _ in 0..10 {
        assert_ne!(call(&mut lb).await.0, 1);
    }
}

#[tokio::test]
async fn latency_is_recorded_from_the_response_future() {
    let clock = ManualClock::new();
    let mut mocks: Vec<Mock> = (0..2).map(Mock::new).collect();
    mocks[0].clock = Some((clock.clone(), Duration::from_millis(400)));
    mocks[1].clock = Some((clock.clone(), Duration::from_millis(2)));
    let builder = Balancer::builder(RoundRobin::new())
        .clock(clock.clone())
        .outlier_detection(OutlierDetection::default());
    // Round robin does not route by latency: timing is asked for.
    let mut lb = Balance::with_builder(ServiceList::new(mocks), builder)
        .unwrap()
        .record_latency(true);
    for _ in 0..20 {
        call(&mut lb).await;
    }
    let stats = lb.balancer().stats();
    assert_eq!(stats[0].latency_estimate, Duration::from_millis(400));
    assert!(
        stats[1].latency_estimate < Duration::from_millis(30),
        "{stats:?}"
    );
    assert!(stats.iter().all(|s| s.in_flight == 0));
}

#[tokio::test]
async fn a_dropped_response_future_is_no_longer_in_flight() {
    let mut lb = Balance::new(ServiceList::new(vec![Mock::new(0)]), RoundRobin::new()).unwrap();
    let fut = lb.ready().await.unwrap().call(());
    assert_eq!(lb.balancer().stats()[0].in_flight, 1);
    drop(fut);
    assert_eq!(lb.balancer().stats()[0].in_flight, 0);
}

#[tokio::test]
async fn only_latency_routing_strategies_time_requests_by_default() {
    let clock = ManualClock::new();
    let slow = || {
        let mut m = Mock::new(0);
        m.clock = Some((clock.clone(), Duration::from_millis(400)));
        vec![m]
    };
    let rr = Balancer::builder(RoundRobin::new()).clock(clock.clone());
    let mut lb = Balance::with_builder(ServiceList::new(slow()), rr).unwrap();
    call(&mut lb).await;
    let initial = sysblocks_lb::DEFAULT_INITIAL_LATENCY;
    assert_eq!(lb.balancer().stats()[0].latency_estimate, initial);
    let ewma = Balancer::builder(sysblocks_lb::PeakEwma::with_seed(1)).clock(clock.clone());
    let mut lb = Balance::with_builder(ServiceList::new(slow()), ewma).unwrap();
    call(&mut lb).await;
    assert_eq!(
        lb.balancer().stats()[0].latency_estimate,
        Duration::from_millis(400)
    );
}

#[tokio::test]
async fn finagles_start_sends_no_second_request_before_the_first_answer() {
    let clock = ManualClock::new();
    let mocks: Vec<Mock> = (0..2)
        .map(|i| {
            let mut m = Mock::new(i);
            m.clock = Some((clock.clone(), Duration::from_millis(1)));
            m
        })
        .collect();
    let start = PeakEwma::with_seed(5).initial_latency(Duration::ZERO);
    let builder = Balancer::builder(start).clock(clock.clone());
    let mut lb = Balance::with_builder(ServiceList::new(mocks), builder).unwrap();
    // The first request stays unanswered; the idle unknown backend takes
    // the second, which answers.
    let first = lb.ready().await.unwrap().call(());
    let (answered, _) = call(&mut lb).await;
    // The unanswered backend costs Finagle's penalty: everything goes to
    // the answered one, one request at a time or many at once.
    for _ in 0..50 {
        assert_eq!(call(&mut lb).await.0, answered);
    }
    let mut held = Vec::new();
    for _ in 0..50 {
        held.push(lb.ready().await.unwrap().call(()));
    }
    for f in held {
        assert_eq!(f.await.unwrap().0, answered);
    }
    let (silent, _) = first.await.unwrap();
    assert_ne!(silent, answered);
    // Answered at last, after about 100 ms by the mocks' clock: an
    // ordinary slow backend now, no longer penalised, so it takes requests
    // once the fast one has enough outstanding.
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(lb.ready().await.unwrap().call(()));
    }
    let mut seen = HashMap::new();
    for f in held {
        *seen.entry(f.await.unwrap().0).or_insert(0) += 1;
    }
    assert!(seen.contains_key(&silent), "{seen:?}");
}
