//! Behaviour of the tower services: the HTTP answers and fields, headers
//! switched off, a limiter that waits (as Redis does) or fails, and
//! `poll_ready` delegation. The real-socket test is `gateway.rs`.
#![cfg(feature = "tower")]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use sysblocks_rate_limiter::tower::{HttpRateLimitLayer, LimitError, Policy, RateLimitLayer};
use sysblocks_rate_limiter::{
    AsyncCheck, CheckError, Decision, Gcra, Keyed, ManualClock, Quota, RateLimiter,
};
use tower::{service_fn, Layer, Service};

struct Noop;
impl Wake for Noop {
    fn wake(self: Arc<Self>) {}
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Noop));
    pin!(f).poll(&mut Context::from_waker(&waker))
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A limiter outside the crate that answers only asynchronously (after a
/// yield, like a round trip) and fails for the key "down".
struct Remote(Gcra);

impl AsyncCheck<String> for Remote {
    type Error = CheckError;
    async fn check_async(&self, key: &String, cost: u32) -> Result<Decision, CheckError> {
        tokio::task::yield_now().await;
        if key == "down" {
            return Err(CheckError::EndOfClock);
        }
        self.0.check_n(cost)
    }
}

fn ok_service(
) -> impl Service<Request<String>, Response = Response<String>, Error = Infallible, Future: Send> + Clone
{
    service_fn(
        |req: Request<String>| async move { Ok::<_, Infallible>(Response::new(req.into_body())) },
    )
}

fn api_key(req: &Request<String>) -> String {
    req.headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_owned()
}

fn request(key: &str) -> Request<String> {
    Request::builder()
        .header("x-api-key", key)
        .body("hi".to_owned())
        .unwrap()
}

#[test]
fn http_keyed_answers_429_with_fields_per_key() {
    let clock = ManualClock::new();
    let quota = Quota::per_minute(2);
    let keyed = Keyed::builder(Gcra::with_clock(quota, clock.clone()).unwrap())
        .build::<String>()
        .unwrap();
    let mut svc = HttpRateLimitLayer::new(keyed, api_key)
        .policy(Policy::from_quota("per-key", quota).unwrap())
        .layer(ok_service());
    block_on(async {
        let res = svc.call(request("a")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), "hi");
        assert_eq!(res.headers()["ratelimit-policy"], r#""per-key";q=2;w=60"#);
        assert_eq!(res.headers()["ratelimit"], r#""per-key";r=1;t=30"#);
        assert!(res.headers().get("retry-after").is_none());
        let res = svc.call(request("a")).await.unwrap();
        assert_eq!(res.headers()["ratelimit"], r#""per-key";r=0;t=60"#);

        clock.advance(Duration::from_millis(500));
        let res = svc.call(request("a")).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.body(), "");
        // 29.5 s, rounded up.
        assert_eq!(res.headers()["retry-after"], "30");
        assert_eq!(res.headers()["ratelimit"], r#""per-key";r=0;t=30"#);
        assert_eq!(res.headers()["ratelimit-policy"], r#""per-key";q=2;w=60"#);

        // Another key has its own quota.
        let res = svc.call(request("b")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit"], r#""per-key";r=1;t=30"#);
    });
}

#[test]
fn http_default_policy_and_headers_off() {
    let clock = ManualClock::new();
    let g = Gcra::with_clock(Quota::per_second(1).burst(3), clock.clone()).unwrap();
    let mut svc = HttpRateLimitLayer::new(g, |_: &Request<String>| ()).layer(ok_service());
    let res = block_on(svc.call(request("a"))).unwrap();
    assert_eq!(res.headers()["ratelimit-policy"], r#""default";q=3"#);
    assert_eq!(res.headers()["ratelimit"], r#""default";r=2;t=1"#);

    let g = Gcra::with_clock(Quota::per_second(1), clock).unwrap();
    let mut svc = HttpRateLimitLayer::new(g, |_: &Request<String>| ())
        .headers(false)
        .layer(ok_service());
    let res = block_on(svc.call(request("a"))).unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().is_empty());
    let res = block_on(svc.call(request("a"))).unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers().len(), 1);
    assert_eq!(res.headers()["retry-after"], "1");
}

#[test]
fn http_waiting_limiter_and_its_failure() {
    let clock = ManualClock::new();
    let remote = Remote(Gcra::with_clock(Quota::per_hour(1), clock).unwrap());
    let mut svc = HttpRateLimitLayer::new(remote, api_key)
        .policy(Policy::new("remote", 1).unwrap())
        .layer(ok_service());
    block_on(async {
        let res = svc.call(request("a")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["ratelimit"], r#""remote";r=0;t=3600"#);
        let res = svc.call(request("a")).await.unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()["retry-after"], "3600");
        // A limiter error is the service's typed error, not a panic.
        let err = svc.call(request("down")).await.unwrap_err();
        assert_eq!(err, LimitError::Limiter(CheckError::EndOfClock));
    });
}

#[test]
fn generic_service_over_a_waiting_limiter() {
    let remote = Remote(Gcra::with_clock(Quota::per_hour(1), ManualClock::new()).unwrap());
    let echo = service_fn(|s: String| async move { Ok::<_, Infallible>(s.len()) });
    let mut svc = RateLimitLayer::new(remote, String::clone).layer(echo);
    block_on(async {
        assert_eq!(svc.call("abc".to_owned()).await, Ok(3));
        match svc.call("abc".to_owned()).await {
            Err(LimitError::Denied(d)) => {
                assert_eq!(d.retry_after(), Some(Duration::from_secs(3600)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            svc.call("down".to_owned()).await,
            Err(LimitError::Limiter(CheckError::EndOfClock))
        );
    });
}

/// An inner service that is ready only once `open` is set.
#[derive(Clone)]
struct Gate(Arc<AtomicBool>);

impl Service<u8> for Gate {
    type Response = u8;
    type Error = Infallible;
    type Future = std::future::Ready<Result<u8, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.0.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
    fn call(&mut self, n: u8) -> Self::Future {
        std::future::ready(Ok(n))
    }
}

#[test]
fn poll_ready_is_the_inner_services() {
    let open = Arc::new(AtomicBool::new(false));
    let g = Gcra::with_clock(Quota::per_second(1), ManualClock::new()).unwrap();
    let mut svc = RateLimitLayer::new(g, |_: &u8| ()).layer(Gate(open.clone()));
    assert!(poll_once(std::future::poll_fn(|cx| svc.poll_ready(cx))).is_pending());
    open.store(true, Ordering::SeqCst);
    assert!(matches!(
        poll_once(std::future::poll_fn(|cx| svc.poll_ready(cx))),
        Poll::Ready(Ok(()))
    ));
    assert!(matches!(poll_once(svc.call(5)), Poll::Ready(Ok(5))));
}
