//! [`Random`]: weighted random choice.

use sysblocks_clock::Clock;

use super::{len_u32, Candidates, Context, Strategy};
use crate::backend::BackendState;
use crate::rng::{below, entropy_seed, SplitMix};

/// Random choice, weighted by the backends' weights (uniform when they are
/// equal). Seedable for reproducible runs.
#[derive(Debug)]
pub struct Random {
    rng: SplitMix,
}

impl Random {
    /// Random choice from a fixed seed: the same seed and the same sequence
    /// of candidate sets give the same picks (on one thread).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }
}

impl Default for Random {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

/// The state of [`Random`] for one candidate set: the cumulative weights a
/// weighted draw searches, or only the candidate count when the weights are
/// equal and the draw is uniform.
#[derive(Debug)]
pub struct CumulativeWeights {
    /// Cumulative weights (`cumulative[i]` = sum of weights `0..=i`); empty
    /// when all weights are equal and the choice is uniform.
    cumulative: Vec<u64>,
    n: u32,
}

impl Strategy for Random {
    type State = CumulativeWeights;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> CumulativeWeights {
        let first = candidates.iter().next().map(BackendState::weight);
        let uniform = candidates.iter().all(|s| Some(s.weight()) == first);
        let mut cumulative = Vec::new();
        if !uniform {
            let mut sum = 0u64;
            for s in candidates.iter() {
                sum += u64::from(s.weight());
                cumulative.push(sum);
            }
        }
        CumulativeWeights {
            cumulative,
            n: len_u32(candidates.len()),
        }
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &CumulativeWeights,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let r = self.rng.next_u64();
        match state.cumulative.last() {
            None => Some(below(r as u32, state.n) as usize),
            Some(&total) => {
                // The total is at most u32::MAX (checked when backends are
                // added), so the multiply-shift below stays in range.
                let x = ((u128::from(r) * u128::from(total)) >> 64) as u64;
                Some(state.cumulative.partition_point(|&c| c <= x))
            }
        }
    }
}
