//! Async waiting (feature `async`).

use std::future::Future;
use std::time::Duration;

use crate::{CheckError, Decision, RateLimiter};

/// Waits asynchronously until `cost` cells are admitted by `limiter` (and
/// any leaky-bucket delay has passed), sleeping on tokio's timer.
///
/// # Errors
///
/// As [`RateLimiter::check_n`], returned at once;
/// [`CheckError::EndOfClock`] as for [`RateLimiter::wait_n`].
pub async fn until_ready_n<L: RateLimiter + ?Sized>(
    limiter: &L,
    cost: u32,
) -> Result<Decision, CheckError> {
    until_ready_n_with(limiter, cost, tokio::time::sleep).await
}

/// [`until_ready_n`] with a caller-supplied async sleep, e.g. one that
/// advances a [`ManualClock`](crate::ManualClock) for deterministic tests.
///
/// # Errors
///
/// As [`until_ready_n`].
pub async fn until_ready_n_with<L, F, Fut>(
    limiter: &L,
    cost: u32,
    mut sleep: F,
) -> Result<Decision, CheckError>
where
    L: RateLimiter + ?Sized,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let d = limiter.check_n(cost)?;
        if d.is_allowed() {
            if !d.delay().is_zero() {
                sleep(d.delay()).await;
            }
            return Ok(d);
        }
        if d.retry_never() {
            return Err(CheckError::EndOfClock);
        }
        let wait = d.retry_after().unwrap_or_default();
        sleep(wait.max(Duration::from_nanos(1))).await;
    }
}
