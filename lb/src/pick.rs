//! The [`Pick`] token: one request's claim on a backend, and the outcomes it
//! reports to its balancer.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use crate::backend::{in_flight_of, Backend, BackendId, BackendState};
use crate::sync::Shared;

/// What a [`Pick`] reports to its balancer, without naming the strategy.
pub(crate) trait Outcomes: Sync {
    fn on_success(&self, state: &BackendState, nanos: f64);
    fn on_failure(&self, state: &BackendState);
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
