//! Single flight: the waiters of one in-progress load. Blocking callers
//! wait on a condition variable; futures (the `async` feature) register a
//! waker and never block.

#[cfg(feature = "async")]
use std::any::Any;
use std::task::Waker;
#[cfg(feature = "async")]
use std::task::{Context, Poll};

#[cfg(feature = "async")]
use crate::sync::StdArc;
use crate::sync::{thread, AtomicBool, Condvar, Mutex, Ordering};

/// A loader's error as waiters of any type see it; a waiter expecting this
/// error type takes it with `downcast`.
#[cfg(feature = "async")]
pub(crate) type SharedError = StdArc<dyn Any + Send + Sync>;

/// How a load ended, as its waiters see it.
pub(crate) enum Outcome<V> {
    /// The loader's value.
    Done(V),
    /// The loader panicked, was cancelled, or failed with an error that is
    /// not shared: retry.
    Failed,
    /// The loader of a `try_get_with` failed with this error: waiters of
    /// the same error type return it, the others retry.
    #[cfg(feature = "async")]
    Error(SharedError),
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Done(v) => Outcome::Done(v.clone()),
            Outcome::Failed => Outcome::Failed,
            #[cfg(feature = "async")]
            Outcome::Error(e) => Outcome::Error(StdArc::clone(e)),
        }
    }
}

struct State<V> {
    outcome: Option<Outcome<V>>,
    /// Wakers of waiting futures, by the slot each waiter was given.
    wakers: Vec<Waker>,
}

/// One load in progress. Its leader `finish`es it exactly once (the leader
/// guard also does when dropped); any number of callers `wait` or
/// `poll_wait`.
pub(crate) struct Flight<V> {
    state: Mutex<State<V>>,
    done: Condvar,
    /// Set (under the shard lock, when the flight leaves the shard's map)
    /// when the key was written or removed while the load ran: its value
    /// must not be stored.
    invalidated: AtomicBool,
    /// The thread running a blocking load: if it asks for the same key
    /// again (its loader re-enters the cache), waiting would wait on
    /// itself. `None` for a future's load, which has no fixed thread.
    loader: Option<thread::ThreadId>,
}

impl<V> Flight<V> {
    /// A flight loaded by the calling thread.
    pub(crate) fn new() -> Self {
        Self::with_loader(Some(thread::current().id()))
    }

    /// A flight loaded by a future.
    #[cfg(feature = "async")]
    pub(crate) fn new_async() -> Self {
        Self::with_loader(None)
    }

    fn with_loader(loader: Option<thread::ThreadId>) -> Self {
        Self {
            state: Mutex::new(State {
                outcome: None,
                wakers: Vec::new(),
            }),
            done: Condvar::new(),
            invalidated: AtomicBool::new(false),
            loader,
        }
    }

    /// Ends the load: wakes every waiting future and thread. The wakers
    /// run after the lock is released.
    pub(crate) fn finish(&self, outcome: Outcome<V>) {
        let wakers = {
            let mut s = self.state.lock();
            s.outcome = Some(outcome);
            std::mem::take(&mut s.wakers)
        };
        self.done.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    pub(crate) fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_invalidated(&self) -> bool {
        self.invalidated.load(Ordering::Relaxed)
    }

    /// Whether the calling thread is the one running this (blocking) load.
    pub(crate) fn is_loading_here(&self) -> bool {
        self.loader == Some(thread::current().id())
    }
}

impl<V: Clone> Flight<V> {
    /// Blocks until the load ends.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut g = self.state.lock();
        loop {
            match &g.outcome {
                Some(o) => return o.clone(),
                None => self.done.wait(&mut g),
            }
        }
    }

    /// The outcome if the load has ended; otherwise registers the task's
    /// waker (in `slot`, replaced on later polls, so a waiter polled many
    /// times holds one) and returns `Pending`.
    #[cfg(feature = "async")]
    pub(crate) fn poll_wait(&self, cx: &Context<'_>, slot: &mut Option<usize>) -> Poll<Outcome<V>> {
        let mut g = self.state.lock();
        if let Some(o) = &g.outcome {
            return Poll::Ready(o.clone());
        }
        match *slot {
            Some(i) if i < g.wakers.len() => {
                if !g.wakers[i].will_wake(cx.waker()) {
                    g.wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                *slot = Some(g.wakers.len());
                g.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}
