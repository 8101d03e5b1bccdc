//! [`PeakEwma`]: power of two choices over the peak-EWMA cost.

use std::any::Any;
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock};

use super::p2c::better_of_two;
use super::{len_u32, Candidates, Context, Strategy};
use crate::backend::Ewma;
use crate::error::BuildError;
use crate::rng::{entropy_seed, SplitMix};

/// Finagle's and linkerd's default decay time constant for peak EWMA
/// ([`PeakEwma::decay`]).
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);
/// linkerd's default RTT estimate for an endpoint with no samples yet
/// ([`PeakEwma::initial_latency`]).
pub const DEFAULT_INITIAL_LATENCY: Duration = Duration::from_millis(30);

/// Power of two choices over the peak-EWMA cost, as Finagle, linkerd and
/// tower's `PeakEwma` define it: `cost = estimate * (in_flight + 1)`, where
/// the estimate jumps to any slower latency sample at once, blends a faster
/// one in with weight `1 - exp(-elapsed / decay)`, and, between samples,
/// decays towards zero with the same time constant so that an idle backend
/// is tried again. Weights are ignored, as in tower.
#[derive(Debug)]
pub struct PeakEwma {
    rng: SplitMix,
    decay: Duration,
    initial: Duration,
}

impl PeakEwma {
    /// From a fixed seed, with the default decay (10 s) and initial
    /// estimate (30 ms).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
            decay: DEFAULT_DECAY,
            initial: DEFAULT_INITIAL_LATENCY,
        }
    }

    /// Sets the decay time constant (`tau`) of the balancer's latency
    /// estimates, as tower's `PeakEwma::new` takes `decay_ns`. Zero is
    /// rejected by `build()`.
    #[must_use]
    pub fn decay(mut self, tau: Duration) -> Self {
        self.decay = tau;
        self
    }

    /// Sets the estimate of a backend with no samples yet, as tower's
    /// `PeakEwma::new` takes `default_rtt`.
    #[must_use]
    pub fn initial_latency(mut self, estimate: Duration) -> Self {
        self.initial = estimate;
        self
    }

    #[inline]
    fn cost<T>(c: Candidates<'_, T>, i: usize, now: u64, tau: f64) -> f64 {
        let (estimate, stamp) = c.get(i).latency_estimate();
        Ewma::decayed(estimate, stamp, now, tau) * (c.in_flight(i) as f64 + 1.0)
    }
}

impl Default for PeakEwma {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

impl Strategy for PeakEwma {
    /// Candidate count and the time constant in nanoseconds.
    type State = (u32, f64);

    fn validate(&self) -> Result<(), BuildError> {
        if self.decay.is_zero() {
            return Err(BuildError::Zero {
                setting: "PeakEwma::decay",
            });
        }
        Ok(())
    }

    fn routes_by_latency(&self) -> bool {
        true
    }

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> (u32, f64) {
        (
            len_u32(candidates.len()),
            saturating_nanos(self.decay) as f64,
        )
    }

    #[inline]
    fn pick<T>(
        &self,
        &(n, tau): &(u32, f64),
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        clock: &dyn Clock,
    ) -> Option<usize> {
        Some(better_of_two(&self.rng, n, |a, b| {
            let now = clock.now_nanos();
            Self::cost(candidates, b, now, tau) < Self::cost(candidates, a, now, tau)
        }))
    }
}

/// The decay time constant and the initial value of the latency estimate
/// that a balancer over `strategy` keeps per backend: [`PeakEwma`]'s own
/// settings when the strategy is a `PeakEwma`, else [`DEFAULT_DECAY`] and
/// [`DEFAULT_INITIAL_LATENCY`]. Every balancer keeps the estimate (it is
/// reported in [`BackendStats`](crate::BackendStats)); only `PeakEwma`
/// routes by it, so only `PeakEwma` has settings for it.
pub(crate) fn estimate_settings<S: Strategy>(strategy: &S) -> (Duration, Duration) {
    match (strategy as &dyn Any).downcast_ref::<PeakEwma>() {
        Some(p) => (p.decay, p.initial),
        None => (DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RoundRobin;

    #[test]
    fn estimate_settings_are_peak_ewmas_or_the_defaults() {
        let p = PeakEwma::with_seed(1)
            .decay(Duration::from_secs(1))
            .initial_latency(Duration::from_millis(5));
        assert_eq!(
            estimate_settings(&p),
            (Duration::from_secs(1), Duration::from_millis(5))
        );
        assert_eq!(
            estimate_settings(&RoundRobin::new()),
            (DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY)
        );
    }
}
