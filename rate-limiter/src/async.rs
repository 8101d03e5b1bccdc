//! Async waiting (feature `async`): until a limiter, or one key of a
//! [`Keyed`] limiter, admits a request.

use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use crate::{Algorithm, CheckError, Decision, Keyed, RateLimiter};

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
    sleep: F,
) -> Result<Decision, CheckError>
where
    L: RateLimiter + ?Sized,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    wait_loop(|| limiter.check_n(cost), Jitter::NONE, sleep).await
}

/// Checks until admitted, sleeping each denial's `retry_after` (at least a
/// nanosecond) plus a draw of `jitter`, then the admission's delay; stops
/// with [`CheckError::EndOfClock`] on a denial no wait within the clock's
/// range cures.
async fn wait_loop<F, Fut>(
    mut check: impl FnMut() -> Result<Decision, CheckError>,
    jitter: Jitter,
    mut sleep: F,
) -> Result<Decision, CheckError>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut rng = jitter.rng();
    loop {
        let d = check()?;
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
        let wait = wait.max(Duration::from_nanos(1));
        sleep(wait.saturating_add(jitter.draw(&mut rng))).await;
    }
}

/// A random extra wait added to every sleep after a denial by the keyed
/// waiting forms ([`Keyed::until_ready_with_jitter`]), so that clients
/// denied at the same instant do not all retry at the same instant (what
/// governor's `Jitter` does): each sleep is the denial's `retry_after` plus
/// `min` plus a uniform draw from `[0, interval]` (nanosecond steps).
///
/// The draws come from a small generator seeded at random for each wait,
/// or from [`Jitter::seeded`] for reproducible runs.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_rate_limiter::Jitter;
///
/// let j = Jitter::up_to(Duration::from_millis(50)).seeded(7);
/// assert_eq!(j, Jitter::new(Duration::ZERO, Duration::from_millis(50)).seeded(7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jitter {
    min: Duration,
    interval: Duration,
    seed: Option<u64>,
}

impl Jitter {
    /// No extra wait.
    pub const NONE: Self = Self {
        min: Duration::ZERO,
        interval: Duration::ZERO,
        seed: None,
    };

    /// An extra wait of at least `min` and at most `min + interval`.
    #[must_use]
    pub const fn new(min: Duration, interval: Duration) -> Self {
        Self {
            min,
            interval,
            seed: None,
        }
    }

    /// An extra wait of at most `max`, uniform from zero.
    #[must_use]
    pub const fn up_to(max: Duration) -> Self {
        Self::new(Duration::ZERO, max)
    }

    /// The same jitter drawing from a generator seeded with `seed`: every
    /// wait with it sees the same sequence of draws.
    #[must_use]
    pub const fn seeded(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The generator of one wait.
    fn rng(&self) -> SplitMix {
        if self.interval.is_zero() {
            return SplitMix(0);
        }
        SplitMix(
            self.seed
                .unwrap_or_else(|| ahash::RandomState::new().hash_one(0x6a69_7474_6572_u64)),
        )
    }

    /// One extra wait.
    fn draw(&self, rng: &mut SplitMix) -> Duration {
        let span = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        let extra = match span.checked_add(1) {
            _ if span == 0 => 0,
            // Multiply-shift: uniform enough for spreading retries.
            Some(n) => ((u128::from(rng.next()) * u128::from(n)) >> 64) as u64,
            None => rng.next(),
        };
        self.min.saturating_add(Duration::from_nanos(extra))
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Self::NONE
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): one add and three
/// multiply-xorshifts per draw.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Async waiting by key, as governor's `until_key_ready` family: each key
/// waits for its own state, sleeping each denial's `retry_after` (plus an
/// optional [`Jitter`]) and checking again.
impl<K: Hash + Eq + Clone, A: Algorithm> Keyed<K, A> {
    /// Waits on tokio's timer until one cell is admitted for `key`.
    ///
    /// # Errors
    ///
    /// As [`Keyed::until_ready_n`].
    pub async fn until_ready(&self, key: &K) -> Result<Decision, CheckError> {
        self.until_ready_n(key, 1).await
    }

    /// Waits on tokio's timer until `cost` cells are admitted for `key`
    /// (and any leaky-bucket delay has passed); returns the admitting
    /// decision.
    ///
    /// # Errors
    ///
    /// As [`Keyed::check_key_n`], returned at once;
    /// [`CheckError::EndOfClock`] if the key could be admitted only beyond
    /// the clock's range.
    pub async fn until_ready_n(&self, key: &K, cost: u32) -> Result<Decision, CheckError> {
        self.until_ready_with(key, cost, Jitter::NONE, tokio::time::sleep)
            .await
    }

    /// [`Keyed::until_ready_n`] adding `jitter` to every sleep after a
    /// denial.
    ///
    /// # Errors
    ///
    /// As [`Keyed::until_ready_n`].
    pub async fn until_ready_with_jitter(
        &self,
        key: &K,
        cost: u32,
        jitter: Jitter,
    ) -> Result<Decision, CheckError> {
        self.until_ready_with(key, cost, jitter, tokio::time::sleep)
            .await
    }

    /// [`Keyed::until_ready_with_jitter`] with a caller-supplied async
    /// sleep, e.g. one that advances a [`ManualClock`](crate::ManualClock)
    /// so that tests are deterministic.
    ///
    /// # Errors
    ///
    /// As [`Keyed::until_ready_n`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use sysblocks_rate_limiter::{Clock, Gcra, Jitter, Keyed, ManualClock, Quota};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let clock = ManualClock::new();
    /// let per_ip = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock.clone())?)
    ///     .build()?;
    /// let sleep = |d| {
    ///     clock.advance(d);
    ///     std::future::ready(())
    /// };
    /// per_ip.until_ready_with(&"a", 1, Jitter::NONE, sleep).await?;
    /// per_ip.until_ready_with(&"a", 1, Jitter::NONE, sleep).await?;
    /// assert_eq!(clock.now_nanos(), 1_000_000_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn until_ready_with<F, Fut>(
        &self,
        key: &K,
        cost: u32,
        jitter: Jitter,
        sleep: F,
    ) -> Result<Decision, CheckError>
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = ()>,
    {
        wait_loop(|| self.check_key_n(key, cost), jitter, sleep).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_repeat_with_a_seed() {
        let j = Jitter::new(Duration::from_millis(5), Duration::from_millis(10)).seeded(42);
        let mut a = j.rng();
        let mut b = j.rng();
        for _ in 0..1000 {
            let x = j.draw(&mut a);
            assert!(x >= Duration::from_millis(5) && x <= Duration::from_millis(15));
            assert_eq!(x, j.draw(&mut b));
        }
        let none = Jitter::NONE;
        assert_eq!(none.draw(&mut none.rng()), Duration::ZERO);
        let huge = Jitter::up_to(Duration::MAX).seeded(1);
        let _ = huge.draw(&mut huge.rng());
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Each key waits for its own state, on a manual clock: the waits are
    /// exactly the keys' `retry_after`s, plus the seeded jitter's draws.
    #[test]
    fn keyed_waits_per_key_with_jitter() {
        use crate::{Clock, Gcra, ManualClock, Quota};
        let clock = ManualClock::new();
        let keyed = Keyed::builder(Gcra::with_clock(Quota::per_second(10), clock.clone()).unwrap())
            .build::<u8>()
            .unwrap();
        let slept = std::cell::Cell::new(Duration::ZERO);
        let sleep = |d: Duration| {
            slept.set(slept.get() + d);
            clock.advance(d);
            std::future::ready(())
        };
        block_on(async {
            for _ in 0..10 {
                keyed
                    .until_ready_with(&1, 1, Jitter::NONE, sleep)
                    .await
                    .unwrap();
            }
            assert_eq!(slept.get(), Duration::ZERO);
            // The 11th cell of key 1 waits one emission interval.
            let d = keyed
                .until_ready_with(&1, 1, Jitter::NONE, sleep)
                .await
                .unwrap();
            assert!(d.is_allowed());
            assert_eq!(slept.get(), Duration::from_millis(100));
            // Key 2 is fresh: no wait.
            keyed
                .until_ready_with(&2, 10, Jitter::NONE, sleep)
                .await
                .unwrap();
            assert_eq!(slept.get(), Duration::from_millis(100));

            // With jitter: the wait is retry_after plus the seeded draw.
            let j = Jitter::up_to(Duration::from_millis(20)).seeded(9);
            let extra = j.draw(&mut j.rng());
            let before = clock.now_nanos();
            keyed.until_ready_with(&1, 1, j, sleep).await.unwrap();
            let waited = Duration::from_nanos(clock.now_nanos() - before);
            assert_eq!(waited, Duration::from_millis(100) + extra);

            // A cost over the burst is an error at once, not a wait.
            assert_eq!(
                keyed.until_ready_with(&3, 11, j, sleep).await,
                Err(CheckError::CostExceedsLimit {
                    cost: 11,
                    limit: 10
                })
            );
        });
    }

    #[test]
    fn keyed_waits_on_tokio_time() {
        use crate::{Gcra, Quota};
        let keyed = Keyed::builder(Gcra::new(Quota::per_second(1000).burst(1)).unwrap())
            .build::<u8>()
            .unwrap();
        block_on(async {
            keyed.until_ready(&0).await.unwrap();
            let d = keyed
                .until_ready_with_jitter(&0, 1, Jitter::up_to(Duration::from_millis(1)))
                .await
                .unwrap();
            assert!(d.is_allowed());
            keyed.until_ready_n(&0, 1).await.unwrap();
        });
    }
}
