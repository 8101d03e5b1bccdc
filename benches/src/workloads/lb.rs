//! Inputs and contender setups for `lb`, shared by its criterion bench
//! and the `compare` binary: balancers of 10 and 100 backends, the
//! pick+drop loops on one and two threads, tower's `p2c::Balance` driven
//! the same way, and the heterogeneous latency simulation run through our
//! strategies (`lb/examples/simulate.rs`, the code `lb/tests/simulation.rs`
//! runs) and through tower's `p2c::Balance` over `PeakEwma`.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::poll_fn;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use sysblocks_lb::{Balancer, Context, Strategy};
use tower::balance::p2c::Balance;
use tower::discover::ServiceList;
use tower::load::{CompleteOnResponse, PeakEwmaDiscover, PendingRequestsDiscover};
use tower::util::rng::Rng;
use tower::Service;

/// The simulation of `lb`'s example, compiled here as a module.
#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
#[path = "../../../lb/examples/simulate.rs"]
pub mod sim;

/// The sockets scenario of `lb`'s example (ten hyper backends on
/// 127.0.0.1, closed-loop clients), compiled here as a module.
#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
#[path = "../../../lb/examples/sockets.rs"]
pub mod sockets;

/// Backend counts of the pick cases.
pub const SIZES: [usize; 2] = [10, 100];

/// A balancer over `n` backends `0..n` with weights 1, 2, 3, 1, 2, 3, ...
/// (unequal, so the weighted strategies do real work).
///
/// # Panics
///
/// Never for `n` below `u32::MAX / 3`.
pub fn balancer<S: Strategy>(strategy: S, n: usize) -> Balancer<usize, S> {
    let mut b = Balancer::builder(strategy);
    for i in 0..n {
        b = b.backend(i, 1 + (i % 3) as u32);
    }
    b.build().expect("valid balancer")
}

/// `iters` pick+drop pairs on this thread, a fresh routing key per pick
/// (for the consistent-hashing strategies; the others ignore it).
pub fn pick_drop<S: Strategy>(b: &Balancer<usize, S>, iters: u64) -> Duration {
    let mut k = 0u64;
    let start = Instant::now();
    for _ in 0..iters {
        k = k.wrapping_add(0x9e37_79b9_7f4a_7c15);
        drop(black_box(b.pick(&Context::with_key(k))));
    }
    start.elapsed()
}

/// Two threads each run `iters` pick+drop pairs; the time is the wall time
/// of the slower one (so it reads as time per pick per thread).
pub fn pick_drop_two_threads<S: Strategy>(b: &Arc<Balancer<usize, S>>, iters: u64) -> Duration {
    let other = Arc::clone(b);
    let h = std::thread::spawn(move || pick_drop(&other, iters));
    let mine = pick_drop(b, iters);
    mine.max(h.join().expect("bench thread"))
}

/// SplitMix64, seeded, for tower's `from_rng` and the tower simulation.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    /// From a seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Rng for SeededRng {
    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

/// A service that is always ready and answers at once.
type Instant0 = tower::util::ServiceFn<fn(()) -> std::future::Ready<Result<(), Infallible>>>;

fn answer_now((): ()) -> std::future::Ready<Result<(), Infallible>> {
    std::future::ready(Ok(()))
}

fn instant_service() -> Instant0 {
    tower::service_fn(answer_now as fn(()) -> _)
}

/// tower's `p2c::Balance` over `n` always-ready services with the
/// `PendingRequests` load (what our `PowerOfTwoChoices` computes: fewer in
/// flight wins), and a routine timing `iters` of `poll_ready` + `call` +
/// drop of the response future: tower's pick+drop.
pub fn tower_p2c_pick_drop(n: usize) -> impl FnMut(u64) -> Duration {
    let services: Vec<Instant0> = (0..n).map(|_| instant_service()).collect();
    let discover = PendingRequestsDiscover::new(
        ServiceList::new::<()>(services),
        CompleteOnResponse::default(),
    );
    let mut balance = Balance::from_rng(discover, SeededRng::new(7));
    let mut cx = TaskContext::from_waker(Waker::noop());
    move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            match balance.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => drop(black_box(balance.call(()))),
                _ => panic!("always-ready services are ready"),
            }
        }
        start.elapsed()
    }
}

/// Polls a future that is ready at once (an instant backend's answer).
fn ready_now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut TaskContext::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("instant backends answer at once"),
    }
}

/// Our tower `Balance` with `strategy` over `n` always-ready services that
/// answer at once, and a routine timing `iters` requests through it:
/// `poll_ready`, `call`, and the response future polled to its end (which
/// records the outcome and the latency). The whole per-request cost of the
/// balancing service, the backends costing nothing.
pub fn lb_service_request<S: Strategy>(n: usize, strategy: S) -> impl FnMut(u64) -> Duration {
    let services: Vec<Instant0> = (0..n).map(|_| instant_service()).collect();
    let mut balance = sysblocks_lb::Balance::new(ServiceList::new::<()>(services), strategy)
        .expect("valid balancer");
    let mut cx = TaskContext::from_waker(Waker::noop());
    move |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            match balance.poll_ready(&mut cx) {
                Poll::Ready(Ok(())) => {
                    let answer: () = ready_now(balance.call(())).expect("instant answer");
                    black_box(answer);
                }
                _ => panic!("always-ready services are ready"),
            }
        }
        start.elapsed()
    }
}

/// tower's `p2c::Balance` over `n` instant services, with the load
/// `PeakEwma` (`peak_ewma`) or `PendingRequests`, timed as
/// [`lb_service_request`]: `poll_ready`, `call`, the response to its end.
pub fn tower_p2c_request(n: usize, peak_ewma: bool) -> Box<dyn FnMut(u64) -> Duration> {
    fn timed<S>(mut balance: S) -> Box<dyn FnMut(u64) -> Duration>
    where
        S: Service<()> + 'static,
        S::Error: std::fmt::Debug,
    {
        let mut cx = TaskContext::from_waker(Waker::noop());
        Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                match balance.poll_ready(&mut cx) {
                    Poll::Ready(Ok(())) => {
                        black_box(ready_now(balance.call(())).expect("instant answer"));
                    }
                    _ => panic!("always-ready services are ready"),
                }
            }
            start.elapsed()
        })
    }
    let services: Vec<Instant0> = (0..n).map(|_| instant_service()).collect();
    let list = ServiceList::new::<()>(services);
    if peak_ewma {
        let discover = PeakEwmaDiscover::new::<()>(
            list,
            sysblocks_lb::DEFAULT_INITIAL_LATENCY,
            sysblocks_lb::DEFAULT_DECAY,
            CompleteOnResponse::default(),
        );
        timed(Balance::from_rng(discover, SeededRng::new(7)))
    } else {
        let discover = PendingRequestsDiscover::new(list, CompleteOnResponse::default());
        timed(Balance::from_rng(discover, SeededRng::new(7)))
    }
}

/// Time scale of the tower simulation: tokio's timer counts whole
/// milliseconds, so every latency (and the EWMA's decay and initial
/// estimate, which only ever appear in ratios with latencies) is run 1000
/// times longer and divided back, which gives it microsecond resolution.
const SCALE: f64 = 1000.0;

/// The scenario `s` (closed-loop clients, backends with latency uniform on
/// `[0, max]`) through tower's `p2c::Balance` over `PeakEwma` with linkerd's
/// settings (decay 10 s, initial estimate 30 ms:
/// [`sysblocks_lb::DEFAULT_DECAY`] and
/// [`sysblocks_lb::DEFAULT_INITIAL_LATENCY`], our `PeakEwma`'s settings
/// from tower's start; tower has no Finagle start), on a current-thread
/// tokio runtime with paused time. Returns every request's latency in ms, sorted. The latency draws
/// come from the same generator as the example's but not in the same order
/// (the example also draws routing keys), so the two runs are the same
/// scenario, not the same sample.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn tower_p2c_peak_ewma(s: &sim::Scenario, seed: u64) -> Vec<f64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    let rng = Rc::new(RefCell::new(SeededRng::new(seed)));
    let services: Vec<_> = s
        .backends
        .iter()
        .map(|b| {
            let rng = Rc::clone(&rng);
            let max_ms = b.max_ms;
            tower::service_fn(move |()| {
                let ms = rng.borrow_mut().unit() * max_ms;
                async move {
                    tokio::time::sleep(Duration::from_secs_f64(ms * SCALE / 1e3)).await;
                    Ok::<f64, Infallible>(ms)
                }
            })
        })
        .collect();
    let discover = PeakEwmaDiscover::new::<()>(
        ServiceList::new::<()>(services),
        sysblocks_lb::DEFAULT_INITIAL_LATENCY.mul_f64(SCALE),
        sysblocks_lb::DEFAULT_DECAY.mul_f64(SCALE),
        CompleteOnResponse::default(),
    );
    let balance = Rc::new(RefCell::new(Balance::from_rng(
        discover,
        SeededRng::new(seed ^ 0x5eed),
    )));
    let latencies = Rc::new(RefCell::new(Vec::with_capacity(s.requests)));
    let issued = Rc::new(RefCell::new(0usize));
    let local = tokio::task::LocalSet::new();
    for _ in 0..s.clients {
        let (balance, latencies, issued) = (
            Rc::clone(&balance),
            Rc::clone(&latencies),
            Rc::clone(&issued),
        );
        let requests = s.requests;
        local.spawn_local(async move {
            loop {
                {
                    let mut n = issued.borrow_mut();
                    if *n == requests {
                        return;
                    }
                    *n += 1;
                }
                // Readiness and the call in one step, so no other client
                // takes the endpoint chosen for this one.
                let response = poll_fn(|cx| {
                    let mut b = balance.borrow_mut();
                    match b.poll_ready(cx) {
                        Poll::Ready(Ok(())) => Poll::Ready(b.call(())),
                        Poll::Ready(Err(e)) => panic!("balance failed: {e}"),
                        Poll::Pending => Poll::Pending,
                    }
                });
                let ms = response.await.await.expect("infallible service");
                latencies.borrow_mut().push(ms);
            }
        });
    }
    rt.block_on(local);
    let mut v = Rc::try_unwrap(latencies)
        .expect("clients finished")
        .into_inner();
    v.sort_by(f64::total_cmp);
    v
}
