//! Async single-flight loaders (the `async` feature): `get_with` and
//! `try_get_with`, futures that wait for another caller's load by
//! registering a waker, never by blocking the thread.

use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::load::FlightGuard;
use super::{Cache, Pending};
use crate::flight::{Flight, Outcome};
use crate::sync::{Arc, StdArc};

/// What a caller does next for its key.
enum Step<V> {
    /// The value was cached.
    Hit(V),
    /// Another caller is loading it.
    Wait(Arc<Flight<V>>),
    /// This caller loads it.
    Lead(Arc<Flight<V>>),
}

/// Waits for a flight's outcome as a future.
struct WaitFlight<'a, V> {
    flight: &'a Flight<V>,
    slot: Option<usize>,
}

impl<V: Clone> Future for WaitFlight<'_, V> {
    type Output = Outcome<V>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome<V>> {
        let this = self.get_mut();
        this.flight.poll_wait(cx, &mut this.slot)
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
{
    /// The cached value, or `init`'s, stored, with single flight across
    /// futures and threads: concurrent callers missing on the same key
    /// wait for one `init` instead of running their own.
    ///
    /// Waiting never blocks the thread: a waiter registers its task's
    /// waker and is woken when the load ends. The shard lock is taken
    /// only for short, non-awaiting steps, never across an `.await`.
    ///
    /// If the future running `init` is dropped before it ends (cancelled),
    /// or `init` panics, the waiters are woken and one of them runs its
    /// own `init`. A write or removal of the key while `init` runs keeps
    /// its value out of the cache, as for
    /// [`try_get_or_insert_with`](Self::try_get_or_insert_with).
    ///
    /// An `init` that awaits a load of its own key waits for itself and
    /// never ends (a blocking caller's re-entry is detected by its thread;
    /// a future has no fixed thread). Blocking calls such as
    /// [`get_or_insert_with`](Self::get_or_insert_with) made on a runtime
    /// thread may block it while a future loads the key.
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     // A minimal executor for the example: any runtime works.
    /// #     use std::task::{Context, Poll, Wake, Waker};
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// use sysblocks_lru_ttl_cache::Cache;
    ///
    /// let cache: Cache<u32, String> = Cache::builder().max_capacity(100).build()?;
    /// let v = block_on(cache.get_with(1, async { "one".to_string() }));
    /// assert_eq!(v, "one");
    /// assert_eq!(cache.get(&1).as_deref(), Some("one"));
    /// # Ok::<(), sysblocks_lru_ttl_cache::BuildError>(())
    /// ```
    pub async fn get_with(&self, key: K, init: impl Future<Output = V>) -> V {
        let init = async { Ok::<V, std::convert::Infallible>(init.await) };
        match self.try_get_with(key, init).await {
            Ok(v) => v,
            Err(e) => match *e {},
        }
    }

    /// [`get_with`](Self::get_with) with a fallible `init`. On `Err`
    /// nothing is stored, and the error, in an `Arc`, is returned to this
    /// caller and to every `try_get_with` caller with the same error type
    /// that was waiting for this load (as moka does); other waiters
    /// (blocking ones, `get_with`, another error type) run their own
    /// `init`.
    ///
    /// # Errors
    ///
    /// `init`'s error, or the error of the load this call waited for.
    pub async fn try_get_with<E>(
        &self,
        key: K,
        init: impl Future<Output = Result<V, E>>,
    ) -> Result<V, StdArc<E>>
    where
        E: Send + Sync + 'static,
    {
        let hash = self.hash_of(&key);
        let mut init = Some(init);
        loop {
            match self.step(hash, &key) {
                Step::Hit(v) => return Ok(v),
                Step::Wait(flight) => {
                    let waited = WaitFlight {
                        flight: &flight,
                        slot: None,
                    }
                    .await;
                    match waited {
                        Outcome::Done(v) => return Ok(v),
                        Outcome::Error(e) => {
                            if let Ok(e) = e.downcast::<E>() {
                                return Err(e);
                            }
                        }
                        Outcome::Failed => {}
                    }
                }
                Step::Lead(flight) => {
                    let mut guard = FlightGuard {
                        cache: self,
                        hash,
                        key: Some(key.clone()),
                        flight,
                    };
                    let Some(init) = init.take() else {
                        unreachable!("a caller leads at most once: it returns after")
                    };
                    return match init.await {
                        Ok(v) => Ok(guard.complete(v)),
                        Err(e) => {
                            let e = StdArc::new(e);
                            guard.end(Outcome::Error(StdArc::clone(&e) as _));
                            Err(e)
                        }
                    };
                }
            }
        }
    }

    /// One short, non-awaiting step under the shard lock: a hit, a flight
    /// to wait for, or a new flight this caller leads. The listener runs
    /// after the lock, before the step returns.
    fn step(&self, hash: u64, key: &K) -> Step<V> {
        let mut pending = Pending::new(self.inner.listener.as_ref());
        let mut shard = self.shard_for(hash).write();
        if let Some(i) = shard.lru.get_index(hash, key, &mut pending.sink()) {
            return Step::Hit(shard.lru.value_at(i).clone());
        }
        if let Some(f) = shard.inflight.get(key) {
            return Step::Wait(Arc::clone(f));
        }
        let flight = Arc::new(Flight::new_async());
        shard.inflight.insert(key.clone(), Arc::clone(&flight));
        Step::Lead(flight)
    }
}
