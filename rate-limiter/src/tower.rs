//! tower middleware (feature `tower`): limit requests by a key taken from
//! each request, with any limiter that implements
//! [`AsyncCheck`] (the local limiters, [`Keyed`](crate::Keyed)
//! and the Redis ones).
//!
//! - [`RateLimitLayer`] / [`RateLimit`]: any request type; a denial is the
//!   error [`LimitError::Denied`] carrying the [`Decision`].
//! - [`HttpRateLimitLayer`] / [`HttpRateLimit`]: `http::Request` to
//!   `http::Response`; a denial is a `429 Too Many Requests` response with
//!   `Retry-After`, and every response carries the `RateLimit-Policy` and
//!   `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11 (see
//!   [`Policy`]).
//!
//! Both ask the limiter's [`AsyncCheck::check_now`]
//! first: a local limiter decides inside `call`, which then calls the inner
//! service at once (no allocation, no clone). A limiter that must wait for
//! I/O gets a boxed future that awaits the check and then calls a clone of
//! the inner service, the one `poll_ready` made ready (tower's usual
//! `mem::replace` of a ready service). `poll_ready` is the inner service's.
//!
//! A limiter's error (a store that did not answer, a cost it can never
//! admit) is [`LimitError::Limiter`] from the service, never a panic.
//!
//! # Examples
//!
//! ```
//! use std::convert::Infallible;
//! use sysblocks_rate_limiter::tower::{LimitError, RateLimitLayer};
//! use sysblocks_rate_limiter::{Gcra, Keyed, ManualClock, Quota};
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let per_user = Keyed::builder(Gcra::with_clock(Quota::per_minute(1), ManualClock::new())?)
//!     .build::<String>()?;
//! let echo = service_fn(|req: (String, u32)| async move { Ok::<_, Infallible>(req.1) });
//! let mut svc = RateLimitLayer::new(per_user, |req: &(String, u32)| req.0.clone()).layer(echo);
//!
//! let ok = svc.ready().await?.call(("ann".to_owned(), 7)).await;
//! assert_eq!(ok.ok(), Some(7));
//! match svc.ready().await?.call(("ann".to_owned(), 8)).await {
//!     Err(LimitError::Denied(d)) => assert_eq!(d.retry_after().unwrap().as_secs(), 60),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::sync::StdArc;
use crate::{AsyncCheck, Decision};

mod fields;
mod http;

pub use self::fields::{Policy, PolicyError};
pub use self::http::{HttpRateLimit, HttpRateLimitLayer, HttpResponseFuture};

/// A boxed `Send` future, for the checks that must wait.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The error of the rate-limiting services.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError<E, S> {
    /// The limiter denied the request ([`RateLimit`] only: the HTTP service
    /// answers a denial with a 429 response instead).
    Denied(Decision),
    /// The limiter could not decide: the request was neither admitted nor
    /// passed on.
    Limiter(E),
    /// The inner service failed.
    Service(S),
}

impl<E: fmt::Display, S: fmt::Display> fmt::Display for LimitError<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(d) => match d.retry_after() {
                Some(r) => write!(f, "rate limited: retry after {r:?}"),
                None => f.write_str("rate limited"),
            },
            Self::Limiter(e) => write!(f, "rate limiter failed: {e}"),
            Self::Service(e) => write!(f, "inner service failed: {e}"),
        }
    }
}

impl<E, S> std::error::Error for LimitError<E, S>
where
    E: std::error::Error + 'static,
    S: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Denied(_) => None,
            Self::Limiter(e) => Some(e),
            Self::Service(e) => Some(e),
        }
    }
}

/// What every service clone shares: the limiter and the key extractor.
struct Shared<L, F> {
    limiter: L,
    key: F,
}

/// Builds [`RateLimit`] services that share one limiter and one key
/// extractor (a closure from `&Request` to the key).
pub struct RateLimitLayer<L, F> {
    shared: StdArc<Shared<L, F>>,
}

impl<L, F> RateLimitLayer<L, F> {
    /// Limits requests with `limiter`, keyed by `key(&request)`.
    pub fn new(limiter: L, key: F) -> Self {
        Self {
            shared: StdArc::new(Shared { limiter, key }),
        }
    }

    /// The limiter.
    pub fn limiter(&self) -> &L {
        &self.shared.limiter
    }
}

impl<L, F> Clone for RateLimitLayer<L, F> {
    fn clone(&self) -> Self {
        Self {
            shared: StdArc::clone(&self.shared),
        }
    }
}

impl<L, F> fmt::Debug for RateLimitLayer<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer").finish_non_exhaustive()
    }
}

impl<S, L, F> Layer<S> for RateLimitLayer<L, F> {
    type Service = RateLimit<S, L, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: StdArc::clone(&self.shared),
        }
    }
}

/// Passes a request to the inner service if the limiter admits its key;
/// a denial is the error [`LimitError::Denied`]. Built by
/// [`RateLimitLayer`].
pub struct RateLimit<S, L, F> {
    inner: S,
    shared: StdArc<Shared<L, F>>,
}

impl<S: Clone, L, F> Clone for RateLimit<S, L, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: StdArc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, L, F> fmt::Debug for RateLimit<S, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, L, F> RateLimit<S, L, F> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// The cost of one request: one cell.
const COST: u32 = 1;

impl<S, L, F, K, Req> Service<Req> for RateLimit<S, L, F>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    L: AsyncCheck<K> + 'static,
    F: Fn(&Req) -> K + Send + Sync + 'static,
    K: Send + Sync + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = LimitError<L::Error, S::Error>;
    type Future = ResponseFuture<S::Future, S::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Service)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.shared.key)(&req);
        let kind = match self.shared.limiter.check_now(&key, COST) {
            Some(Ok(d)) if d.is_allowed() => Kind::Called {
                fut: self.inner.call(req),
            },
            Some(Ok(d)) => Kind::Done {
                out: Some(Err(LimitError::Denied(d))),
            },
            Some(Err(e)) => Kind::Done {
                out: Some(Err(LimitError::Limiter(e))),
            },
            None => {
                let shared = StdArc::clone(&self.shared);
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Kind::Boxed {
                    fut: Box::pin(async move {
                        let d = shared
                            .limiter
                            .check_async(&key, COST)
                            .await
                            .map_err(LimitError::Limiter)?;
                        if !d.is_allowed() {
                            return Err(LimitError::Denied(d));
                        }
                        inner.call(req).await.map_err(LimitError::Service)
                    }),
                }
            }
        };
        ResponseFuture { kind }
    }
}

pin_project! {
    /// The future of [`RateLimit`].
    pub struct ResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        // Admitted at once: the inner service's future.
        Called { #[pin] fut: F },
        // Denied, or the limiter failed, at once.
        Done { out: Option<Result<T, E>> },
        // The check had to wait.
        Boxed { fut: BoxFuture<Result<T, E>> },
    }
}

impl<F, T, E> fmt::Debug for ResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, LE, SE> Future for ResponseFuture<F, T, LimitError<LE, SE>>
where
    F: Future<Output = Result<T, SE>>,
{
    type Output = Result<T, LimitError<LE, SE>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut } => fut.poll(cx).map_err(LimitError::Service),
            KindProj::Done { out } => Poll::Ready(out.take().expect("polled after completion")),
            KindProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Wake, Waker};

    use tower::{service_fn, Layer, Service};

    use super::*;
    use crate::sync::StdArc;
    use crate::{CheckError, Gcra, Keyed, ManualClock, Quota};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: StdArc<Self>) {}
    }

    pub(super) fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(StdArc::new(Noop));
        let mut f = pin!(f);
        loop {
            if let Poll::Ready(out) = f.as_mut().poll(&mut Context::from_waker(&waker)) {
                return out;
            }
        }
    }

    /// A limiter that must "wait" (returns `None` from `check_now`) and
    /// fails on key 0.
    pub(super) struct Remote(pub(super) Gcra);

    impl AsyncCheck<u32> for Remote {
        type Error = CheckError;
        async fn check_async(&self, key: &u32, cost: u32) -> Result<Decision, CheckError> {
            // Yield once, as a round trip would.
            let mut yielded = false;
            std::future::poll_fn(|cx| {
                if yielded {
                    Poll::Ready(())
                } else {
                    yielded = true;
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
            if *key == 0 {
                return Err(CheckError::EndOfClock);
            }
            crate::RateLimiter::check_n(&self.0, cost)
        }
    }

    fn echo() -> impl Service<u32, Response = u32, Error = Infallible, Future: Send> + Clone {
        service_fn(|n: u32| async move { Ok::<_, Infallible>(n * 10) })
    }

    #[test]
    fn local_keyed_admits_then_denies_with_the_decision() {
        let clock = ManualClock::new();
        let keyed = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock.clone()).unwrap())
            .build::<u32>()
            .unwrap();
        let mut svc = RateLimitLayer::new(keyed, |n: &u32| n % 2).layer(echo());
        assert_eq!(block_on(svc.call(1)), Ok(10));
        assert_eq!(block_on(svc.call(2)), Ok(20));
        match block_on(svc.call(3)) {
            Err(LimitError::Denied(d)) => {
                assert_eq!(d.retry_after(), Some(std::time::Duration::from_secs(1)));
            }
            other => panic!("{other:?}"),
        }
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(block_on(svc.call(3)), Ok(30));
    }

    #[test]
    fn waiting_limiter_and_its_errors() {
        let clock = ManualClock::new();
        let remote = Remote(Gcra::with_clock(Quota::per_second(1), clock).unwrap());
        let mut svc = RateLimitLayer::new(remote, |n: &u32| *n).layer(echo());
        assert_eq!(block_on(svc.call(1)), Ok(10));
        assert!(matches!(block_on(svc.call(1)), Err(LimitError::Denied(_))));
        let err = block_on(svc.call(0)).unwrap_err();
        assert_eq!(err, LimitError::Limiter(CheckError::EndOfClock));
        assert!(err.to_string().starts_with("rate limiter failed"));
    }
}
