//! The lock-free core shared by the limiters whose state fits one `u64`
//! (GCRA, token bucket, leaky bucket): a pure step function and a
//! compare-and-swap loop around it.

use crate::sync::{AtomicU64, Ordering};
use crate::Decision;

/// A decision on one 64-bit state word, with the word to store: the word
/// it was given when nothing changes (a denial, a cost of 0).
pub(crate) type Step = (Decision, u64);

/// Runs `step` on the current word and installs its result with a CAS,
/// retrying on contention. A step that returns its word unchanged (a
/// denial) stores nothing: the whole check is then one load.
#[inline]
pub(crate) fn cas_loop(word: &AtomicU64, mut step: impl FnMut(u64) -> Step) -> Decision {
    let mut cur = word.load(Ordering::Acquire);
    loop {
        let (decision, next) = step(cur);
        if next == cur {
            return decision;
        }
        match word.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return decision,
            // Another thread's CAS won, so the word moved on: retry at once
            // (a pause here costs more than the recomputation).
            Err(actual) => cur = actual,
        }
    }
}

/// Clamps a `u128` into `u32`.
#[inline]
pub(crate) fn clamp_u32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Implements `RateLimiter` and `Algorithm` for a limiter with fields
/// `state: AtomicU64`, `clock: LimiterClock` and methods
/// `max_cost(&self) -> u32` (the largest cost ever admitted),
/// `step(&self, word, now, cost) -> Step` (for `cost <= max_cost`),
/// `fresh_word(&self, now) -> u64` and `word_is_fresh(&self, word, now) -> bool`.
/// The keyed store's cell is an `AtomicU64` checked by the same CAS loop.
macro_rules! atomic_limiter {
    ($ty:ty) => {
        impl $crate::RateLimiter for $ty {
            #[inline]
            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                let limit = self.max_cost();
                if cost > limit {
                    return Err($crate::CheckError::CostExceedsLimit { cost, limit });
                }
                let now = self.clock.now_nanos();
                Ok($crate::atomic::cas_loop(&self.state, |w| {
                    self.step(w, now, cost)
                }))
            }
        }

        impl $crate::Algorithm for $ty {
            type State = u64;
            type Cell = $crate::sync::AtomicU64;

            #[inline]
            fn now_nanos(&self) -> u64 {
                self.clock.now_nanos()
            }

            fn fresh_state(&self, now: u64) -> u64 {
                self.fresh_word(now)
            }

            #[inline]
            fn decide(
                &self,
                state: &mut u64,
                now: u64,
                cost: u32,
            ) -> Result<$crate::Decision, $crate::CheckError> {
                let limit = self.max_cost();
                if cost > limit {
                    return Err($crate::CheckError::CostExceedsLimit { cost, limit });
                }
                let (d, next) = self.step(*state, now, cost);
                *state = next;
                Ok(d)
            }

            fn is_fresh_equivalent(&self, state: &u64, now: u64) -> bool {
                self.word_is_fresh(*state, now)
            }

            fn new_cell(&self, state: u64) -> $crate::sync::AtomicU64 {
                $crate::sync::AtomicU64::new(state)
            }

            #[inline]
            fn decide_cell(
                &self,
                cell: &$crate::sync::AtomicU64,
                now: u64,
                cost: u32,
            ) -> Result<$crate::Decision, $crate::CheckError> {
                let limit = self.max_cost();
                if cost > limit {
                    return Err($crate::CheckError::CostExceedsLimit { cost, limit });
                }
                Ok($crate::atomic::cas_loop(cell, |w| self.step(w, now, cost)))
            }

            fn is_cell_fresh_equivalent(&self, cell: &$crate::sync::AtomicU64, now: u64) -> bool {
                self.word_is_fresh(cell.load($crate::sync::Ordering::Relaxed), now)
            }
        }
    };
}
pub(crate) use atomic_limiter;
