//! Glue for the limiters whose state needs more than one word (the window
//! algorithms): the state sits behind a mutex from the `sync` shim.

/// Implements `RateLimiter` and `Algorithm` for a limiter with fields
/// `state: Mutex<$state>`, `clock: LimiterClock` and methods
/// `decide_state(&self, &mut $state, now, cost, live)` (`live`: `now` was
/// read from `clock` and may be read again, as in `atomic_limiter!`),
/// `fresh(&self, now)`, and `state_is_fresh(&self, &$state, now)`. The keyed store's cell is a
/// mutex around the state.
macro_rules! locked_limiter {
    ($ty:ty, $state:ty) => {
        impl $crate::RateLimiter for $ty {
            fn check_n(&self, cost: u32) -> Result<$crate::Decision, $crate::CheckError> {
                let now = self.clock.now_nanos();
                let mut state = self.state.lock();
                self.decide_state(&mut state, now, cost, true)
            }
        }

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
