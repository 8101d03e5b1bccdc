//! Glue for the limiters whose state needs more than one word (the window
//! algorithms): the state sits behind a mutex from the `sync` shim, or, for
//! the direct fixed window and sliding-window counter, in one word updated
//! with a compare-and-swap for as long as it packs into one
//! ([`PackedState`]).

use crate::atomic::StateWord;
use crate::sync::{Mutex, Ordering};
use crate::Decision;

/// The word of a [`PackedState`] whose state no longer packs: the state
/// lives in the mutex from then on. No packing produces it.
pub(crate) const SPILLED: u64 = u64::MAX;

/// A window limiter's state as a pure function on a `Copy` state, and the
/// state's packing into one word.
pub(crate) trait Packing {
    type State: Copy;

    /// The state in `word` (a word [`Packing::pack`] made).
    fn unpack(&self, word: u64) -> Self::State;

    /// `s` as one word other than [`SPILLED`], or `None` if it does not
    /// fit; `from` is the word `s` was computed from, which makes the
    /// common case (the window's start unchanged) a few instructions.
    fn pack(&self, s: &Self::State, from: u64) -> Option<u64>;

    /// The decision on `s` for `cost` (at most the limit) at `now`, and the
    /// next state (`live` as in `atomic_limiter!`).
    fn step(&self, s: Self::State, now: u64, cost: u32, live: bool) -> (Decision, Self::State);

    /// [`Packing::step`] and [`Packing::pack`] on the word itself in the
    /// common case, `now` inside the window the word holds (no roll of the
    /// window, no clock read again): the decision and the next word; `None`
    /// in every other case, which the caller hands to `step`.
    fn within(&self, word: u64, now: u64, cost: u32) -> Option<(Decision, u64)>;
}

/// The state of a direct window limiter: packed into one word, checked
/// lock-free by a compare-and-swap loop like the atomic limiters (one
/// atomic instruction per admission, where a mutex takes two), while it
/// packs; in a mutex once a check computes a state that does not (after a
/// clock step back, whose windows are not aligned to the origin, or
/// beyond the packing's range of window starts).
///
/// The switch happens once, under the mutex: the thread that computed the
/// unpackable state takes the lock, swaps the word it decided on for
/// [`SPILLED`] and, if that succeeded, stores its state in the mutex before
/// releasing it. A thread that reads [`SPILLED`] takes the lock after that
/// store; a compare-and-swap from a packed word fails from then on. So the
/// checks stay one sequence, as under a mutex throughout.
pub(crate) struct PackedState<S> {
    word: StateWord,
    spilled: Mutex<S>,
}

impl<S: Copy> PackedState<S> {
    /// A state starting at `initial`, which must pack into `word`.
    pub(crate) fn new(initial: S, word: u64) -> Self {
        debug_assert_ne!(word, SPILLED);
        Self {
            word: StateWord::new(word),
            spilled: Mutex::new(initial),
        }
    }

    /// [`Packing::step`] on the current state, installed as the next one.
    #[inline(always)]
    pub(crate) fn check<P: Packing<State = S>>(&self, p: &P, now: u64, cost: u32) -> Decision {
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            if cur == SPILLED {
                return self.check_spilled(p, now, cost);
            }
            let (decision, word) = match p.within(cur, now, cost) {
                Some(step) => step,
                None => {
                    let (decision, next) = p.step(p.unpack(cur), now, cost, true);
                    let Some(word) = p.pack(&next, cur) else {
                        match self.spill(cur, next) {
                            Ok(()) => return decision,
                            Err(actual) => {
                                cur = actual;
                                continue;
                            }
                        }
                    };
                    (decision, word)
                }
            };
            if word == cur {
                return decision;
            }
            match self
                .word
                .compare_exchange_weak(cur, word, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return decision,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Replaces the packed word `from` by [`SPILLED`] and stores `next` in
    /// the mutex, or returns the word found instead of `from`.
    #[cold]
    #[inline(never)]
    fn spill(&self, from: u64, next: S) -> Result<(), u64> {
        let mut state = self.spilled.lock();
        self.word
            .compare_exchange(from, SPILLED, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| *state = next)
    }

    #[cold]
    #[inline(never)]
    fn check_spilled<P: Packing<State = S>>(&self, p: &P, now: u64, cost: u32) -> Decision {
        let mut state = self.spilled.lock();
        let (decision, next) = p.step(*state, now, cost, true);
        *state = next;
        decision
    }
}

/// Implements `RateLimiter` for a window limiter with fields
/// `state: PackedState<_>`, `clock: LimiterClock`, `limit: u32` and a
/// [`Packing`] impl: a cost above the limit is an error, anything else
/// one [`PackedState::check`].
macro_rules! packed_limiter {
    ($ty:ty) => {
        impl $crate::RateLimiter for $ty {
            // Every window limiter admits a cost of 1 (`limit >= 1`).
            #[inline]
            fn check(&self) -> $crate::Decision {
                debug_assert!(self.limit >= 1);
                let now = self.clock.now_nanos();
                self.state.check(self, now, 1)
            }

            #[inline]
            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                if cost > self.limit {
                    return Err($crate::CheckError::CostExceedsLimit {
                        cost,
                        limit: self.limit,
                    });
                }
                let now = self.clock.now_nanos();
                Ok(self.state.check(self, now, cost))
            }
        }
    };
}
pub(crate) use packed_limiter;

/// Implements `RateLimiter` for a limiter with fields
/// `state: Mutex<$state>` and `clock: LimiterClock` and a method
/// `step(&self, &mut $state, now, cost, live) -> Decision` (for a cost at
/// most the limit, which is at least 1), and `Algorithm` for it and for
/// the packed window limiters, with methods
/// `decide_state(&self, &mut $state, now, cost, live)` (`live`: `now` was
/// read from `clock` and may be read again, as in `atomic_limiter!`),
/// `fresh(&self, now)`, and `state_is_fresh(&self, &$state, now)`. The
/// keyed store's cell is a mutex around the state.
macro_rules! locked_limiter {
    ($ty:ty, $state:ty) => {
        impl $crate::RateLimiter for $ty {
            // A unit check needs no cost test, nor `check_n`'s `Result`.
            #[inline]
            fn check(&self) -> $crate::Decision {
                let now = self.clock.now_nanos();
                let mut state = self.state.lock();
                self.step(&mut state, now, 1, true)
            }

            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                let now = self.clock.now_nanos();
                let mut state = self.state.lock();
                self.decide_state(&mut state, now, cost, true)
            }
        }

        $crate::locked::locked_limiter!(algorithm $ty, $state);
    };
    (algorithm $ty:ty, $state:ty) => {
        impl $crate::Algorithm for $ty {
            type State = $state;
            type Cell = $crate::sync::StateLock<$state>;

            #[inline]
            fn now_nanos(&self) -> u64 {
                self.clock.now_nanos()
            }

            fn fresh_state(&self, now: u64) -> $state {
                self.fresh(now)
            }

            #[inline]
            fn decide(
                &self,
                state: &mut $state,
                now: u64,
                cost: u32,
            ) -> Result<$crate::Decision, $crate::CheckError> {
                self.decide_state(state, now, cost, false)
            }

            fn is_fresh_equivalent(&self, state: &$state, now: u64) -> bool {
                self.state_is_fresh(state, now)
            }

            fn new_cell(&self, state: $state) -> $crate::sync::StateLock<$state> {
                $crate::sync::StateLock::new(state)
            }

            fn decide_cell(
                &self,
                cell: &$crate::sync::StateLock<$state>,
                now: u64,
                cost: u32,
            ) -> Result<$crate::Decision, $crate::CheckError> {
                self.decide_state(&mut $crate::sync::lock_state(cell), now, cost, true)
            }

            fn is_cell_fresh_equivalent(
                &self,
                cell: &$crate::sync::StateLock<$state>,
                now: u64,
            ) -> bool {
                self.state_is_fresh(&$crate::sync::lock_state(cell), now)
            }
        }
    };
}
pub(crate) use locked_limiter;

#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use std::time::Duration;

    use sysblocks_clock::ManualClock;

    use crate::sync::{thread, Arc};
    use crate::{FixedWindow, Quota, RateLimiter};

    /// A clock stepped back before the window's start: both threads compute
    /// a state that does not pack, one spills it into the mutex and the
    /// other's compare-and-swap fails over to the mutex. The one cell left
    /// in the window is admitted once, in every interleaving, and the
    /// spilled state counts it.
    #[test]
    fn loom_spill_admits_the_last_cell_once() {
        sysblocks_sync::model(|| {
            let clock = ManualClock::new();
            let fw = FixedWindow::with_clock(Quota::per_second(2), clock.clone()).unwrap();
            clock.set(Duration::from_millis(1500));
            assert!(fw.check().is_allowed());
            clock.set(Duration::from_millis(500));
            let fw = Arc::new(fw);
            let other = Arc::clone(&fw);
            let t = thread::spawn(move || other.check().is_allowed());
            let mine = fw.check().is_allowed();
            let theirs = t.join().unwrap();
            assert!(mine ^ theirs, "{mine} {theirs}");
            assert!(!fw.check().is_allowed());
        });
    }
}
