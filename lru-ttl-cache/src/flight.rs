//! Single flight: the waiters of one in-progress load.

use crate::sync::{thread, AtomicBool, Condvar, Mutex, Ordering};

/// How a load ended, as its waiters see it.
pub(crate) enum Outcome<V> {
    /// The loader's value.
    Done(V),
    /// The loader failed or panicked: retry.
    Failed,
}

/// One load in progress. The loader's thread `finish`es it exactly once;
/// any number of threads `wait`.
pub(crate) struct Flight<V> {
    state: Mutex<Option<Outcome<V>>>,
    done: Condvar,
    /// Set (under the shard lock, when the flight leaves the shard's map)
    /// when the key was written or removed while the load ran: its value
    /// must not be stored.
    invalidated: AtomicBool,
    /// The thread running the load: if it asks for the same key again (its
    /// loader re-enters the cache), waiting would wait on itself.
    loader: thread::ThreadId,
}

impl<V: Clone> Flight<V> {
    /// A flight loaded by the calling thread.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(None),
            done: Condvar::new(),
            invalidated: AtomicBool::new(false),
            loader: thread::current().id(),
        }
    }
}

impl<V> Flight<V> {
    pub(crate) fn finish(&self, outcome: Outcome<V>) {
        *self.state.lock() = Some(outcome);
        self.done.notify_all();
    }

    pub(crate) fn invalidate(&self) {
        self.invalidated.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_invalidated(&self) -> bool {
        self.invalidated.load(Ordering::Relaxed)
    }

    /// Whether the calling thread is the one running this load.
    pub(crate) fn is_loading_here(&self) -> bool {
        self.loader == thread::current().id()
    }
}

impl<V: Clone> Flight<V> {
    /// Blocks until the load ends.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut g = self.state.lock();
        loop {
            match &*g {
                Some(Outcome::Done(v)) => return Outcome::Done(v.clone()),
                Some(Outcome::Failed) => return Outcome::Failed,
                None => self.done.wait(&mut g),
            }
        }
    }
}
