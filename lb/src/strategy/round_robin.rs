//! [`RoundRobin`]: each candidate in turn.

use sysblocks_clock::Clock;

use super::{Candidates, Context, Rotation, Strategy};
use crate::rng::Cursor;

/// Plain round robin: each candidate in turn, weights ignored. Each thread
/// keeps its own cursor (as each Envoy worker keeps its own balancer): on
/// one thread the rotation is exact and starts at the first candidate;
/// every later thread starts at a different point of the rotation, so
/// threads share no written cache line and do not walk the backends in
/// step. A cursor wraps at `2^32` picks, where the rotation skips once
/// unless the candidate count divides `2^32`.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: Cursor,
}

impl RoundRobin {
    /// Round robin starting at the first candidate.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for RoundRobin {
    type State = Rotation;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Rotation {
        Rotation::over(candidates)
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &Rotation,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        Some(state.at(self.cursor.next()))
    }
}
