//! [`PowerOfTwoChoices`], and the two-random-choices step it shares with
//! [`PeakEwma`](super::PeakEwma).

use sysblocks_clock::Clock;

use super::{len_u32, Candidates, Context, Strategy};
use crate::rng::{below, entropy_seed, SplitMix};

/// Two distinct candidates at random; the one with fewer requests in flight
/// per unit of weight wins (`(in_flight + 1) / weight`, ties to the first
/// drawn). Mitzenmacher's "power of two choices"; with equal weights it is
/// tower's `p2c::Balance` over `PendingRequests`.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: SplitMix,
}

impl PowerOfTwoChoices {
    /// From a fixed seed (reproducible on one thread).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }
}

impl Default for PowerOfTwoChoices {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

/// Two distinct indices in `0..n` (`n >= 2`) from one random word.
#[inline]
fn two_distinct(r: u64, n: u32) -> (usize, usize) {
    let a = below(r as u32, n);
    let mut b = below((r >> 32) as u32, n - 1);
    if b >= a {
        b += 1;
    }
    (a as usize, b as usize)
}

/// The step both two-choice strategies share: with one candidate, it; else
/// two distinct candidates `a`, `b` at random, and `b` only if
/// `b_is_better(a, b)` (ties go to the first drawn).
#[inline]
pub(super) fn better_of_two(
    rng: &SplitMix,
    n: u32,
    b_is_better: impl FnOnce(usize, usize) -> bool,
) -> usize {
    if n < 2 {
        return 0;
    }
    let (a, b) = two_distinct(rng.next_u64(), n);
    if b_is_better(a, b) {
        b
    } else {
        a
    }
}

impl Strategy for PowerOfTwoChoices {
    type State = u32;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> u32 {
        len_u32(candidates.len())
    }

    #[inline]
    fn pick<T>(
        &self,
        &n: &u32,
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        // (in_flight_b + 1) / w_b < (in_flight_a + 1) / w_a, cross-multiplied.
        Some(better_of_two(&self.rng, n, |a, b| {
            let (wa, wb) = (candidates.get(a).weight(), candidates.get(b).weight());
            u128::from(candidates.in_flight(b) + 1) * u128::from(wa)
                < u128::from(candidates.in_flight(a) + 1) * u128::from(wb)
        }))
    }
}
