//! [`Balance`]: a tower `Service` that spreads requests over `Service`
//! backends with any [`Strategy`], the backends coming from a
//! `tower::discover::Discover` stream.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context as TaskContext, Poll};

use pin_project_lite::pin_project;
use tower::discover::{Change, Discover};
use tower::Service;

use crate::backend::BackendId;
use crate::balancer::Balancer;
use crate::builder::BalancerBuilder;
use crate::error::BuildError;
use crate::pick::OwnedPick;
use crate::strategy::{Context, Strategy};
use crate::sync::{Mutex, StdArc};

/// The error type of [`Balance`]: the discovery stream's or a backend's
/// error, boxed, as tower's own balancer reports them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One discovered backend as the balancer holds it: the discovery key and
/// the service (behind a lock only [`Balance`] takes, so never contended).
pub struct Endpoint<K, Svc> {
    key: K,
    service: Mutex<Svc>,
}

impl<K, Svc> Endpoint<K, Svc> {
    /// The key the discovery stream inserted it under.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: fmt::Debug, Svc> fmt::Debug for Endpoint<K, Svc> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Decides whether a backend's answer counts as a failure (towards outlier
/// ejection) or a success (whose latency feeds the estimate).
pub trait Classify<Res, E> {
    /// `true` when `result` is a failure.
    fn is_failure(&self, result: Result<&Res, &E>) -> bool;
}

/// The default classifier: an error is a failure, any response a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorIsFailure;

impl<Res, E> Classify<Res, E> for ErrorIsFailure {
    fn is_failure(&self, result: Result<&Res, &E>) -> bool {
        result.is_err()
    }
}

impl<Res, E, F> Classify<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> bool,
{
    fn is_failure(&self, result: Result<&Res, &E>) -> bool {
        self(result)
    }
}

/// The shared handle on one endpoint, as the balancer holds it.
pub type SharedEndpoint<K, Svc> = StdArc<Endpoint<K, Svc>>;

/// A member as [`Balance`] tracks it.
type Member<K, Svc> = (BackendId, SharedEndpoint<K, Svc>);

/// The balancer a [`Balance`] drives: its values are the discovered
/// endpoints.
pub type EndpointBalancer<K, Svc, S> = Balancer<SharedEndpoint<K, Svc>, S>;

/// A tower `Service` that balances requests over the services of a
/// `Discover` stream with a [`Strategy`].
///
/// Each discovered service joins the [`Balancer`] with weight 1 in tier 0
/// and leaves it when the stream removes its key. `poll_ready` takes a
/// pick (with [`Context::default`]) and polls the chosen service: a service
/// that is not ready is set aside (it stops being a candidate) and polled
/// again on later `poll_ready` calls until it is; one that fails its
/// `poll_ready` is dropped, as tower's balancer does. `call` sends the
/// request to the ready pick, and the response future records the outcome
/// when it completes: the [`Classify`] decides success or failure, a
/// success records the time since the pick as latency (when
/// [`Balance::record_latency`] is on: by default under a strategy that
/// routes by latency; the others skip both clock reads and record the
/// success only), and a future dropped
/// before completing records nothing (the request only stops being in
/// flight). Ejection, health checks and tiers work as on any balancer,
/// reachable through [`Balance::balancer`].
///
/// Requests carry no [`Context`] key: the pick is made in `poll_ready`,
/// before the request is seen, so a keyed strategy
/// ([`ConsistentHashing`](crate::ConsistentHashing)) sees no key here.
pub struct Balance<D: Discover, S: Strategy, C = ErrorIsFailure>
where
    D::Key: Send + Sync + 'static,
    D::Service: Send + 'static,
{
    discover: D,
    balancer: StdArc<EndpointBalancer<D::Key, D::Service, S>>,
    /// Every member: id and endpoint, for removals by key.
    members: Vec<Member<D::Key, D::Service>>,
    /// Members whose last `poll_ready` was pending; not candidates.
    unready: Vec<BackendId>,
    ready: Option<OwnedPick<SharedEndpoint<D::Key, D::Service>>>,
    classifier: C,
    discover_done: bool,
    /// Time each request (two clock reads) so successes feed the latency
    /// estimate.
    record_latency: bool,
}

impl<D, S, C> fmt::Debug for Balance<D, S, C>
where
    D: Discover,
    D::Key: Send + Sync + 'static,
    D::Service: Send + 'static,
    S: Strategy,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balance")
            .field("members", &self.members.len())
            .field("unready", &self.unready.len())
            .finish_non_exhaustive()
    }
}

impl<D, S> Balance<D, S, ErrorIsFailure>
where
    D: Discover + Unpin,
    D::Key: Send + Sync + 'static,
    D::Service: Send + 'static,
    S: Strategy,
{
    /// Balances over `discover`'s services with `strategy` and the
    /// balancer's default settings.
    ///
    /// # Errors
    ///
    /// What [`BalancerBuilder::build`] reports for the strategy's settings.
    pub fn new(discover: D, strategy: S) -> Result<Self, BuildError> {
        Self::with_builder(discover, Balancer::builder(strategy))
    }

    /// Balances over `discover`'s services with a balancer built by
    /// `builder` (outlier detection, health checks, tiers' spillover,
    /// clock, panic mode). The builder should hold no backends: only
    /// discovered ones are ever called.
    ///
    /// # Errors
    ///
    /// What [`BalancerBuilder::build`] reports.
    pub fn with_builder(
        discover: D,
        builder: BalancerBuilder<SharedEndpoint<D::Key, D::Service>, S>,
    ) -> Result<Self, BuildError> {
        let balancer = builder.build()?;
        let record_latency = balancer.strategy.routes_by_latency();
        Ok(Self {
            discover,
            balancer: StdArc::new(balancer),
            members: Vec::new(),
            unready: Vec::new(),
            ready: None,
            classifier: ErrorIsFailure,
            discover_done: false,
            record_latency,
        })
    }
}

impl<D, S, C> Balance<D, S, C>
where
    D: Discover + Unpin,
    D::Key: Send + Sync + 'static,
    D::Service: Send + 'static,
    S: Strategy,
{
    /// Uses `classifier` to tell failures from successes.
    pub fn classify<C2>(self, classifier: C2) -> Balance<D, S, C2> {
        Balance {
            discover: self.discover,
            balancer: self.balancer,
            members: self.members,
            unready: self.unready,
            ready: self.ready,
            classifier,
            discover_done: self.discover_done,
            record_latency: self.record_latency,
        }
    }

    /// Whether to time every request, so that successes feed the
    /// backends' latency estimates ([`BackendStats::latency_estimate`](crate::BackendStats::latency_estimate)).
    /// On by default only under a strategy that routes by latency
    /// ([`Strategy::routes_by_latency`], [`PeakEwma`](crate::PeakEwma)):
    /// timing costs two clock reads per request, which the other
    /// strategies would pay for nothing.
    pub fn record_latency(mut self, on: bool) -> Self {
        self.record_latency = on;
        self
    }

    /// The balancer underneath: its stats, its health checks.
    pub fn balancer(&self) -> &StdArc<EndpointBalancer<D::Key, D::Service, S>> {
        &self.balancer
    }

    /// Backends discovered and not removed.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether no backend has been discovered (or all were removed).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Applies every change the discovery stream has ready.
    fn update(&mut self, cx: &mut TaskContext<'_>) -> Result<(), BoxError>
    where
        D::Error: Into<BoxError>,
    {
        while !self.discover_done {
            match Pin::new(&mut self.discover).poll_discover(cx) {
                Poll::Pending => break,
                Poll::Ready(None) => self.discover_done = true,
                Poll::Ready(Some(Err(e))) => return Err(e.into()),
                Poll::Ready(Some(Ok(Change::Insert(key, service)))) => {
                    self.remove_key(&key);
                    let endpoint = StdArc::new(Endpoint {
                        key,
                        service: Mutex::new(service),
                    });
                    let id = self.balancer.add(StdArc::clone(&endpoint), 1)?;
                    self.members.push((id, endpoint));
                }
                Poll::Ready(Some(Ok(Change::Remove(key)))) => self.remove_key(&key),
            }
        }
        Ok(())
    }

    fn remove_key(&mut self, key: &D::Key) {
        if let Some(pos) = self.members.iter().position(|(_, e)| e.key == *key) {
            let (id, _) = self.members.swap_remove(pos);
            self.forget(id);
        }
    }

    fn forget(&mut self, id: BackendId) {
        self.balancer.remove(id);
        self.unready.retain(|u| *u != id);
        if let Some(pos) = self.members.iter().position(|(m, _)| *m == id) {
            self.members.swap_remove(pos);
        }
        if self.ready.as_ref().is_some_and(|p| p.id() == id) {
            self.ready = None;
        }
    }

    /// Polls the set-aside services; the ready ones become candidates
    /// again, the failed ones are dropped.
    fn poll_unready<Req>(&mut self, cx: &mut TaskContext<'_>)
    where
        D::Service: Service<Req>,
    {
        let mut i = 0;
        while i < self.unready.len() {
            let id = self.unready[i];
            let Some((_, endpoint)) = self.members.iter().find(|(m, _)| *m == id) else {
                self.unready.swap_remove(i);
                continue;
            };
            let polled = endpoint.service.lock().poll_ready(cx);
            match polled {
                Poll::Pending => i += 1,
                Poll::Ready(Ok(())) => {
                    self.unready.swap_remove(i);
                    self.balancer.set_ready(id, true);
                }
                Poll::Ready(Err(_)) => self.forget(id),
            }
        }
    }
}

impl<D, S, C, Req> Service<Req> for Balance<D, S, C>
where
    D: Discover + Unpin,
    D::Key: Send + Sync + 'static,
    D::Service: Service<Req> + Send + 'static,
    D::Error: Into<BoxError>,
    <D::Service as Service<Req>>::Error: Into<BoxError>,
    S: Strategy,
    C: Classify<<D::Service as Service<Req>>::Response, <D::Service as Service<Req>>::Error>
        + Clone,
{
    type Response = <D::Service as Service<Req>>::Response;
    type Error = BoxError;
    type Future =
        ResponseFuture<<D::Service as Service<Req>>::Future, SharedEndpoint<D::Key, D::Service>, C>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), BoxError>> {
        self.update(cx)?;
        self.poll_unready(cx);
        if self.ready.is_some() {
            return Poll::Ready(Ok(()));
        }
        loop {
            // No candidate: every service is set aside (each registered
            // `cx`'s waker) or none is discovered yet (the stream did).
            let timed = self.record_latency;
            let Some(pick) = self.balancer.pick_owned_timed(&Context::default(), timed) else {
                return Poll::Pending;
            };
            let polled = pick.service.lock().poll_ready(cx);
            match polled {
                Poll::Ready(Ok(())) => {
                    self.ready = Some(pick);
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => {
                    let id = pick.id();
                    drop(pick);
                    self.balancer.set_ready(id, false);
                    self.unready.push(id);
                }
                Poll::Ready(Err(_)) => {
                    let id = pick.id();
                    drop(pick);
                    self.forget(id);
                }
            }
        }
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let pick = self
            .ready
            .take()
            .expect("Balance::call before poll_ready returned Ready");
        let inner = pick.service.lock().call(req);
        ResponseFuture {
            inner,
            pick: Some(pick),
            classifier: self.classifier.clone(),
        }
    }
}

pin_project! {
    /// The response of one backend; records the outcome on its pick when it
    /// completes.
    pub struct ResponseFuture<F, T, C> {
        #[pin]
        inner: F,
        pick: Option<OwnedPick<T>>,
        classifier: C,
    }
}

impl<F, T, C> fmt::Debug for ResponseFuture<F, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("pending", &self.pick.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, T, C, Res, E> Future for ResponseFuture<F, T, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    C: Classify<Res, E>,
{
    type Output = Result<Res, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(pick) = this.pick.take() {
            let failed = this.classifier.is_failure(result.as_ref());
            pick.finish(!failed);
        }
        Poll::Ready(result.map_err(Into::into))
    }
}
