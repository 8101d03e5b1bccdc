//! The lock-free core shared by the limiters whose state fits one `u64`
//! (GCRA, token bucket, leaky bucket): a pure step function and a
//! compare-and-swap loop around it.

use crate::sync::{AtomicBool, AtomicU64, Ordering};
use crate::Decision;

/// A decision on one 64-bit state word, with the word to store: the word
/// it was given when nothing changes (a denial, a cost of 0).
pub(crate) type Step = (Decision, u64);

/// The pure step function of a limiter on one word: the decision on
/// `word` for `cost` cells at `now`, and the word to store (see
/// `atomic_limiter!` for `live`).
///
/// A trait rather than a closure so that the compare-and-swap loops below
/// inline the step: a closure is compiled as a function of its own, which
/// the loop would call (and a step is too large for the inliner to copy
/// into each of the loop's call sites on its own account).
pub(crate) trait WordStep {
    fn step(&self, word: u64, now: u64, cost: u32, live: bool) -> Step;
}

/// Runs `step` on the current word and installs its result with a CAS,
/// retrying on contention. A step that returns its word unchanged (a
/// denial) stores nothing: the whole check is then one load.
#[inline(always)]
pub(crate) fn cas_loop<S: WordStep>(
    s: &S,
    word: &AtomicU64,
    now: u64,
    cost: u32,
    live: bool,
) -> Decision {
    cas_from(
        s,
        word,
        word.load(Ordering::Acquire),
        now,
        cost,
        live,
        || {},
    )
}

/// The loop of [`cas_loop`] and [`cas_loop_hinted`] from a first read
/// `cur` of `word`; `lost` runs each time another thread's CAS won.
#[inline(always)]
fn cas_from<S: WordStep>(
    s: &S,
    word: &AtomicU64,
    mut cur: u64,
    now: u64,
    cost: u32,
    live: bool,
    mut lost: impl FnMut(),
) -> Decision {
    loop {
        let (decision, next) = s.step(cur, now, cost, live);
        if next == cur {
            return decision;
        }
        match word.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return decision,
            // Another thread's CAS won, so the word moved on: retry at once
            // (a pause here costs more than the recomputation).
            Err(actual) => {
                lost();
                cur = actual;
            }
        }
    }
}

/// A limiter's state word on a cache line of its own (128 bytes: adjacent
/// lines are fetched in pairs), so that the compare-and-swaps of threads
/// sharing the limiter do not also evict the configuration and clock they
/// read on every check.
#[repr(align(128))]
pub(crate) struct StateWord(pub(crate) AtomicU64);

// The padded word fills its 128 bytes and no more.
const _: () = assert!(std::mem::size_of::<StateWord>() == 128);

impl StateWord {
    pub(crate) fn new(word: u64) -> Self {
        Self(AtomicU64::new(word))
    }
}

impl std::ops::Deref for StateWord {
    type Target = AtomicU64;

    #[inline]
    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

/// [`cas_loop`] for a word that several threads update, guided by a hint
/// set when a compare-and-swap has lost a race: while it is set, the word is
/// first read with a read-modify-write that changes nothing, which fetches
/// its cache line for writing at once (one transfer between cores instead
/// of a shared read and then an upgrade for the CAS). The hint is dropped at
/// random about once every 1024 checks (on the clock's low bits), so a
/// limiter that is no longer contended goes back to plain loads.
#[inline(always)]
pub(crate) fn cas_loop_hinted<S: WordStep>(
    s: &S,
    word: &AtomicU64,
    contended: &AtomicBool,
    now: u64,
    cost: u32,
) -> Decision {
    let hinted = contended.load(Ordering::Relaxed);
    let cur = if hinted {
        load_for_write(word, contended, now)
    } else {
        word.load(Ordering::Acquire)
    };
    // The hint is read again rather than taken from `hinted`: a loop that
    // does not depend on `hinted` is compiled once.
    cas_from(s, word, cur, now, cost, true, || {
        if !contended.load(Ordering::Relaxed) {
            contended.store(true, Ordering::Relaxed);
        }
    })
}

/// The contended path's first read of `word`: a read-modify-write that
/// changes nothing, and, on the clock's low bits, the decay of the hint.
#[inline]
fn load_for_write(word: &AtomicU64, contended: &AtomicBool, now: u64) -> u64 {
    if now & 0x3ff == 0 {
        contended.store(false, Ordering::Relaxed);
    }
    word.fetch_or(0, Ordering::Acquire)
}

/// Clamps a `u64` into `u32`.
#[inline]
pub(crate) fn clamp_u32(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// Implements `RateLimiter` and `Algorithm` for a limiter with fields
/// `state: StateWord`, `clock: LimiterClock` and methods
/// `max_cost(&self) -> u32` (the largest cost ever admitted),
/// `step(&self, word, now, cost, live) -> Step` (for `cost <= max_cost`;
/// `live` says that `now` was read from `clock` and may be read again: a
/// step that finds its word ahead of `now` by more than a monotonic clock
/// allows rereads the clock before taking it for a step back, so that a
/// thread whose reading went stale while others checked does not pass for
/// one),
/// `fresh_word(&self, now) -> u64` and `word_is_fresh(&self, word, now) -> bool`.
/// An optional second argument is the inline attribute of `check` and
/// `check_n` (default `#[inline]`).
/// The keyed store's cell is an `AtomicU64` checked by the same CAS loop.
macro_rules! atomic_limiter {
    ($ty:ty) => {
        $crate::atomic::atomic_limiter!($ty, #[inline]);
    };
    ($ty:ty, #[$inline:meta]) => {
        impl $crate::atomic::WordStep for $ty {
            #[inline(always)]
            fn step(&self, word: u64, now: u64, cost: u32, live: bool) -> $crate::atomic::Step {
                <$ty>::step(self, word, now, cost, live)
            }
        }

        impl $crate::RateLimiter for $ty {
            // Every limiter built by this crate admits a cost of 1
            // (`max_cost() >= 1`), so a unit check skips the cost test and
            // the `Result` of `check_n`.
            #[$inline]
            fn check(&self) -> $crate::Decision {
                debug_assert!(self.max_cost() >= 1);
                let now = self.clock.now_nanos();
                $crate::atomic::cas_loop_hinted(self, &self.state, &self.contended, now, 1)
            }

            #[$inline]
            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                let limit = self.max_cost();
                if cost > limit {
                    return Err($crate::CheckError::CostExceedsLimit { cost, limit });
                }
                let now = self.clock.now_nanos();
                Ok($crate::atomic::cas_loop_hinted(
                    self,
                    &self.state,
                    &self.contended,
                    now,
                    cost,
                ))
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
                let (d, next) = self.step(*state, now, cost, false);
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
                Ok($crate::atomic::cas_loop(self, cell, now, cost, true))
            }

            fn is_cell_fresh_equivalent(&self, cell: &$crate::sync::AtomicU64, now: u64) -> bool {
                self.word_is_fresh(cell.load($crate::sync::Ordering::Relaxed), now)
            }
        }
    };
}
pub(crate) use atomic_limiter;

#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{thread, Arc};

    /// Two threads add 1 and 2 to a word through `cas_loop_hinted`, one
    /// starting with the contention hint set (its first read is the
    /// read-modify-write) and one without: no update is lost, in every
    /// interleaving.
    #[test]
    fn loom_hinted_cas_loop_loses_no_update() {
        sysblocks_sync::model(|| {
            let word = Arc::new(AtomicU64::new(0));
            let (w2, h2) = (Arc::clone(&word), Arc::new(AtomicBool::new(true)));
            /// Adds its amount to the word.
            struct Add(u64);
            impl WordStep for Add {
                fn step(&self, word: u64, _: u64, _: u32, _: bool) -> Step {
                    (Decision::deny_cost_over_limit(0), word + self.0)
                }
            }
            let add =
                |w: &AtomicU64, hint: &AtomicBool, n: u64| cas_loop_hinted(&Add(n), w, hint, 1, 1);
            let t = thread::spawn(move || {
                add(&w2, &h2, 2);
            });
            add(&word, &AtomicBool::new(false), 1);
            t.join().unwrap();
            assert_eq!(word.load(Ordering::Relaxed), 3);
        });
    }
}
