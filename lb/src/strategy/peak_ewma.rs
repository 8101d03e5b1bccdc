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
/// tower's and linkerd's initial RTT estimate for an endpoint with no
/// samples yet (their `default_rtt`). [`PeakEwma`] starts from zero
/// (Finagle's start) unless given this through
/// [`PeakEwma::initial_latency`] for tower's behaviour; balancers whose
/// strategy is not `PeakEwma` start the latency estimate they keep (and
/// report in [`BackendStats`](crate::BackendStats)) from it.
pub const DEFAULT_INITIAL_LATENCY: Duration = Duration::from_millis(30);

/// Finagle's cost of a backend with requests outstanding and no answer
/// yet (its `PeakEwma` penalty, `Long.MaxValue >> 16`, in nanoseconds:
/// about 39 hours), so large that any answered backend costs less.
const FINAGLE_PENALTY: f64 = (i64::MAX >> 16) as f64;

/// Power of two choices over the peak-EWMA cost, as Finagle, linkerd and
/// tower's `PeakEwma` define it: `cost = estimate * (in_flight + 1)`, where
/// the estimate jumps to any slower latency sample at once, blends a faster
/// one in with weight `1 - exp(-elapsed / decay)`, and, between samples,
/// decays towards zero with the same time constant so that an idle backend
/// is tried again. Weights are ignored, as in tower.
///
/// The estimate before a backend's first answer is
/// [`PeakEwma::initial_latency`], zero by default: Finagle's start, as in
/// Finagle's `PeakEwma`, where peak EWMA was published. A backend with no
/// answer yet costs nothing while idle (it is tried at once) and, while a
/// request to it is outstanding, Finagle's penalty plus its in-flight
/// count, so it takes no second request before its first answer unless
/// every choice is as unknown: an unknown slow backend holds one request,
/// not a share of them. A non-zero initial estimate gives linkerd's and
/// tower's start instead, where an unanswered backend costs
/// `estimate * (in_flight + 1)` and so takes requests until its count
/// outweighs the others'; `initial_latency(DEFAULT_INITIAL_LATENCY)`
/// behaves as tower's `PeakEwma::new(.., default_rtt = 30 ms, ..)`.
///
/// ```
/// use sysblocks_lb::{Balancer, PeakEwma, DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY};
///
/// // Finagle's start (the default).
/// let finagle = PeakEwma::with_seed(1);
/// // tower's `PeakEwma` with its usual settings (30 ms, 10 s).
/// let tower_like = PeakEwma::with_seed(1)
///     .initial_latency(DEFAULT_INITIAL_LATENCY)
///     .decay(DEFAULT_DECAY);
/// let a = Balancer::builder(finagle).backend("a", 1).build()?;
/// let b = Balancer::builder(tower_like).backend("a", 1).build()?;
/// assert!(a.stats()[0].latency_estimate.is_zero());
/// assert_eq!(b.stats()[0].latency_estimate, DEFAULT_INITIAL_LATENCY);
/// # Ok::<(), sysblocks_lb::BuildError>(())
/// ```
#[derive(Debug)]
pub struct PeakEwma {
    rng: SplitMix,
    decay: Duration,
    initial: Duration,
}

impl PeakEwma {
    /// From a fixed seed, with the default decay (10 s) and Finagle's start
    /// (initial estimate zero, see [`PeakEwma`]).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
            decay: DEFAULT_DECAY,
            initial: Duration::ZERO,
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
    /// `PeakEwma::new` takes `default_rtt`. Zero (the default) gives
    /// Finagle's start; [`DEFAULT_INITIAL_LATENCY`] gives tower's and
    /// linkerd's (see [`PeakEwma`]).
    #[must_use]
    pub fn initial_latency(mut self, estimate: Duration) -> Self {
        self.initial = estimate;
        self
    }

    #[inline]
    fn cost<T>(c: Candidates<'_, T>, i: usize, now: u64, tau: f64) -> f64 {
        let (estimate, stamp) = c.get(i).latency_estimate();
        let in_flight = c.in_flight(i) as f64;
        // Only a zero initial estimate stays zero until the first answer:
        // samples are positive and the stored estimate never decays.
        if estimate == 0.0 && in_flight > 0.0 {
            return FINAGLE_PENALTY + in_flight;
        }
        Ewma::decayed(estimate, stamp, now, tau) * (in_flight + 1.0)
    }
}

impl Default for PeakEwma {
    /// Seeded from the process's hash randomness, with the default decay
    /// and Finagle's start (as [`PeakEwma::with_seed`]).
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
    use crate::{Balancer, RoundRobin};
    use sysblocks_clock::ManualClock;

    #[test]
    fn the_default_start_is_a_zero_estimate() {
        let p = PeakEwma::with_seed(3);
        assert_eq!(estimate_settings(&p), (DEFAULT_DECAY, Duration::ZERO));
        let b = Balancer::builder(PeakEwma::default())
            .backend(0, 1)
            .build()
            .unwrap();
        assert_eq!(b.stats()[0].latency_estimate, Duration::ZERO);
        // The first answer replaces the zero estimate.
        b.pick(&crate::Context::default())
            .unwrap()
            .success(Duration::from_millis(7));
        assert_eq!(b.stats()[0].latency_estimate, Duration::from_millis(7));
    }

    #[test]
    fn a_zero_initial_estimate_starts_as_finagle() {
        let clock = ManualClock::new();
        let b = Balancer::builder(PeakEwma::with_seed(3).initial_latency(Duration::ZERO))
            .backend("x", 1)
            .backend("y", 1)
            .clock(clock.clone())
            .build()
            .unwrap();
        let cx = crate::Context::default();
        // Both unknown and idle cost nothing; once one has a request
        // outstanding, the other (idle) is taken.
        let first = b.pick(&cx).unwrap();
        let second = b.pick(&cx).unwrap();
        assert_ne!(*first, *second);
        let (answered, silent) = (*first, *second);
        // The answered backend costs its estimate x (in flight + 1); the
        // silent one, with a request outstanding, Finagle's penalty: it
        // takes nothing until it answers, however loaded the other is.
        clock.advance(Duration::from_millis(10));
        first.success(Duration::from_millis(10));
        let held: Vec<_> = (0..1_000).map(|_| b.pick(&cx).unwrap()).collect();
        assert!(held.iter().all(|p| **p == answered));
        drop(held);
        // Its answer makes it an ordinary backend again: slow, so the
        // fast one wins while idle, and it wins once the fast one is
        // loaded past its estimate.
        clock.advance(Duration::from_millis(90));
        second.success(Duration::from_millis(100));
        assert_eq!(*b.pick(&cx).unwrap(), answered);
        let held: Vec<_> = (0..20).map(|_| b.pick(&cx).unwrap()).collect();
        assert!(held.iter().any(|p| **p == silent));
    }

    #[test]
    fn a_nonzero_initial_estimate_counts_requests_outstanding() {
        // linkerd's and tower's start: an unanswered backend costs the
        // initial estimate x (in flight + 1), so two unanswered backends
        // share requests by their counts, with no penalty.
        let b = Balancer::builder(PeakEwma::with_seed(3).initial_latency(DEFAULT_INITIAL_LATENCY))
            .backend(0, 1)
            .backend(1, 1)
            .build()
            .unwrap();
        let held: Vec<_> = (0..10)
            .map(|_| b.pick(&crate::Context::default()).unwrap())
            .collect();
        let stats = b.stats();
        assert_eq!((stats[0].in_flight, stats[1].in_flight), (5, 5));
        drop(held);
    }

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
