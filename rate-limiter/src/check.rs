//! `AsyncCheck`: one async interface over every limiter (feature `async`).

use std::future::Future;
use std::hash::Hash;

use crate::{Algorithm, CheckError, Decision, Keyed, RateLimiter};

/// A limiter that decides, by key, whether `cost` cells may pass now, and
/// may have to wait for I/O to know: the one interface the tower layer
/// ([`crate::tower`]) and async callers need, implemented by the local
/// limiters (every [`RateLimiter`], which ignores the key), by [`Keyed`],
/// and by limiters whose state lives in another process (Redis).
///
/// A local limiter decides at once: [`AsyncCheck::check_now`] returns the
/// decision and [`AsyncCheck::check_async`] is a future that is ready on
/// its first poll. A remote limiter implements only `check_async` (and may
/// answer `check_now` from a local cache, e.g. of keys known to be denied
/// until some instant). Callers that can finish without an `.await` (the
/// tower service answers in `call`, with no allocation) try `check_now`
/// first and await `check_async` only when it returns `None`.
///
/// # Examples
///
/// ```
/// use sysblocks_rate_limiter::{AsyncCheck, Gcra, Keyed, ManualClock, Quota};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let clock = ManualClock::new();
/// let per_ip = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock)?).build()?;
/// let d = per_ip.check_async(&"10.0.0.1", 1).await?;
/// assert!(d.is_allowed());
/// assert!(!per_ip.check_now(&"10.0.0.1", 1).expect("a local limiter")?.is_allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub trait AsyncCheck<K: ?Sized>: Send + Sync {
    /// Why a check could not decide: a cost the limiter can never admit
    /// ([`CheckError`] for the local limiters), or a store that did not
    /// answer. A denial is not an error: it is a [`Decision`] that is not
    /// allowed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Checks a request of `cost` cells for `key` and, if it is admitted,
    /// records it; see [`RateLimiter::check_n`]. The future is `Send`, so
    /// it can be awaited on a multi-threaded runtime.
    ///
    /// # Errors
    ///
    /// [`AsyncCheck::Error`]: for the local limiters, as
    /// [`RateLimiter::check_n`].
    fn check_async(
        &self,
        key: &K,
        cost: u32,
    ) -> impl Future<Output = Result<Decision, Self::Error>> + Send;

    /// The check's result if it is known without waiting, else `None`
    /// (the default, for a limiter that must ask another process); a
    /// `Some` has recorded the request exactly as
    /// [`AsyncCheck::check_async`] would have.
    fn check_now(&self, key: &K, cost: u32) -> Option<Result<Decision, Self::Error>> {
        let _ = (key, cost);
        None
    }
}

/// Every local limiter, with one state for all keys (the key is ignored).
impl<K: ?Sized, L: RateLimiter + ?Sized> AsyncCheck<K> for L {
    type Error = CheckError;

    fn check_async(
        &self,
        _key: &K,
        cost: u32,
    ) -> impl Future<Output = Result<Decision, CheckError>> + Send {
        std::future::ready(self.check_n(cost))
    }

    #[inline]
    fn check_now(&self, _key: &K, cost: u32) -> Option<Result<Decision, CheckError>> {
        Some(self.check_n(cost))
    }
}

/// One state per key ([`Keyed::check_key_n`]).
impl<K, A> AsyncCheck<K> for Keyed<K, A>
where
    K: Hash + Eq + Clone + Send + Sync,
    A: Algorithm,
{
    type Error = CheckError;

    fn check_async(
        &self,
        key: &K,
        cost: u32,
    ) -> impl Future<Output = Result<Decision, CheckError>> + Send {
        std::future::ready(self.check_key_n(key, cost))
    }

    #[inline]
    fn check_now(&self, key: &K, cost: u32) -> Option<Result<Decision, CheckError>> {
        Some(self.check_key_n(key, cost))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;
    use crate::sync::StdArc;
    use crate::{Gcra, ManualClock, Quota};

    struct Noop;
    impl Wake for Noop {
        fn wake(self: StdArc<Self>) {}
    }

    /// Polls a future once; the local limiters' futures are always ready.
    fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
        let waker = Waker::from(StdArc::new(Noop));
        pin!(f).poll(&mut Context::from_waker(&waker))
    }

    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn local_limiters_decide_at_once_and_ignore_the_key() {
        let clock = ManualClock::new();
        let g = Gcra::with_clock(Quota::per_second(1).burst(2), clock).unwrap();
        let f = AsyncCheck::<str>::check_async(&g, "a", 1);
        is_send(&f);
        let Poll::Ready(Ok(d)) = poll_once(f) else {
            panic!("ready")
        };
        assert!(d.is_allowed());
        assert!(AsyncCheck::<str>::check_now(&g, "b", 1)
            .unwrap()
            .unwrap()
            .is_allowed());
        assert!(!AsyncCheck::<u8>::check_now(&g, &3, 1)
            .unwrap()
            .unwrap()
            .is_allowed());
        assert_eq!(
            AsyncCheck::<u8>::check_now(&g, &3, 3).unwrap(),
            Err(CheckError::CostExceedsLimit { cost: 3, limit: 2 })
        );
        let dynamic: &dyn RateLimiter = &g;
        assert!(AsyncCheck::<u8>::check_now(dynamic, &3, 0).is_some());
    }

    #[test]
    fn keyed_decides_per_key() {
        let clock = ManualClock::new();
        let k = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock).unwrap())
            .build::<u32>()
            .unwrap();
        let Poll::Ready(Ok(d)) = poll_once(k.check_async(&1, 1)) else {
            panic!("ready")
        };
        assert!(d.is_allowed());
        assert!(!k.check_now(&1, 1).unwrap().unwrap().is_allowed());
        assert!(k.check_now(&2, 1).unwrap().unwrap().is_allowed());
    }
}
