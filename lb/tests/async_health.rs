//! The async active health check: a user probe, the TCP-connect and HTTP
//! GET probes against real listeners on 127.0.0.1, and probes that panic
//! or hang, which are cut off by the timeout without stopping the checker
//! or blocking `pick`. Real time, short intervals; every wait gives up
//! after 20 s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sysblocks_lb::{
    probe, BackendId, Balancer, BuildError, Context, HealthCheck, ProbeTiming, RoundRobin,
};

fn checks(interval_ms: u64, threshold: u32) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(interval_ms),
        unhealthy_threshold: threshold,
        healthy_threshold: threshold,
    }
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_probe_takes_a_backend_out_and_back() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend("a", 1)
            .backend("b", 1)
            .health_check(checks(2, 2))
            .build()
            .unwrap(),
    );
    let down = Arc::new(AtomicBool::new(true));
    let flag = Arc::clone(&down);
    let checker = b
        .spawn_async_health_checker(ProbeTiming::default(), move |name: &&'static str| {
            let up = *name != "b" || !flag.load(Ordering::Relaxed);
            async move { up }
        })
        .unwrap();
    wait_until("b out", || b.candidates() == vec![BackendId(0)]).await;
    down.store(false, Ordering::Relaxed);
    wait_until("b back", || b.candidates().len() == 2).await;
    drop(checker);
}

/// Probes that panic (in the future, or in the call that starts it) or
/// never answer count as failures; the checker keeps running rounds and
/// `pick` answers while the hanging probes are pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_hanging_probes_are_cut_off() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend("ok", 1)
            .backend("panics", 1)
            .backend("hangs", 1)
            .backend("panics-at-start", 1)
            .health_check(checks(5, 1))
            .panic_threshold(0)
            .build()
            .unwrap(),
    );
    let rounds = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&rounds);
    let timing = ProbeTiming {
        timeout: Duration::from_millis(20),
        jitter: Duration::from_millis(2),
    };
    let checker = b
        .spawn_async_health_checker(timing, move |name: &&'static str| {
            let name = *name;
            if name == "ok" {
                count.fetch_add(1, Ordering::Relaxed);
            }
            assert_ne!(name, "panics-at-start", "a probe that panics at once");
            async move {
                match name {
                    "panics" => panic!("a probe that panics"),
                    "hangs" => std::future::pending().await,
                    _ => true,
                }
            }
        })
        .unwrap();
    wait_until("only ok left", || b.candidates() == vec![BackendId(0)]).await;
    let seen = rounds.load(Ordering::Relaxed);
    // Picks answer at once while the hanging probes are pending.
    for _ in 0..1000 {
        assert_eq!(*b.pick(&Context::default()).unwrap(), "ok");
    }
    wait_until("more rounds", || rounds.load(Ordering::Relaxed) >= seen + 3).await;
    let stats = b.stats();
    assert!(stats[0].probe_healthy);
    assert!(stats[1..].iter().all(|s| !s.probe_healthy));
    drop(checker);
    // Stopped: no more rounds start.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let after = rounds.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(rounds.load(Ordering::Relaxed), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_timeout_is_refused() {
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(0usize, 1)
            .build()
            .unwrap(),
    );
    let bad = ProbeTiming {
        timeout: Duration::ZERO,
        ..ProbeTiming::default()
    };
    let err = b
        .spawn_async_health_checker(bad, |_: &usize| async { true })
        .err();
    assert_eq!(
        err,
        Some(BuildError::Zero {
            setting: "ProbeTiming::timeout"
        })
    );
}

/// A port nothing listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connect_probe() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let down = closed_port().await;
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(up, 1)
            .backend(down, 1)
            .health_check(checks(5, 2))
            .build()
            .unwrap(),
    );
    let checker = b
        .spawn_async_health_checker(
            ProbeTiming::default(),
            probe::tcp_connect(|a: &SocketAddr| *a),
        )
        .unwrap();
    wait_until("the closed port out", || {
        b.candidates() == vec![BackendId(0)]
    })
    .await;
    drop(checker);
}

/// An HTTP backend answering 200 on `/health` and one answering 503.
async fn http_backend(status: u16) -> SocketAddr {
    use http_body_util::Empty;
    use hyper::body::Bytes;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let code = if req.uri().path() == "/health" {
                        status
                    } else {
                        404
                    };
                    let mut res = hyper::Response::new(Empty::<Bytes>::new());
                    *res.status_mut() = hyper::StatusCode::from_u16(code).unwrap();
                    async move { Ok::<_, Infallible>(res) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_get_probe() {
    let ok = http_backend(200).await;
    let failing = http_backend(503).await;
    let closed = closed_port().await;
    let b = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(ok, 1)
            .backend(failing, 1)
            .backend(closed, 1)
            .health_check(checks(5, 2))
            .panic_threshold(0)
            .build()
            .unwrap(),
    );
    let checker = b
        .spawn_async_health_checker(
            ProbeTiming::default(),
            probe::http_get(|a: &SocketAddr| *a, "/health"),
        )
        .unwrap();
    wait_until("only the 200 left", || b.candidates() == vec![BackendId(0)]).await;
    // A wrong path answers 404: a failure too.
    let wrong = Arc::new(
        Balancer::builder(RoundRobin::new())
            .backend(ok, 1)
            .health_check(checks(5, 2))
            .panic_mode(false)
            .build()
            .unwrap(),
    );
    let c2 = wrong
        .spawn_async_health_checker(
            ProbeTiming::default(),
            probe::http_get(|a: &SocketAddr| *a, "/missing"),
        )
        .unwrap();
    wait_until("the 404 out", || wrong.candidates().is_empty()).await;
    drop((checker, c2));
}
