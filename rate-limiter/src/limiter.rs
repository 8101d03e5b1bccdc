//! The traits every algorithm implements.

use std::time::Duration;

use crate::{CheckError, Decision};

/// One interface for every algorithm: ask whether `cost` cells may pass now.
///
/// Decisions depend only on the arrival times the limiter's
/// [`Clock`](crate::Clock) reports, so a [`ManualClock`](crate::ManualClock)
/// makes every decision reproducible.
pub trait RateLimiter: Send + Sync {
    /// Checks a request of `cost` cells and, if it is admitted, records it.
    /// A cost of 0 is always admitted and changes nothing.
    ///
    /// # Errors
    ///
    /// [`CheckError::CostExceedsLimit`] if `cost` is more than this limiter
    /// can ever admit at once: waiting would never help, so it is not a
    /// denial.
    fn check_n(&self, cost: u32) -> Result<Decision, CheckError>;

    /// Checks a request of one cell. Every limiter built by this crate admits
    /// at least one cell at once, so this cannot fail.
    fn check(&self) -> Decision {
        match self.check_n(1) {
            Ok(d) => d,
            // Only a hand-written limiter with a limit of 0 (or one that
            // reports the end of its clock) gets here.
            Err(e) => Decision::from_error(e),
        }
    }

    /// Blocks the thread until `cost` cells are admitted (and, for a delaying
    /// leaky bucket, until the returned delay has passed), then returns the
    /// admitting decision.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::check_n`]; the error is returned at once.
    /// [`CheckError::EndOfClock`] if the request could be admitted only
    /// beyond the clock's range (a denial with
    /// [`Decision::RETRY_NEVER`]), which no wait reaches.
    fn wait_n(&self, cost: u32) -> Result<Decision, CheckError> {
        self.wait_n_with(cost, &ThreadSleeper)
    }

    /// [`RateLimiter::wait_n`] sleeping through `sleeper`; a sleeper that
    /// advances a [`ManualClock`](crate::ManualClock) makes waiting
    /// deterministic in tests.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::wait_n`].
    fn wait_n_with(&self, cost: u32, sleeper: &dyn Sleeper) -> Result<Decision, CheckError> {
        wait_loop(|| self.check_n(cost), sleeper)
    }
}

/// Checks until admitted, sleeping each denial's `retry_after` (at least a
/// nanosecond), then the admission's delay; stops with
/// [`CheckError::EndOfClock`] on a denial no wait within the clock's range
/// cures, rather than sleeping for centuries.
pub(crate) fn wait_loop(
    mut check: impl FnMut() -> Result<Decision, CheckError>,
    sleeper: &dyn Sleeper,
) -> Result<Decision, CheckError> {
    loop {
        let d = check()?;
        if d.is_allowed() {
            if !d.delay().is_zero() {
                sleeper.sleep(d.delay());
            }
            return Ok(d);
        }
        if d.retry_never() {
            return Err(CheckError::EndOfClock);
        }
        let wait = d.retry_after().unwrap_or(Duration::ZERO);
        sleeper.sleep(wait.max(Duration::from_nanos(1)));
    }
}

/// How [`RateLimiter::wait_n_with`] waits.
pub trait Sleeper: Send + Sync {
    /// Returns after `d` has passed on the limiter's clock.
    fn sleep(&self, d: Duration);
}

/// Sleeps the calling thread (`std::thread::sleep`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadSleeper;

impl Sleeper for ThreadSleeper {
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Moves a [`ManualClock`](crate::ManualClock) forward instead of sleeping,
/// for deterministic tests and simulations.
#[derive(Debug, Clone, Default)]
pub struct ManualSleeper(pub crate::ManualClock);

impl Sleeper for ManualSleeper {
    fn sleep(&self, d: Duration) {
        self.0.advance(d);
    }
}

/// An algorithm's per-key form, used by [`Keyed`](crate::Keyed): the
/// limiter acts as a template (its configuration and clock), and each key
/// owns a small [`Algorithm::State`], held by the keyed store as an
/// [`Algorithm::Cell`] that threads check through a shared reference.
pub trait Algorithm: Send + Sync {
    /// The state of one key.
    type State: Send;

    /// A key's state as the keyed store holds it, checked by several
    /// threads at once under the shard's read lock: one atomic word for the
    /// lock-free limiters (checked by the same compare-and-swap loop as the
    /// limiter itself), a mutex around [`Algorithm::State`] for the others.
    type Cell: Send + Sync;

    /// The limiter's clock reading, in nanoseconds.
    fn now_nanos(&self) -> u64;

    /// The state of a key first seen at `now`.
    fn fresh_state(&self, now: u64) -> Self::State;

    /// [`RateLimiter::check_n`] on one key's state.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::check_n`].
    fn decide(&self, state: &mut Self::State, now: u64, cost: u32) -> Result<Decision, CheckError>;

    /// Whether `state` can no longer be told from a fresh key's state at
    /// `now` or later, so the keyed store may drop it.
    fn is_fresh_equivalent(&self, state: &Self::State, now: u64) -> bool;

    /// The cell holding `state`.
    fn new_cell(&self, state: Self::State) -> Self::Cell;

    /// [`Algorithm::decide`] on a cell other threads may be checking at the
    /// same time: the result is as if the concurrent checks of the cell ran
    /// one after another.
    ///
    /// # Errors
    ///
    /// As [`RateLimiter::check_n`].
    fn decide_cell(&self, cell: &Self::Cell, now: u64, cost: u32) -> Result<Decision, CheckError>;

    /// [`Algorithm::is_fresh_equivalent`] on a cell's state.
    fn is_cell_fresh_equivalent(&self, cell: &Self::Cell, now: u64) -> bool;
}
