//! Split handles: [`Sender`] and [`Receiver`], and the iterators.
//!
//! A [`BoundedQueue`] handle can push and pop. Split into senders and
//! receivers, a queue tells consumers when every producer is gone: dropping
//! the last handle that can push (a `Sender` or a `BoundedQueue`) closes
//! the queue, so consumers drain what is left and then see it closed, as
//! with crossbeam-channel's disconnection. Dropping the last handle that
//! can pop closes it too: pushes then fail with [`PushError::Closed`] and
//! hand the item back, instead of filling a queue nobody reads.

use std::fmt;
use std::time::Duration;

use super::{BoundedQueue, Ordering};
use crate::error::{BuildError, PopError, PushError};

/// The handle counts in `Shared::senders`.
pub(super) const SEND: u8 = 1;
/// The handle counts in `Shared::receivers`.
pub(super) const RECV: u8 = 2;

impl<T> BoundedQueue<T> {
    /// Another handle on the same queue, counting as `role`.
    pub(super) fn with_role(&self, role: u8) -> Self {
        let s = &*self.shared;
        if role & SEND != 0 {
            s.senders.fetch_add(1, Ordering::Relaxed);
        }
        if role & RECV != 0 {
            s.receivers.fetch_add(1, Ordering::Relaxed);
        }
        BoundedQueue {
            shared: crate::sync::Arc::clone(&self.shared),
            role,
        }
    }
}

impl<T> Drop for BoundedQueue<T> {
    /// The last handle of a kind closes the queue. The count can only rise
    /// from a live handle of the same kind (a clone, or
    /// [`BoundedQueue::sender`] on a `BoundedQueue`, which is a sender
    /// itself), so once it reaches zero it stays there. `AcqRel`: the last
    /// decrement sees every other handle's earlier operations, and `close`
    /// is `SeqCst` on `tail`, which pops read.
    fn drop(&mut self) {
        let s = &*self.shared;
        let last_sender = self.role & SEND != 0 && s.senders.fetch_sub(1, Ordering::AcqRel) == 1;
        let last_receiver =
            self.role & RECV != 0 && s.receivers.fetch_sub(1, Ordering::AcqRel) == 1;
        if last_sender || last_receiver {
            self.close();
        }
    }
}

impl<T> BoundedQueue<T> {
    /// A new queue of `capacity`, as one [`Sender`] and one [`Receiver`].
    ///
    /// # Errors
    ///
    /// As [`BoundedQueue::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sysblocks_task_queue::BoundedQueue;
    ///
    /// let (tx, rx) = BoundedQueue::channel(4).unwrap();
    /// let producer = std::thread::spawn(move || {
    ///     for i in 0..10 {
    ///         tx.push(i).unwrap();
    ///     }
    ///     // `tx` drops here: the last sender is gone.
    /// });
    /// // The iterator ends once the queue is drained and closed.
    /// let got: Vec<i32> = rx.iter().collect();
    /// producer.join().unwrap();
    /// assert_eq!(got, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn channel(capacity: usize) -> Result<(Sender<T>, Receiver<T>), BuildError> {
        Ok(Self::new(capacity)?.split())
    }

    /// Turns this handle into a [`Sender`] and a [`Receiver`] on the same
    /// queue (this handle's counts pass to them).
    #[must_use]
    pub fn split(self) -> (Sender<T>, Receiver<T>) {
        (self.sender(), self.receiver())
    }

    /// A new [`Sender`] on this queue.
    #[must_use]
    pub fn sender(&self) -> Sender<T> {
        Sender(self.with_role(SEND))
    }

    /// A new [`Receiver`] on this queue.
    #[must_use]
    pub fn receiver(&self) -> Receiver<T> {
        Receiver(self.with_role(RECV))
    }

    /// A blocking iterator: each `next` is a [`BoundedQueue::pop`], and the
    /// iterator ends once the queue is closed and drained. This handle is a
    /// sender itself, so the queue closes only by [`BoundedQueue::close`]
    /// or after this handle is gone: to iterate until the producers are
    /// done, iterate a [`Receiver`] instead.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    /// A non-blocking iterator over the items queued now (each `next` is a
    /// [`BoundedQueue::try_pop`]); it ends at the first empty look.
    pub fn drain(&self) -> Drain<'_, T> {
        Drain { queue: self }
    }
}

/// The producing half of a [`BoundedQueue`]: it pushes and closes, and the
/// queue closes when the last sender (and the last `BoundedQueue` handle)
/// is dropped. A cheap `Clone` handle.
pub struct Sender<T>(pub(super) BoundedQueue<T>);

/// The consuming half of a [`BoundedQueue`]: it pops, and iterates until
/// the queue is closed and drained. A cheap `Clone` handle; the items are
/// shared out among the receivers (each item goes to one of them).
pub struct Receiver<T>(pub(super) BoundedQueue<T>);

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sender").field(&self.0).finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Receiver").field(&self.0).finish()
    }
}

/// The operations both halves share.
macro_rules! common {
    () => {
        /// The most items the queue holds.
        #[must_use]
        pub fn capacity(&self) -> usize {
            self.0.capacity()
        }

        /// How many items the queue holds now (a snapshot).
        #[must_use]
        pub fn len(&self) -> usize {
            self.0.len()
        }

        /// Whether the queue holds no item now.
        #[must_use]
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        /// Whether the queue is closed: by a `close` call, or because
        /// every sender or every receiver is gone.
        #[must_use]
        pub fn is_closed(&self) -> bool {
            self.0.is_closed()
        }

        /// Closes the queue at once, as [`BoundedQueue::close`].
        pub fn close(&self) -> bool {
            self.0.close()
        }
    };
}

impl<T> Sender<T> {
    common!();

    /// As [`BoundedQueue::try_push`].
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] or [`PushError::Closed`], with `value`.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        self.0.try_push(value)
    }

    /// As [`BoundedQueue::push`]: waits for room.
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] (with `value`) if the queue is or becomes
    /// closed, e.g. because every receiver is gone.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.0.push(value)
    }

    /// As [`BoundedQueue::push_timeout`].
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] when the time is up, [`PushError::Closed`] if
    /// the queue is closed; both with `value`.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.0.push_timeout(value, timeout)
    }

    /// As [`BoundedQueue::push_async`].
    #[cfg(any(feature = "async", sysblocks_loom))]
    pub fn push_async(&self, value: T) -> super::PushFuture<'_, T> {
        self.0.push_async(value)
    }
}

impl<T> Receiver<T> {
    common!();

    /// As [`BoundedQueue::try_pop`].
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if the queue is empty and open,
    /// [`PopError::Closed`] if it is empty and closed.
    pub fn try_pop(&self) -> Result<T, PopError> {
        self.0.try_pop()
    }

    /// As [`BoundedQueue::pop`]: waits for an item; `None` once the queue
    /// is closed (explicitly, or by the last sender's drop) and drained.
    #[must_use = "a popped item is lost if ignored"]
    pub fn pop(&self) -> Option<T> {
        self.0.pop()
    }

    /// As [`BoundedQueue::pop_timeout`].
    ///
    /// # Errors
    ///
    /// [`PopError::Empty`] if no item came in time, [`PopError::Closed`] if
    /// the queue is closed and drained.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        self.0.pop_timeout(timeout)
    }

    /// As [`BoundedQueue::pop_async`].
    #[cfg(any(feature = "async", sysblocks_loom))]
    pub fn pop_async(&self) -> super::PopFuture<'_, T> {
        self.0.pop_async()
    }

    /// A blocking iterator that ends once the queue is closed and drained,
    /// e.g. after the last sender was dropped.
    pub fn iter(&self) -> Iter<'_, T> {
        self.0.iter()
    }

    /// A non-blocking iterator over the items queued now; it ends at the
    /// first empty look.
    pub fn drain(&self) -> Drain<'_, T> {
        self.0.drain()
    }
}

/// The iterator of [`BoundedQueue::iter`] and [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a BoundedQueue<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.pop()
    }
}

/// The iterator of [`BoundedQueue::drain`] and [`Receiver::drain`].
#[derive(Debug)]
pub struct Drain<'a, T> {
    queue: &'a BoundedQueue<T>,
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.try_pop().ok()
    }
}

/// The owning blocking iterator of a [`Receiver`].
#[derive(Debug)]
pub struct IntoIter<T> {
    receiver: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.receiver.pop()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter { receiver: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
