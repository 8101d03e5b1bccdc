//! The heterogeneous scenario over real sockets: ten hyper HTTP/1 backends
//! on 127.0.0.1, each answering after a uniform random delay on `[0, max]`
//! (maxima 1, 4 x 10, 4 x 100 and 1 x 1000 ms, times a scale), and a
//! closed-loop load generator whose clients send requests through a tower
//! balancer: `lb`'s [`Balance`] with each strategy (peak EWMA from its
//! default start, Finagle's, and from tower's), and tower's
//! `p2c::Balance` over `PeakEwma` beside them.
//!
//! `cargo run --release -p sysblocks-lb --features tower,hyper --example
//! sockets -- [scale] [requests] [clients]` prints p50, p99 and p99.9 per
//! balancer (defaults: scale 0.1, 20,000 requests, 50 clients).
//! `tests/sockets.rs` runs a short version and checks the ordering only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tower::discover::ServiceList;
use tower::{Service, ServiceExt};

use sysblocks_lb::{
    Balance, BoxError, LeastConnections, PeakEwma, PowerOfTwoChoices, RoundRobin, Strategy,
};

/// The scenario's latency maxima in milliseconds, before scaling.
pub const MAXIMA_MS: [f64; 10] = [
    1.0, 10.0, 10.0, 10.0, 10.0, 100.0, 100.0, 100.0, 100.0, 1000.0,
];

/// SplitMix64: the backends' delays, seeded per backend.
struct Rng(AtomicU64);

impl Rng {
    fn unit(&self) -> f64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Starts one backend answering after `U[0, max]`, counting the requests
/// it serves in `served`; returns its address.
pub async fn start_backend(max: Duration, seed: u64, served: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let rng = Arc::new(Rng(AtomicU64::new(seed)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let rng = Arc::clone(&rng);
            let served = Arc::clone(&served);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    served.fetch_add(1, Ordering::Relaxed);
                    let delay = max.mul_f64(rng.unit());
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The ten running backends: their addresses, in [`MAXIMA_MS`] order, and
/// how many requests each has served.
pub struct Backends {
    /// Where each backend listens.
    pub addrs: Vec<SocketAddr>,
    served: Vec<Arc<AtomicU64>>,
}

impl Backends {
    /// Requests served so far, per backend.
    pub fn served(&self) -> Vec<u64> {
        self.served
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }
}

/// Starts the ten backends with the maxima scaled by `scale`.
pub async fn start_backends(scale: f64) -> Backends {
    let mut backends = Backends {
        addrs: Vec::new(),
        served: Vec::new(),
    };
    for (i, ms) in MAXIMA_MS.iter().enumerate() {
        let max = Duration::from_secs_f64(ms * scale / 1000.0);
        let served = Arc::new(AtomicU64::new(0));
        let addr = start_backend(max, 0x5EED + i as u64, Arc::clone(&served)).await;
        backends.addrs.push(addr);
        backends.served.push(served);
    }
    backends
}

/// An HTTP/1 client of one backend: a pool of keep-alive connections,
/// always ready (a request opens a connection when none is idle).
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    idle: Arc<std::sync::Mutex<Vec<hyper::client::conn::http1::SendRequest<Empty<Bytes>>>>>,
}

impl Client {
    /// A client of `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            idle: Arc::default(),
        }
    }

    async fn get(self) -> Result<u16, BoxError> {
        let reuse = self.idle.lock().expect("pool").pop();
        let mut sender = match reuse {
            Some(s) if !s.is_closed() => s,
            _ => {
                let stream = TcpStream::connect(self.addr).await?;
                stream.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(conn);
                sender
            }
        };
        sender.ready().await?;
        let req = Request::get("/").body(Empty::<Bytes>::new())?;
        let res = sender.send_request(req).await?;
        let status = res.status().as_u16();
        res.into_body().collect().await?;
        self.idle.lock().expect("pool").push(sender);
        Ok(status)
    }
}

impl Service<()> for Client {
    type Response = u16;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<u16, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        Box::pin(self.clone().get())
    }
}

/// Drives `requests` requests from `clients` closed-loop clients through
/// `balancer` (shared behind an async lock: a client takes it to wait for
/// readiness and send, then awaits the answer without it) and returns every
/// request's latency in milliseconds, sorted.
pub async fn closed_loop<B>(balancer: B, requests: usize, clients: usize) -> Vec<f64>
where
    B: Service<(), Response = u16> + Send + 'static,
    B::Error: Into<BoxError>,
    B::Future: Send + 'static,
{
    let balancer = Arc::new(Mutex::new(balancer));
    let issued = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let balancer = Arc::clone(&balancer);
        let issued = Arc::clone(&issued);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < requests {
                let start = Instant::now();
                let answer = {
                    let mut b = balancer.lock().await;
                    let ready = b.ready().await.map_err(Into::into).expect("ready");
                    ready.call(())
                };
                let status = answer.await.map_err(Into::into).expect("an answer");
                assert_eq!(status, 200);
                latencies.push(start.elapsed().as_secs_f64() * 1e3);
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    all.sort_by(f64::total_cmp);
    all
}

/// The `q` quantile of sorted samples (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// p50, p99 and p99.9 in milliseconds.
pub fn quantiles(sorted: &[f64]) -> [f64; 3] {
    [
        quantile(sorted, 0.5),
        quantile(sorted, 0.99),
        quantile(sorted, 0.999),
    ]
}

fn clients_of(addrs: &[SocketAddr]) -> Vec<Client> {
    addrs.iter().map(|a| Client::new(*a)).collect()
}

/// `lb`'s [`Balance`] with `strategy` over the backends.
pub async fn run_lb<S: Strategy>(
    addrs: &[SocketAddr],
    strategy: S,
    requests: usize,
    clients: usize,
) -> Vec<f64> {
    let balance = Balance::new(ServiceList::new(clients_of(addrs)), strategy).expect("build");
    closed_loop(balance, requests, clients).await
}

/// tower's `p2c::Balance` over `PeakEwma` (linkerd's defaults: 30 ms
/// initial estimate, 10 s decay), completing on the response.
pub async fn run_tower_p2c(addrs: &[SocketAddr], requests: usize, clients: usize) -> Vec<f64> {
    run_tower_p2c_scaled(addrs, 1.0, requests, clients).await
}

/// As [`run_tower_p2c`] with the initial estimate and the decay time
/// multiplied by `scale`.
pub async fn run_tower_p2c_scaled(
    addrs: &[SocketAddr],
    scale: f64,
    requests: usize,
    clients: usize,
) -> Vec<f64> {
    let discover = tower::load::PeakEwmaDiscover::new(
        ServiceList::new(clients_of(addrs)),
        Duration::from_millis(30).mul_f64(scale),
        Duration::from_secs(10).mul_f64(scale),
        tower::load::CompleteOnResponse::default(),
    );
    let balance = tower::balance::p2c::Balance::new(discover);
    closed_loop(balance, requests, clients).await
}

/// The balancers the scenario compares: `lb`'s [`Balance`] with four
/// strategies, and tower's `p2c::Balance` over `PeakEwma`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// [`RoundRobin`].
    RoundRobin,
    /// [`LeastConnections`].
    LeastConnections,
    /// [`PowerOfTwoChoices`].
    PowerOfTwoChoices,
    /// [`PeakEwma`] as it comes (Finagle's start: a zero initial
    /// estimate), its decay scaled.
    PeakEwma,
    /// [`PeakEwma`] with tower's start (linkerd's 30 ms initial estimate),
    /// its initial estimate and decay scaled: tower's settings.
    PeakEwmaTowerStart,
    /// tower's `p2c::Balance` over `PeakEwma`, scaled alike.
    TowerPeakEwma,
}

impl Contender {
    /// Every contender, in the order [`run_all`] runs them.
    pub const ALL: [Self; 6] = [
        Self::RoundRobin,
        Self::LeastConnections,
        Self::PowerOfTwoChoices,
        Self::PeakEwma,
        Self::PeakEwmaTowerStart,
        Self::TowerPeakEwma,
    ];

    /// The contender's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::RoundRobin => "round robin",
            Self::LeastConnections => "least connections",
            Self::PowerOfTwoChoices => "P2C",
            Self::PeakEwma => "P2C + peak EWMA",
            Self::PeakEwmaTowerStart => "P2C + peak EWMA, tower's start",
            Self::TowerPeakEwma => "tower p2c + PeakEwma",
        }
    }
}

/// One closed-loop run of one contender.
pub struct Run {
    /// Every request's latency in milliseconds, sorted.
    pub latencies: Vec<f64>,
    /// Requests each backend served during the run, in [`MAXIMA_MS`] order.
    pub served: Vec<u64>,
}

/// Runs `contender` on `backends` (`requests` requests from `clients`
/// clients; `seed` seeds our randomised strategies). The scenario is the
/// simulation's with every time scaled by `scale`: the latencies, and for
/// the peak-EWMA balancers the decay time (10 s at scale 1) and, for
/// tower's and ours with tower's start, the initial estimate (30 ms at
/// scale 1; linkerd's defaults), so that the run spans as many decay times
/// as the simulation's does. Our default start has no initial estimate to
/// scale.
pub async fn run_contender(
    backends: &Backends,
    contender: Contender,
    scale: f64,
    requests: usize,
    clients: usize,
    seed: u64,
) -> Run {
    let addrs = &backends.addrs;
    let before = backends.served();
    let latencies = match contender {
        Contender::RoundRobin => run_lb(addrs, RoundRobin::new(), requests, clients).await,
        Contender::LeastConnections => {
            run_lb(addrs, LeastConnections::new(), requests, clients).await
        }
        Contender::PowerOfTwoChoices => {
            run_lb(addrs, PowerOfTwoChoices::with_seed(seed), requests, clients).await
        }
        Contender::PeakEwma => {
            let scaled =
                PeakEwma::with_seed(seed).decay(sysblocks_lb::DEFAULT_DECAY.mul_f64(scale));
            run_lb(addrs, scaled, requests, clients).await
        }
        Contender::PeakEwmaTowerStart => {
            let scaled = PeakEwma::with_seed(seed)
                .decay(sysblocks_lb::DEFAULT_DECAY.mul_f64(scale))
                .initial_latency(sysblocks_lb::DEFAULT_INITIAL_LATENCY.mul_f64(scale));
            run_lb(addrs, scaled, requests, clients).await
        }
        Contender::TowerPeakEwma => run_tower_p2c_scaled(addrs, scale, requests, clients).await,
    };
    let served = backends
        .served()
        .iter()
        .zip(before)
        .map(|(after, before)| after - before)
        .collect();
    Run { latencies, served }
}

/// Every contender once on the same backends, in [`Contender::ALL`]'s
/// order; p50, p99 and p99.9 of each (see [`run_contender`]).
pub async fn run_all(scale: f64, requests: usize, clients: usize) -> Vec<(&'static str, [f64; 3])> {
    let backends = start_backends(scale).await;
    let mut out = Vec::new();
    for contender in Contender::ALL {
        let run = run_contender(&backends, contender, scale, requests, clients, 2).await;
        out.push((contender.name(), quantiles(&run.latencies)));
    }
    out
}

#[allow(dead_code)]
fn main() {
    let mut args = std::env::args().skip(1);
    let scale: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.1);
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let clients: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(run_all(scale, requests, clients));
    println!(
        "# heterogeneous backends over sockets (scale {scale}, {requests} requests, \
         {clients} clients; ms)"
    );
    println!("| balancer | p50 | p99 | p99.9 |");
    println!("|---|---|---|---|");
    for (name, [p50, p99, p999]) in results {
        println!("| {name} | {p50:.2} | {p99:.2} | {p999:.2} |");
    }
}
