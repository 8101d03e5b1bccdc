//! [`LeastConnections`]: fewest requests in flight per unit of weight.

use sysblocks_clock::Clock;

use super::{Candidates, Context, Rotation, Strategy};
use crate::rng::Cursor;

/// Least connections: the candidate with the fewest requests in flight
/// relative to its weight (nginx's `least_conn` comparison,
/// `in_flight_a * weight_b < in_flight_b * weight_a`). The scan starts at a
/// rotating position so ties go round robin, and stops at the first idle
/// candidate (nothing can beat zero), so an idle set costs one probe while a
/// busy one costs a scan of every candidate.
#[derive(Debug, Default)]
pub struct LeastConnections {
    cursor: Cursor,
}

impl LeastConnections {
    /// The strategy.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for LeastConnections {
    type State = Rotation;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Rotation {
        Rotation::over(candidates)
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &Rotation,
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let n = candidates.len();
        let start = state.at(self.cursor.next());
        let mut best = start;
        let mut best_load = candidates.in_flight(start);
        if best_load == 0 {
            return Some(start);
        }
        let mut best_weight = candidates.get(start).weight();
        let mut i = start;
        for _ in 1..n {
            i += 1;
            if i == n {
                i = 0;
            }
            let load = candidates.in_flight(i);
            if load == 0 {
                return Some(i);
            }
            let s = candidates.get(i);
            if u128::from(load) * u128::from(best_weight)
                < u128::from(best_load) * u128::from(s.weight())
            {
                best = i;
                best_load = load;
                best_weight = s.weight();
            }
        }
        Some(best)
    }
}
