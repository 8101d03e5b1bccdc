//! The [`Pick`] and [`OwnedPick`] tokens: one request's claim on a backend,
//! and the outcomes it reports to its balancer.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use crate::backend::{in_flight_of, Backend, BackendId, BackendState};
use crate::sync::{Shared, StdArc};

/// What a [`Pick`] reports to its balancer, without naming the strategy.
pub(crate) trait Outcomes: Sync {
    fn on_success(&self, state: &BackendState, nanos: f64);
    /// As `on_success`, the clock read at `now` by the caller already.
    fn on_success_at(&self, state: &BackendState, nanos: f64, now: u64);
    fn on_failure(&self, state: &BackendState);
    /// The balancer's clock, for the latency an [`OwnedPick`] measures.
    fn now_nanos(&self) -> u64;
}

/// One request's claim on a backend: derefs to the backend's value, counts
/// as in flight until dropped, and reports the outcome.
///
/// Dropping it without [`Pick::success`] or [`Pick::failure`] ends the
/// request without an outcome (a cancelled request, say): the in-flight
/// count drops, nothing else changes.
#[must_use = "a pick counts as in flight until dropped; report its outcome"]
pub struct Pick<'a, T> {
    backend: Shared<Backend<T>>,
    hooks: &'a (dyn Outcomes + 'a),
}

impl<'a, T> Pick<'a, T> {
    /// A pick of `backend`, reporting to `hooks`.
    #[inline]
    pub(crate) fn new(backend: Shared<Backend<T>>, hooks: &'a (dyn Outcomes + 'a)) -> Self {
        Self { backend, hooks }
    }

    #[inline]
    fn backend(&self) -> &Backend<T> {
        &self.backend
    }

    /// The backend's handle, giving up the borrow of the balancer.
    #[inline]
    pub(crate) fn into_backend(self) -> Shared<Backend<T>> {
        self.backend
    }

    /// Requests in flight on the chosen backend, this one included.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        in_flight_of(&self.backend)
    }

    /// The chosen backend's identity.
    #[must_use]
    pub fn id(&self) -> BackendId {
        self.backend().state().id()
    }

    /// The chosen backend's state.
    #[must_use]
    pub fn state(&self) -> &BackendState {
        self.backend().state()
    }

    /// The chosen backend's value (also reachable through `Deref`).
    #[must_use]
    pub fn value(&self) -> &T {
        self.backend().value()
    }

    /// The request succeeded after `latency`: the latency feeds the peak
    /// EWMA estimate (a zero latency is ignored) and the failure streak
    /// resets.
    pub fn success(self, latency: Duration) {
        self.hooks
            .on_success(self.state(), saturating_nanos(latency) as f64);
    }

    /// As [`Pick::success`] with the latency in seconds; a latency that is
    /// zero, negative or not finite is ignored (the success still counts).
    pub fn success_secs(self, latency_secs: f64) {
        self.hooks.on_success(self.state(), latency_secs * 1e9);
    }

    /// The request failed: counts towards outlier ejection.
    pub fn failure(self) {
        self.hooks.on_failure(self.state());
    }
}

impl<T> Deref for Pick<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.backend().value()
    }
}

impl<T: fmt::Debug> fmt::Debug for Pick<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pick")
            .field("id", &self.id())
            .field("value", self.value())
            .finish()
    }
}

/// The balancer as an [`OwnedPick`] holds it: shared, `'static`, and named
/// only by what a pick reports.
pub(crate) type SharedOutcomes = StdArc<dyn Outcomes + Send + Sync>;

/// A [`Pick`] that owns a handle on its balancer instead of borrowing it:
/// `'static` (when the backend value is), `Send`, so it can live inside a
/// future or move to another thread. From
/// [`Balancer::pick_owned`](crate::Balancer::pick_owned).
///
/// It behaves as a [`Pick`]: in flight until dropped, derefs to the
/// backend's value, and reports an outcome with [`OwnedPick::success`] or
/// [`OwnedPick::failure`]; dropped without one, the request ends without an
/// outcome. It also remembers when it was taken (by the balancer's clock),
/// so [`OwnedPick::finish`] records the latency itself.
#[must_use = "a pick counts as in flight until dropped; report its outcome"]
pub struct OwnedPick<T> {
    backend: Shared<Backend<T>>,
    hooks: SharedOutcomes,
    /// Clock reading when taken; `UNTIMED` when the pick was not timed.
    started: u64,
}

/// The `started` of a pick that was not timed.
const UNTIMED: u64 = u64::MAX;

impl<T> OwnedPick<T> {
    /// A pick of `backend`; `timed` reads the clock now so that
    /// [`OwnedPick::finish`] can record the latency.
    pub(crate) fn new(backend: Shared<Backend<T>>, hooks: SharedOutcomes, timed: bool) -> Self {
        let started = if timed { hooks.now_nanos() } else { UNTIMED };
        Self {
            backend,
            hooks,
            started,
        }
    }

    /// Requests in flight on the chosen backend, this one included.
    #[must_use]
    pub fn in_flight(&self) -> u64 {
        in_flight_of(&self.backend)
    }

    /// The chosen backend's identity.
    #[must_use]
    pub fn id(&self) -> BackendId {
        self.backend.state().id()
    }

    /// The chosen backend's state.
    #[must_use]
    pub fn state(&self) -> &BackendState {
        self.backend.state()
    }

    /// The chosen backend's value (also reachable through `Deref`).
    #[must_use]
    pub fn value(&self) -> &T {
        self.backend.value()
    }

    /// Time since the pick was taken, by the balancer's clock (zero for
    /// the untimed picks a tower `Balance` takes under a
    /// strategy that does not route by latency).
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        if self.started == UNTIMED {
            return Duration::ZERO;
        }
        Duration::from_nanos(self.hooks.now_nanos().saturating_sub(self.started))
    }

    /// The request succeeded after `latency`; as [`Pick::success`].
    pub fn success(self, latency: Duration) {
        self.hooks
            .on_success(self.state(), saturating_nanos(latency) as f64);
    }

    /// The request failed; as [`Pick::failure`].
    pub fn failure(self) {
        self.hooks.on_failure(self.state());
    }

    /// The request ended now: a success records the time since the pick as
    /// its latency (an untimed pick records the success only), a failure
    /// counts towards outlier ejection.
    pub fn finish(self, success: bool) {
        if success && self.started == UNTIMED {
            self.hooks.on_success(self.state(), f64::NAN);
        } else if success {
            let now = self.hooks.now_nanos();
            let latency = now.saturating_sub(self.started);
            self.hooks.on_success_at(self.state(), latency as f64, now);
        } else {
            self.failure();
        }
    }
}

impl<T> Deref for OwnedPick<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.backend.value()
    }
}

impl<T: fmt::Debug> fmt::Debug for OwnedPick<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPick")
            .field("id", &self.id())
            .field("value", self.value())
            .finish()
    }
}
