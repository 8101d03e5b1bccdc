//! [`PeakEwma`]: power of two choices over the peak-EWMA cost.

use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock};

use super::p2c::better_of_two;
use super::{len_u32, Candidates, Context, Strategy};
use crate::backend::Ewma;
use crate::error::BuildError;
use crate::rng::{entropy_seed, SplitMix};

/// Finagle's and linkerd's default decay time constant for peak EWMA.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);
/// linkerd's default RTT estimate for an endpoint with no samples yet.
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

    /// Sets the decay time constant (`tau`). Zero is rejected by `build()`.
    #[must_use]
    pub fn decay(mut self, tau: Duration) -> Self {
        self.decay = tau;
        self
    }

    /// Sets the estimate of a backend with no samples yet.
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

    fn latency_decay(&self) -> Duration {
        self.decay
    }

    fn initial_latency(&self) -> Duration {
        self.initial
    }
}
