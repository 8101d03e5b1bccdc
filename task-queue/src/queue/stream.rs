//! `Stream` and `Sink` adapters (feature `async`): [`RecvStream`] over a
//! [`Receiver`] and [`SendSink`] over a [`Sender`]. They run the same
//! polls as [`PopFuture`](super::PopFuture) and
//! [`PushFuture`](super::PushFuture), so the wake-up argument of
//! `future.rs` covers them, and they need no particular runtime.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;

use super::{Receiver, Sender};
use crate::error::PushError;

impl<T> Receiver<T> {
    /// This receiver as a [`Stream`] of the items, which ends once the
    /// queue is closed and drained (e.g. after the last sender's drop).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures_core::Stream;
    /// use sysblocks_task_queue::BoundedQueue;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (tx, rx) = BoundedQueue::channel(2).unwrap();
    /// tx.push(1).unwrap();
    /// drop(tx);
    /// let mut stream = std::pin::pin!(rx.into_stream());
    /// let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
    /// assert_eq!(next.await, Some(1));
    /// let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
    /// assert_eq!(next.await, None);
    /// # });
    /// ```
    pub fn into_stream(self) -> RecvStream<T> {
        RecvStream {
            receiver: self,
            id: None,
        }
    }
}

impl<T> Sender<T> {
    /// This sender as a [`Sink`] of items. It holds at most one item that
    /// waits for room (`poll_ready` and `poll_flush` push it); `poll_close`
    /// pushes it and then drops this sender, which closes the queue if it
    /// was the last one.
    pub fn into_sink(self) -> SendSink<T> {
        SendSink {
            sender: Some(self),
            pending: None,
            id: None,
        }
    }
}

/// The [`Stream`] of [`Receiver::into_stream`].
#[must_use = "streams do nothing unless polled"]
pub struct RecvStream<T> {
    receiver: Receiver<T>,
    /// The pop wait-list entry while registered (see `future.rs`).
    id: Option<u64>,
}

impl<T> RecvStream<T> {
    /// The receiver back (a wait in progress is given up).
    pub fn into_inner(mut self) -> Receiver<T> {
        self.receiver.0.cancel_pop(&mut self.id);
        self.receiver.clone()
    }
}

impl<T> Unpin for RecvStream<T> {}

impl<T> fmt::Debug for RecvStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvStream")
            .field("receiver", &self.receiver)
            .field("registered", &self.id.is_some())
            .finish()
    }
}

impl<T> Stream for RecvStream<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        this.receiver.0.poll_pop(&mut this.id, cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.receiver.len(), None)
    }
}

impl<T> Drop for RecvStream<T> {
    fn drop(&mut self) {
        self.receiver.0.cancel_pop(&mut self.id);
    }
}

/// The [`Sink`] of [`Sender::into_sink`]. Its error hands the item back:
/// [`PushError::Closed`] once the queue is closed (or after `poll_close`),
/// [`PushError::Full`] for a `start_send` without a `poll_ready` that
/// returned `Ready(Ok)` first.
#[must_use = "sinks do nothing unless polled"]
pub struct SendSink<T> {
    /// `None` after `poll_close`.
    sender: Option<Sender<T>>,
    /// The item `start_send` took that is not in the queue yet.
    pending: Option<T>,
    /// The push wait-list entry while registered (see `future.rs`).
    id: Option<u64>,
}

impl<T> Unpin for SendSink<T> {}

impl<T> fmt::Debug for SendSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSink")
            .field("sender", &self.sender)
            .field("pending", &self.pending.is_some())
            .field("registered", &self.id.is_some())
            .finish()
    }
}

impl<T> SendSink<T> {
    /// Pushes the pending item, if any.
    fn flush_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), PushError<T>>> {
        let Some(sender) = &self.sender else {
            return match self.pending.take() {
                Some(item) => Poll::Ready(Err(PushError::Closed(item))),
                None => Poll::Ready(Ok(())),
            };
        };
        if self.pending.is_none() {
            return Poll::Ready(Ok(()));
        }
        sender.0.poll_push(&mut self.pending, &mut self.id, cx)
    }
}

impl<T> Sink<T> for SendSink<T> {
    type Error = PushError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().flush_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.sender.is_none() {
            return Err(PushError::Closed(item));
        }
        if this.pending.is_some() {
            return Err(PushError::Full(item));
        }
        this.pending = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().flush_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        let flushed = std::task::ready!(this.flush_pending(cx));
        if let Some(sender) = this.sender.take() {
            sender.0.cancel_push(&mut this.id);
        }
        Poll::Ready(flushed)
    }
}

impl<T> Drop for SendSink<T> {
    fn drop(&mut self) {
        if let Some(sender) = &self.sender {
            sender.0.cancel_push(&mut self.id);
        }
    }
}
