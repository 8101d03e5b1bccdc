//! Async `push` and `pop` (feature `async`): futures over the same ring and
//! the same waiter counters as the blocking operations.
//!
//! A future that finds the queue full (or empty) takes [`Shared::lock`],
//! appends its `Waker` to the push (or pop) wait list, bumps the waiter
//! counter with `SeqCst`, issues a `SeqCst` fence and retries while it still
//! holds the lock: exactly the blocking operations' protocol, so the
//! argument in the module docs of `queue.rs` covers it, and a wake-up from
//! a blocking thread to an async waiter (or back) cannot be lost either.
//!
//! A wake-up removes the entry it wakes. So when a future is polled or
//! dropped it knows whether it was woken: its entry is gone.
//!
//! Cancel safety:
//! - a push future owns its item until the poll that moves it into the
//!   ring returns `Ready(Ok)`; dropped earlier, it drops the item, which
//!   never reaches the queue;
//! - a pop future takes an item only in the poll that returns it; dropped
//!   after a wake-up it never acted on, it passes the wake-up on (to one
//!   blocked thread and the oldest async waiter), so the item that caused
//!   it is not stranded.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use super::{fence, BoundedQueue, Ordering, WaitList};
use crate::error::{PopError, PushError};

impl WaitList {
    /// Appends a waiter; returns its id.
    fn register(&mut self, waker: &Waker) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.entries.push_back((id, waker.clone()));
        id
    }

    /// Refreshes the waker of entry `id`; `false` if the entry is gone
    /// (it was woken).
    fn refresh(&mut self, id: u64, waker: &Waker) -> bool {
        match self.entries.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Removes entry `id`; `false` if it was already gone (woken).
    fn remove(&mut self, id: u64) -> bool {
        match self.entries.iter().position(|(i, _)| *i == id) {
            Some(at) => {
                self.entries.remove(at);
                true
            }
            None => false,
        }
    }
}

impl<T> BoundedQueue<T> {
    /// Pushes `value`, waiting (asynchronously) for room.
    ///
    /// The future is cancel-safe: until the poll that returns `Ready(Ok)`
    /// it owns `value`; dropping it earlier drops `value`, which is then
    /// never delivered. Blocking and async operations can be mixed freely
    /// on one queue. Runtime-agnostic: it only uses the task's `Waker`.
    ///
    /// # Errors
    ///
    /// The future resolves to [`PushError::Closed`] (with `value`) if the
    /// queue is or becomes closed before the item goes in. Never `Full`.
    ///
    /// # Panics
    ///
    /// Polling the future again after it returned `Ready` panics.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let q = sysblocks_task_queue::BoundedQueue::new(1).unwrap();
    /// q.push_async("video-1").await.unwrap();
    /// assert_eq!(q.pop_async().await, Some("video-1"));
    /// # });
    /// ```
    pub fn push_async(&self, value: T) -> PushFuture<'_, T> {
        PushFuture {
            queue: self,
            value: Some(value),
            id: None,
        }
    }

    /// Pops the oldest item, waiting (asynchronously) for one; resolves to
    /// `None` once the queue is closed and drained.
    ///
    /// The future is cancel-safe: it takes an item only in the poll that
    /// returns it, and if it is dropped after being woken it hands the
    /// wake-up to another waiter, so no item waits while a waiter sleeps.
    pub fn pop_async(&self) -> PopFuture<'_, T> {
        PopFuture {
            queue: self,
            id: None,
        }
    }

    /// One poll of a push of `*value` (taken out when it goes in or is
    /// handed back), registered as `*id` while it waits: the body of
    /// [`PushFuture`], shared with the `Sink` adapter.
    pub(super) fn poll_push(
        &self,
        value: &mut Option<T>,
        id: &mut Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PushError<T>>> {
        let q = self;
        let s = &*q.shared;
        let mut item = value.take().expect("PushFuture polled after completion");
        if id.is_none() {
            match q.push_inner(item) {
                Ok(()) => {
                    q.wake_consumer();
                    return Poll::Ready(Ok(()));
                }
                Err(PushError::Full(v)) => item = v,
                Err(closed) => return Poll::Ready(Err(closed)),
            }
        }
        let mut guard = s.lock.lock();
        let registered = match *id {
            Some(i) => guard.push.refresh(i, cx.waker()),
            None => false,
        };
        if !registered {
            // First wait, or woken since the last poll: (re)join the list.
            *id = Some(guard.push.register(cx.waker()));
            s.push_waiters.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        match q.push_inner(item) {
            Err(PushError::Full(v)) => {
                *value = Some(v);
                Poll::Pending
            }
            result => {
                if let Some(i) = id.take() {
                    if guard.push.remove(i) {
                        s.push_waiters.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                drop(guard);
                if result.is_ok() {
                    q.wake_consumer();
                }
                Poll::Ready(result)
            }
        }
    }

    /// Ends the wait of a push registered as `*id` that will not be polled
    /// again, passing on a wake-up it got and will not use.
    pub(super) fn cancel_push(&self, id: &mut Option<u64>) {
        if let Some(i) = id.take() {
            let s = &*self.shared;
            let mut guard = s.lock.lock();
            if guard.push.remove(i) {
                s.push_waiters.fetch_sub(1, Ordering::Relaxed);
            } else {
                // Woken for room we will not use: hand it on.
                drop(guard);
                self.pass_on_push_wakeup();
            }
        }
    }

    /// One poll of a pop registered as `*id` while it waits: the body of
    /// [`PopFuture`], shared with the `Stream` adapter.
    pub(super) fn poll_pop(&self, id: &mut Option<u64>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let q = self;
        let s = &*q.shared;
        if id.is_none() {
            match q.pop_inner() {
                Ok(v) => {
                    q.wake_producer();
                    return Poll::Ready(Some(v));
                }
                Err(PopError::Closed) => return Poll::Ready(None),
                Err(PopError::Empty) => {}
            }
        }
        let mut guard = s.lock.lock();
        let registered = match *id {
            Some(i) => guard.pop.refresh(i, cx.waker()),
            None => false,
        };
        if !registered {
            *id = Some(guard.pop.register(cx.waker()));
            s.pop_waiters.fetch_add(1, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        match q.pop_inner() {
            Err(PopError::Empty) => Poll::Pending,
            result => {
                if let Some(i) = id.take() {
                    if guard.pop.remove(i) {
                        s.pop_waiters.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                drop(guard);
                let item = result.ok();
                if item.is_some() {
                    q.wake_producer();
                }
                Poll::Ready(item)
            }
        }
    }

    /// Ends the wait of a pop registered as `*id`, passing on a wake-up it
    /// got and will not use, so the item that caused it is not stranded.
    pub(super) fn cancel_pop(&self, id: &mut Option<u64>) {
        if let Some(i) = id.take() {
            let s = &*self.shared;
            let mut guard = s.lock.lock();
            if guard.pop.remove(i) {
                s.pop_waiters.fetch_sub(1, Ordering::Relaxed);
            } else {
                // Woken for an item we will not take: hand it on.
                drop(guard);
                self.pass_on_pop_wakeup();
            }
        }
    }

    /// Wakes one blocked producer and the oldest async one, for a waiter
    /// that got a wake-up and will not use it.
    fn pass_on_push_wakeup(&self) {
        self.wake_producer();
    }

    /// The same for consumers.
    fn pass_on_pop_wakeup(&self) {
        self.wake_consumer();
    }
}

/// The future of [`BoundedQueue::push_async`].
#[must_use = "futures do nothing unless polled; dropping it drops the item"]
pub struct PushFuture<'a, T> {
    queue: &'a BoundedQueue<T>,
    /// `None` once the item went in (or was handed back).
    value: Option<T>,
    /// The wait-list entry, while registered or woken-but-not-yet-polled.
    id: Option<u64>,
}

// The item is moved out and back, never pinned.
impl<T> Unpin for PushFuture<'_, T> {}

impl<T> std::fmt::Debug for PushFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushFuture")
            .field("pending", &self.value.is_some())
            .field("registered", &self.id.is_some())
            .finish()
    }
}

impl<T> Future for PushFuture<'_, T> {
    type Output = Result<(), PushError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.queue.poll_push(&mut this.value, &mut this.id, cx)
    }
}

impl<T> Drop for PushFuture<'_, T> {
    fn drop(&mut self) {
        // The item (if still here) drops with the future: it never went in.
        self.queue.cancel_push(&mut self.id);
    }
}

/// The future of [`BoundedQueue::pop_async`].
#[must_use = "futures do nothing unless polled"]
pub struct PopFuture<'a, T> {
    queue: &'a BoundedQueue<T>,
    /// The wait-list entry, while registered or woken-but-not-yet-polled.
    id: Option<u64>,
}

impl<T> std::fmt::Debug for PopFuture<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PopFuture")
            .field("registered", &self.id.is_some())
            .finish()
    }
}

impl<T> Future for PopFuture<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        this.queue.poll_pop(&mut this.id, cx)
    }
}

impl<T> Drop for PopFuture<'_, T> {
    fn drop(&mut self) {
        self.queue.cancel_pop(&mut self.id);
    }
}
