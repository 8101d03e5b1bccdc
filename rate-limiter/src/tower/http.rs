//! The HTTP flavour: a denial is a 429 response, and responses carry the
//! RateLimit fields.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderName, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::fields::{self, header, Policy};
use super::{BoxFuture, LimitError, COST};
use crate::sync::StdArc;
use crate::{AsyncCheck, Decision};

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-11 §3).
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers-11 §4).
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The policy's fields, built once.
struct Fields {
    /// The policy name as an sf-string.
    sf_name: String,
    /// `RateLimit-Policy`, if the quota is known; else `q` is taken from
    /// each decision's limit.
    policy: Option<HeaderValue>,
}

struct Shared<L, F> {
    limiter: L,
    key: F,
    /// `None`: no RateLimit fields.
    fields: Option<Fields>,
}

/// Inserts the `RateLimit-Policy` and `RateLimit` values, if any.
fn insert_fields(values: Option<(HeaderValue, HeaderValue)>, headers: &mut HeaderMap) {
    if let Some((policy, limit)) = values {
        headers.insert(RATELIMIT_POLICY.clone(), policy);
        headers.insert(RATELIMIT.clone(), limit);
    }
}

impl<L, F> Shared<L, F> {
    /// The `RateLimit-Policy` and `RateLimit` values for `d`, if enabled.
    fn field_values(&self, d: &Decision) -> Option<(HeaderValue, HeaderValue)> {
        let f = self.fields.as_ref()?;
        let policy = match &f.policy {
            Some(p) => p.clone(),
            None => header(format!("{};q={}", f.sf_name, d.limit())),
        };
        Some((policy, fields::rate_limit_header(&f.sf_name, d)))
    }

    /// Adds the RateLimit fields for `d` to `headers` (if enabled).
    fn add_fields(&self, d: &Decision, headers: &mut HeaderMap) {
        insert_fields(self.field_values(d), headers);
    }

    /// The 429 answer to a denial.
    fn denied<B: Default>(&self, d: &Decision) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Some(r) = fields::retry_after(d) {
            res.headers_mut().insert(RETRY_AFTER, r);
        }
        self.add_fields(d, res.headers_mut());
        res
    }
}

/// Builds [`HttpRateLimit`] services: requests limited by a key taken from
/// each `http::Request`; a denial answered `429 Too Many Requests` with
/// `Retry-After` in whole seconds (rounded up); the `RateLimit-Policy` and
/// `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-11 on
/// admitted and denied responses alike (see [`Policy`] and
/// [`HttpRateLimitLayer::headers`]).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response, StatusCode};
/// use sysblocks_rate_limiter::tower::{HttpRateLimitLayer, Policy};
/// use sysblocks_rate_limiter::{Gcra, ManualClock, Quota};
/// use tower::{service_fn, Layer, Service, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let quota = Quota::per_minute(2);
/// let layer = HttpRateLimitLayer::new(Gcra::with_clock(quota, ManualClock::new())?, |_: &Request<()>| ())
///     .policy(Policy::from_quota("default", quota)?);
/// let ok = service_fn(|_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::new())) });
/// let mut svc = layer.layer(ok);
///
/// let res = svc.ready().await?.call(Request::new(())).await?;
/// assert_eq!(res.headers()["ratelimit-policy"], r#""default";q=2;w=60"#);
/// assert_eq!(res.headers()["ratelimit"], r#""default";r=1;t=30"#);
/// svc.ready().await?.call(Request::new(())).await?;
/// let res = svc.ready().await?.call(Request::new(())).await?;
/// assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(res.headers()["retry-after"], "30");
/// assert_eq!(res.headers()["ratelimit"], r#""default";r=0;t=30"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct HttpRateLimitLayer<L, F> {
    shared: StdArc<Shared<L, F>>,
}

impl<L, F> HttpRateLimitLayer<L, F> {
    /// Limits requests with `limiter`, keyed by `key(&request)`, with the
    /// RateLimit fields under the policy name `default` whose `q` is each
    /// decision's limit (set [`HttpRateLimitLayer::policy`] to announce the
    /// window too).
    pub fn new(limiter: L, key: F) -> Self {
        Self {
            shared: StdArc::new(Shared {
                limiter,
                key,
                fields: Some(Fields {
                    sf_name: "\"default\"".to_owned(),
                    policy: None,
                }),
            }),
        }
    }

    /// Announces `policy` in `RateLimit-Policy` and labels `RateLimit` with
    /// its name (and turns the fields on).
    ///
    /// # Panics
    ///
    /// If the layer has been cloned already (set it first).
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.shared_mut().fields = Some(Fields {
            sf_name: policy.sf_name().to_owned(),
            policy: Some(header(policy.field_value())),
        });
        self
    }

    /// Whether responses carry the `RateLimit-Policy` and `RateLimit`
    /// fields (default: yes). `Retry-After` is always sent on a 429.
    ///
    /// # Panics
    ///
    /// If the layer has been cloned already (set it first).
    #[must_use]
    pub fn headers(mut self, on: bool) -> Self {
        let shared = self.shared_mut();
        if !on {
            shared.fields = None;
        } else if shared.fields.is_none() {
            shared.fields = Some(Fields {
                sf_name: "\"default\"".to_owned(),
                policy: None,
            });
        }
        self
    }

    fn shared_mut(&mut self) -> &mut Shared<L, F> {
        StdArc::get_mut(&mut self.shared).expect("configure the layer before cloning it")
    }

    /// The limiter.
    pub fn limiter(&self) -> &L {
        &self.shared.limiter
    }
}

impl<L, F> Clone for HttpRateLimitLayer<L, F> {
    fn clone(&self) -> Self {
        Self {
            shared: StdArc::clone(&self.shared),
        }
    }
}

impl<L, F> fmt::Debug for HttpRateLimitLayer<L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRateLimitLayer")
            .field("headers", &self.shared.fields.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, L, F> Layer<S> for HttpRateLimitLayer<L, F> {
    type Service = HttpRateLimit<S, L, F>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpRateLimit {
            inner,
            shared: StdArc::clone(&self.shared),
        }
    }
}

/// The HTTP rate-limiting service built by [`HttpRateLimitLayer`].
pub struct HttpRateLimit<S, L, F> {
    inner: S,
    shared: StdArc<Shared<L, F>>,
}

impl<S: Clone, L, F> Clone for HttpRateLimit<S, L, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: StdArc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, L, F> fmt::Debug for HttpRateLimit<S, L, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, L, F> HttpRateLimit<S, L, F> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, L, F, K, B, RB> Service<Request<B>> for HttpRateLimit<S, L, F>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    L: AsyncCheck<K> + 'static,
    F: Fn(&Request<B>) -> K + Send + Sync + 'static,
    K: Send + Sync + 'static,
    B: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = Response<RB>;
    type Error = LimitError<L::Error, S::Error>;
    type Future = HttpResponseFuture<S::Future, Response<RB>, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(LimitError::Service)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let shared = &self.shared;
        let key = (shared.key)(&req);
        let kind = match shared.limiter.check_now(&key, COST) {
            Some(Ok(d)) if d.is_allowed() => Kind::Called {
                fields: shared.field_values(&d),
                fut: self.inner.call(req),
            },
            Some(Ok(d)) => Kind::Done {
                out: Some(Ok(shared.denied(&d))),
            },
            Some(Err(e)) => Kind::Done {
                out: Some(Err(LimitError::Limiter(e))),
            },
            None => {
                let shared = StdArc::clone(shared);
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
                            return Ok(shared.denied(&d));
                        }
                        let mut res = inner.call(req).await.map_err(LimitError::Service)?;
                        shared.add_fields(&d, res.headers_mut());
                        Ok(res)
                    }),
                }
            }
        };
        HttpResponseFuture { kind }
    }
}

pin_project! {
    /// The future of [`HttpRateLimit`].
    pub struct HttpResponseFuture<F, T, E> {
        #[pin]
        kind: Kind<F, T, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T, E> {
        // Admitted at once: the inner service's future, then the fields.
        Called {
            #[pin]
            fut: F,
            fields: Option<(HeaderValue, HeaderValue)>,
        },
        // Denied (a 429), or the limiter failed, at once.
        Done { out: Option<Result<T, E>> },
        // The check had to wait.
        Boxed { fut: BoxFuture<Result<T, E>> },
    }
}

impl<F, T, E> fmt::Debug for HttpResponseFuture<F, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponseFuture").finish_non_exhaustive()
    }
}

impl<F, RB, LE, SE> Future for HttpResponseFuture<F, Response<RB>, LimitError<LE, SE>>
where
    F: Future<Output = Result<Response<RB>, SE>>,
{
    type Output = Result<Response<RB>, LimitError<LE, SE>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { fut, fields } => {
                let mut res = match fut.poll(cx) {
                    Poll::Ready(Ok(res)) => res,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(LimitError::Service(e))),
                    Poll::Pending => return Poll::Pending,
                };
                insert_fields(fields.take(), res.headers_mut());
                Poll::Ready(Ok(res))
            }
            KindProj::Done { out } => Poll::Ready(out.take().expect("polled after completion")),
            KindProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}
