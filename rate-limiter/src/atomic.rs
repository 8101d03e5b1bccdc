//! The lock-free core shared by the limiters whose state fits one `u64`
//! (GCRA, token bucket, leaky bucket): a pure step function and a
//! compare-and-swap loop around it.

use crate::sync::{AtomicU64, Ordering};
use crate::{CheckError, Decision};

/// A decision on one 64-bit state word, with the word to store if the state
/// changes.
pub(crate) type Step = Result<(Decision, Option<u64>), CheckError>;

/// Runs `step` on the current word and installs its result with a CAS,
/// retrying on contention. A denial stores nothing.
#[inline]
pub(crate) fn cas_loop(
    word: &AtomicU64,
    mut step: impl FnMut(u64) -> Step,
) -> Result<Decision, CheckError> {
    let mut cur = word.load(Ordering::Acquire);
    loop {
        let (decision, next) = step(cur)?;
        let Some(next) = next else {
            return Ok(decision);
        };
        match word.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(decision),
            Err(actual) => {
                cur = actual;
                crate::sync::spin_loop();
            }
        }
    }
}

/// Clamps a `u128` into `u32`.
#[inline]
pub(crate) fn clamp_u32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Implements `RateLimiter` and `Algorithm` for a limiter with fields
/// `state: AtomicU64`, `clock: SharedClock` and methods
/// `step(&self, word, now, cost) -> Step`, `fresh_word(&self, now) -> u64`,
/// `word_is_fresh(&self, word, now) -> bool`.
macro_rules! atomic_limiter {
    ($ty:ty) => {
        impl $crate::RateLimiter for $ty {
            #[inline]
            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                let now = self.clock.now_nanos();
                $crate::atomic::cas_loop(&self.state, |w| self.step(w, now, cost))
            }
        }

        impl $crate::Algorithm for $ty {
            type State = u64;

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
                let (d, next) = self.step(*state, now, cost)?;
                if let Some(next) = next {
                    *state = next;
                }
                Ok(d)
            }

            fn is_fresh_equivalent(&self, state: &u64, now: u64) -> bool {
                self.word_is_fresh(*state, now)
            }
        }
    };
}
pub(crate) use atomic_limiter;
