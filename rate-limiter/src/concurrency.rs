//! `ConcurrencyLimiter`: at most N in flight, released by an RAII permit;
//! async callers wait in a FIFO queue.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{fence, AtomicBool, AtomicU32, Mutex, Ordering, StdArc};
use crate::{BuildError, CheckError};

/// Admits at most `max` units in flight at once (Stripe's "concurrent
/// requests limiter"). [`ConcurrencyLimiter::try_acquire_n`] takes units
/// with a lock-free compare-and-swap and returns a [`Permit`] that gives
/// them back when dropped.
///
/// It limits concurrency, not rate, so it has no clock and is not a
/// [`RateLimiter`](crate::RateLimiter).
///
/// [`ConcurrencyLimiter::acquire_owned`] waits asynchronously for the
/// units and returns an [`OwnedPermit`] (`'static`, for a spawned task or
/// a response future). Waiters are served first come, first served: a
/// release grants the freed units to the waiters at the head of the queue
/// (a large request at the head is not overtaken by smaller ones behind
/// it), and while anyone waits the `try_acquire` forms do not take units
/// either. A waiter whose future is dropped leaves the queue, and units
/// granted to it but not yet collected are released, so cancellation never
/// leaks a permit.
///
/// # Examples
///
/// ```
/// use sysblocks_rate_limiter::ConcurrencyLimiter;
///
/// let limiter = ConcurrencyLimiter::new(2)?;
/// let a = limiter.try_acquire().expect("one in flight");
/// let _b = limiter.try_acquire().expect("two in flight");
/// assert!(limiter.try_acquire().is_none());
/// drop(a);
/// assert_eq!(limiter.in_flight(), 1);
/// assert!(limiter.try_acquire().is_some());
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimiter {
    max: u32,
    /// Units held, including those granted to waiters not yet woken.
    in_flight: AtomicU32,
    /// Whether `waiters` may be non-empty: a release takes the lock only
    /// then. Written under the lock; see [`ConcurrencyLimiter::release`]
    /// for why no wake-up is lost.
    has_waiters: AtomicBool,
    waiters: Mutex<Waiters>,
}

/// The FIFO queue of async acquirers.
#[derive(Debug, Default)]
struct Waiters {
    queue: VecDeque<Waiter>,
    next_id: u64,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    units: u32,
    waker: Option<Waker>,
    /// The units are taken for this waiter; its future collects them.
    granted: bool,
}

/// Units held in a [`ConcurrencyLimiter`]; dropping it releases them.
#[derive(Debug)]
#[must_use = "the units are released as soon as the permit is dropped"]
pub struct Permit<'a> {
    limiter: &'a ConcurrencyLimiter,
    units: u32,
}

impl ConcurrencyLimiter {
    /// At most `max` units in flight.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `max` is 0.
    pub fn new(max: u32) -> Result<Self, BuildError> {
        if max == 0 {
            return Err(BuildError::Zero {
                setting: "max in flight",
            });
        }
        Ok(Self {
            max,
            in_flight: AtomicU32::new(0),
            has_waiters: AtomicBool::new(false),
            waiters: Mutex::new(Waiters::default()),
        })
    }

    /// The most units in flight at once.
    #[must_use]
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Units in flight now.
    #[must_use]
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Async acquirers waiting (or granted and not yet woken).
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.waiters.lock().queue.len()
    }

    /// Takes one unit if fewer than `max` are in flight.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        self.try_acquire_n(1).ok().flatten()
    }

    /// Takes `units` if they fit and nobody is waiting; `Ok(None)`
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`CheckError::CostExceedsLimit`] if `units > max`: they never fit.
    pub fn try_acquire_n(&self, units: u32) -> Result<Option<Permit<'_>>, CheckError> {
        self.fits(units)?;
        // Only a fairness check: a race with a waiter queueing is harmless.
        if self.has_waiters.load(Ordering::Relaxed) || !self.take(units) {
            return Ok(None);
        }
        Ok(Some(Permit {
            limiter: self,
            units,
        }))
    }

    /// Waits for one unit; see [`ConcurrencyLimiter::acquire_owned_n`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sysblocks_rate_limiter::ConcurrencyLimiter;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let limiter = Arc::new(ConcurrencyLimiter::new(1)?);
    /// let permit = limiter.acquire_owned().await;
    /// let waiting = tokio::spawn({
    ///     let limiter = Arc::clone(&limiter);
    ///     async move { limiter.acquire_owned().await.units() }
    /// });
    /// tokio::task::yield_now().await;
    /// assert!(!waiting.is_finished());
    /// drop(permit);
    /// assert_eq!(waiting.await.unwrap(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn acquire_owned(self: &StdArc<Self>) -> Acquire {
        Acquire {
            limiter: StdArc::clone(self),
            units: 1,
            id: None,
        }
    }

    /// A future that waits until `units` fit, behind every earlier waiter,
    /// and resolves to an [`OwnedPermit`] holding them. Dropping the future
    /// gives up its place (and any units already granted to it).
    ///
    /// # Errors
    ///
    /// [`CheckError::CostExceedsLimit`] if `units > max`: they never fit.
    pub fn acquire_owned_n(self: &StdArc<Self>, units: u32) -> Result<Acquire, CheckError> {
        self.fits(units)?;
        Ok(Acquire {
            limiter: StdArc::clone(self),
            units,
            id: None,
        })
    }

    fn fits(&self, units: u32) -> Result<(), CheckError> {
        if units > self.max {
            return Err(CheckError::CostExceedsLimit {
                cost: units,
                limit: self.max,
            });
        }
        Ok(())
    }

    /// Takes `units` if they fit now, queue or not.
    fn take(&self, units: u32) -> bool {
        let mut cur = self.in_flight.load(Ordering::Acquire);
        loop {
            // `cur <= max` always, so this cannot overflow where
            // `cur + units` could.
            if units > self.max - cur {
                return false;
            }
            match self.in_flight.compare_exchange_weak(
                cur,
                cur + units,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(actual) => {
                    cur = actual;
                    crate::sync::spin_loop();
                }
            }
        }
    }

    /// Gives `units` back and grants what now fits to the head of the
    /// queue.
    ///
    /// No wake-up is lost (Dekker's pattern): a waiter sets `has_waiters`
    /// and then tries to take its units, and a release returns units and
    /// then reads `has_waiters`, with a `SeqCst` fence between the two
    /// steps on each side. So either the waiter's attempt sees the returned
    /// units, or the release sees the flag and grants under the lock, which
    /// the waiter held while queueing. (Fences rather than `SeqCst`
    /// accesses alone, which loom models as acquire/release only.)
    fn release(&self, units: u32) {
        self.in_flight.fetch_sub(units, Ordering::AcqRel);
        fence(Ordering::SeqCst);
        if self.has_waiters.load(Ordering::Relaxed) {
            let wakers = self.grant(&mut self.waiters.lock());
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    /// Grants units to waiters in queue order while the head's fit; returns
    /// the wakers to wake once the lock is released.
    fn grant(&self, w: &mut Waiters) -> Vec<Waker> {
        let mut wake = Vec::new();
        for waiter in w.queue.iter_mut().filter(|x| !x.granted) {
            if !self.take(waiter.units) {
                break;
            }
            waiter.granted = true;
            wake.extend(waiter.waker.take());
        }
        wake
    }

    /// Removes waiter `i`, clearing `has_waiters` when the queue empties.
    fn remove(&self, w: &mut Waiters, i: usize) -> Waiter {
        let waiter = w.queue.remove(i).expect("index in range");
        if w.queue.is_empty() {
            self.has_waiters.store(false, Ordering::Relaxed);
        }
        waiter
    }
}

/// The future of [`ConcurrencyLimiter::acquire_owned`]: resolves to an
/// [`OwnedPermit`] once its units are granted.
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Acquire {
    limiter: StdArc<ConcurrencyLimiter>,
    units: u32,
    /// Its place in the queue, once queued and until it resolves.
    id: Option<u64>,
}

impl Future for Acquire {
    type Output = OwnedPermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnedPermit> {
        let Acquire { limiter, units, id } = &mut *self;
        let units = *units;
        let lim = &**limiter;
        let permit = || OwnedPermit {
            limiter: StdArc::clone(limiter),
            units,
        };
        if id.is_none() && !lim.has_waiters.load(Ordering::Relaxed) && lim.take(units) {
            return Poll::Ready(permit());
        }
        let mut w = lim.waiters.lock();
        let mut wakers = Vec::new();
        let me = match *id {
            Some(me) => me,
            None => {
                // Queue, then try again (the other half of `release`'s
                // argument).
                let me = w.next_id;
                w.next_id += 1;
                w.queue.push_back(Waiter {
                    id: me,
                    units,
                    waker: None,
                    granted: false,
                });
                lim.has_waiters.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                wakers = lim.grant(&mut w);
                *id = Some(me);
                me
            }
        };
        let i = w.queue.iter().position(|x| x.id == me);
        let i = i.expect("a pending waiter stays queued");
        let ready = if w.queue[i].granted {
            lim.remove(&mut w, i);
            *id = None;
            Poll::Ready(permit())
        } else {
            let waiter = &mut w.queue[i];
            match &waiter.waker {
                Some(k) if k.will_wake(cx.waker()) => {}
                _ => waiter.waker = Some(cx.waker().clone()),
            }
            Poll::Pending
        };
        drop(w);
        wakers.into_iter().for_each(Waker::wake);
        ready
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let lim = &*self.limiter;
        let mut w = lim.waiters.lock();
        let Some(i) = w.queue.iter().position(|x| x.id == id) else {
            return;
        };
        let waiter = lim.remove(&mut w, i);
        if waiter.granted {
            lim.in_flight.fetch_sub(waiter.units, Ordering::AcqRel);
        }
        // Units came back, or the head left: whoever now fits goes.
        let wakers = lim.grant(&mut w);
        drop(w);
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Units held in a shared [`ConcurrencyLimiter`], not tied to a borrow;
/// dropping it releases them (and wakes the waiters they now fit).
#[derive(Debug)]
#[must_use = "the units are released as soon as the permit is dropped"]
pub struct OwnedPermit {
    limiter: StdArc<ConcurrencyLimiter>,
    units: u32,
}

impl OwnedPermit {
    /// Units this permit holds.
    #[must_use]
    pub fn units(&self) -> u32 {
        self.units
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        self.limiter.release(self.units);
    }
}

impl Permit<'_> {
    /// Units this permit holds.
    #[must_use]
    pub fn units(&self) -> u32 {
        self.units
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.release(self.units);
    }
}
