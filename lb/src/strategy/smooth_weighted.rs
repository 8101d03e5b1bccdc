//! [`SmoothWeightedRoundRobin`]: nginx's smooth weighted round robin.

use sysblocks_clock::Clock;

use super::{Candidates, Context, Strategy};
use crate::sync::Mutex;

/// nginx's smooth weighted round robin: every pick adds each candidate's
/// weight to its current weight, chooses the largest current weight (the
/// first on ties), and subtracts the total weight from the chosen one.
/// Weights {5, 1, 1} give `a a b a c a a`, spread instead of bunched.
///
/// The current weights live under a lock (nginx keeps them under the
/// upstream's lock too); they restart from zero when the candidate set
/// changes.
#[derive(Debug, Default)]
pub struct SmoothWeightedRoundRobin {
    _private: (),
}

impl SmoothWeightedRoundRobin {
    /// The strategy.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// The state of [`SmoothWeightedRoundRobin`] for one candidate set.
#[derive(Debug)]
pub struct SwrrState {
    weights: Vec<i64>,
    total: i64,
    current: Mutex<Vec<i64>>,
}

impl Strategy for SmoothWeightedRoundRobin {
    type State = SwrrState;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> SwrrState {
        let weights: Vec<i64> = candidates.iter().map(|s| i64::from(s.weight())).collect();
        let total = weights.iter().sum();
        SwrrState {
            current: Mutex::new(vec![0; weights.len()]),
            weights,
            total,
        }
    }

    fn pick<T>(
        &self,
        state: &SwrrState,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let mut current = state.current.lock();
        let mut best = None;
        let mut best_weight = i64::MIN;
        for (i, (c, w)) in current.iter_mut().zip(&state.weights).enumerate() {
            *c += *w;
            if *c > best_weight {
                best_weight = *c;
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= state.total;
        Some(best)
    }
}
