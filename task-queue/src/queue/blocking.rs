//! The blocking side of [`BoundedQueue`]: waking parked consumers and
//! producers after a push or pop, and the operations that wait (`push`,
//! `pop` and their timeouts): a few retries (spins, then yields), then
//! parking on a condition variable by the protocol described in
//! `queue.rs`, whose `SeqCst` argument covers the code here.

use std::time::{Duration, Instant};

#[cfg(not(sysblocks_loom))]
use super::{backoff, TRIES};
use super::{seqcst_load_fence, BoundedQueue};
use crate::error::{PopError, PushError};
use crate::sync::{fence, Ordering};

impl<T> BoundedQueue<T> {
    /// After a push: wakes one blocked consumer and the oldest async one.
    /// Waking one of each kind (rather than guessing which kind is still
    /// asleep: a notified thread may not have left the condition variable's
    /// count yet) costs a spurious wake-up at worst, never a lost one.
    pub(super) fn wake_consumer(&self) {
        let s = &*self.shared;
        seqcst_load_fence();
        if s.pop_waiters.load(Ordering::SeqCst) > 0 {
            let mut guard = s.lock.lock();
            s.not_empty.notify_one();
            let waker = guard.pop.pop_front();
            if waker.is_some() {
                s.pop_waiters.fetch_sub(1, Ordering::Relaxed);
            }
            drop(guard);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// After a pop: wakes one blocked producer and the oldest async one.
    pub(super) fn wake_producer(&self) {
        let s = &*self.shared;
        seqcst_load_fence();
        if s.push_waiters.load(Ordering::SeqCst) > 0 {
            let mut guard = s.lock.lock();
            s.not_full.notify_one();
            let waker = guard.push.pop_front();
            if waker.is_some() {
                s.push_waiters.fetch_sub(1, Ordering::Relaxed);
            }
            drop(guard);
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Pushes `value`, waiting for room as long as it takes.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] (with `value`) if the queue is or becomes
    /// closed before the item goes in. Never returns `Full`.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.push_until(value, None)
    }

    /// Pushes `value`, waiting for room at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if there is still no room when the time is up,
    /// [`PushError::Closed`] if the queue is or becomes closed; both hand
    /// `value` back.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        let deadline = Instant::now().checked_add(timeout);
        match deadline {
            Some(d) => self.push_until(value, Some(d)),
            None => self.push_until(value, None),
        }
    }

    fn push_until(&self, mut value: T, deadline: Option<Instant>) -> Result<(), PushError<T>> {
        let s = &*self.shared;
        #[cfg(not(sysblocks_loom))]
        for step in 0..TRIES {
            match self.try_push(value) {
                Err(PushError::Full(v)) => value = v,
                other => return other,
            }
            backoff(step);
        }
        loop {
            let mut guard = s.lock.lock();
            s.push_waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let result = self.push_inner(value);
            let result = match result {
                Err(PushError::Full(v)) => {
                    let timed_out = match deadline {
                        None => {
                            s.not_full.wait(&mut guard);
                            false
                        }
                        Some(d) => {
                            let now = Instant::now();
                            d <= now || s.not_full.wait_for(&mut guard, d - now).timed_out()
                        }
                    };
                    s.push_waiters.fetch_sub(1, Ordering::Relaxed);
                    drop(guard);
                    if timed_out {
                        // One last try after the deadline: the wake-up may
                        // have raced with the timeout.
                        return self.try_push(v);
                    }
                    value = v;
                    continue;
                }
                other => other,
            };
            s.push_waiters.fetch_sub(1, Ordering::Relaxed);
            drop(guard);
            if result.is_ok() {
                self.wake_consumer();
            }
            return result;
        }
    }

    /// Pops the oldest item, waiting for one as long as it takes. Returns
    /// `None` once the queue is closed and drained.
    #[must_use = "a popped item is lost if ignored"]
    pub fn pop(&self) -> Option<T> {
        self.pop_until(None).ok()
    }

    /// Pops the oldest item, waiting at most `timeout` for one.
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if no item came in time, [`PopError::Closed`] if
    /// the queue is closed and drained.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        match Instant::now().checked_add(timeout) {
            Some(d) => self.pop_until(Some(d)),
            None => self.pop_until(None),
        }
    }

    fn pop_until(&self, deadline: Option<Instant>) -> Result<T, PopError> {
        let s = &*self.shared;
        #[cfg(not(sysblocks_loom))]
        for step in 0..TRIES {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                other => return other,
            }
            backoff(step);
        }
        loop {
            let mut guard = s.lock.lock();
            s.pop_waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let result = self.pop_inner();
            if let Err(PopError::Empty) = result {
                let timed_out = match deadline {
                    None => {
                        s.not_empty.wait(&mut guard);
                        false
                    }
                    Some(d) => {
                        let now = Instant::now();
                        d <= now || s.not_empty.wait_for(&mut guard, d - now).timed_out()
                    }
                };
                s.pop_waiters.fetch_sub(1, Ordering::Relaxed);
                drop(guard);
                if timed_out {
                    return self.try_pop();
                }
                continue;
            }
            s.pop_waiters.fetch_sub(1, Ordering::Relaxed);
            drop(guard);
            if result.is_ok() {
                self.wake_producer();
            }
            return result;
        }
    }
}
