//! The extension point between [`WorkerPool`](crate::WorkerPool) and where
//! tasks live: [`Backend`] (shared by a pool) and [`Session`] (one per
//! worker thread). The embedded [`TaskQueue`] is the single-process
//! backend; `RedisQueue` (feature `redis`) is the one many processes share.
//! A [`Handler`](crate::Handler) sees only [`Delivery`]s, so the same
//! handler and pool code runs on either.

use std::fmt;
use std::time::Duration;

use crate::error::{BuildError, TaskError};
use crate::jobs::{Delivery, Outcome, TaskQueue};
use sysblocks_clock::{MonotonicClock, SharedClock};

use crate::sync::{AtomicBool, StdArc};
use crate::task::TaskId;

/// Where a [`WorkerPool`](crate::WorkerPool) gets its tasks.
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A session for one worker thread (for a remote backend, its own
    /// connection and consumer name).
    ///
    /// # Errors
    ///
    /// [`BuildError`] if the session cannot be set up.
    fn session(&self, worker: usize) -> Result<Box<dyn Session>, BuildError>;

    /// The lease a delivery gets: the pool extends the leases of running
    /// handlers every third of it (if the backend supports extension).
    fn lease(&self) -> Duration;

    /// The clock that times the pool's heartbeat and handler timeout: the
    /// one the backend times its leases with. Default a
    /// [`MonotonicClock`].
    fn clock(&self) -> SharedClock {
        StdArc::new(MonotonicClock::new())
    }

    /// Stops accepting submissions through this handle, as part of the
    /// pool's shutdown. A backend shared with other processes may ignore it.
    fn close(&self);

    /// Wakes workers waiting for a task so that they see their pool's stop
    /// flag (set before this call).
    fn wake_workers(&self);

    /// Tasks accepted but not delivered yet (ready or delayed), as far as
    /// the backend can tell.
    fn pending(&self) -> usize;

    /// Dead letters held.
    fn dead_letters(&self) -> usize;
}

/// One worker's view of a [`Backend`].
pub trait Session: Send {
    /// Leases the most urgent ready task, waiting up to `wait`; returns
    /// `None` at the timeout or at once when `stop` is set.
    fn lease(&mut self, wait: Duration, stop: &AtomicBool) -> Option<Delivery>;

    /// Reports a delivery's result (see [`TaskQueue::complete`]).
    fn complete(&mut self, delivery: &Delivery, result: Result<(), TaskError>) -> Outcome;

    /// Extends the lease of a running delivery by the backend's lease from
    /// now (a heartbeat). `false` if the lease was lost or the backend does
    /// not extend leases.
    fn extend(&mut self, delivery: &Delivery) -> bool;

    /// Hands back deliveries this session leased but did not start, so
    /// that others take them at once (graceful shutdown). Returns their ids.
    fn release_unstarted(&mut self) -> Vec<TaskId>;
}

impl Backend for TaskQueue {
    fn session(&self, _worker: usize) -> Result<Box<dyn Session>, BuildError> {
        Ok(Box::new(self.clone()))
    }

    fn lease(&self) -> Duration {
        self.lease_duration()
    }

    fn clock(&self) -> SharedClock {
        TaskQueue::clock(self)
    }

    fn close(&self) {
        TaskQueue::close(self);
    }

    fn wake_workers(&self) {
        TaskQueue::wake_workers(self);
    }

    fn pending(&self) -> usize {
        self.len().saturating_sub(self.leased().len())
    }

    fn dead_letters(&self) -> usize {
        TaskQueue::dead_letters(self).len()
    }
}

impl Session for TaskQueue {
    fn lease(&mut self, wait: Duration, stop: &AtomicBool) -> Option<Delivery> {
        self.lease_unless_stopped(wait, Some(stop))
    }

    fn complete(&mut self, delivery: &Delivery, result: Result<(), TaskError>) -> Outcome {
        TaskQueue::complete(self, delivery, result)
    }

    fn extend(&mut self, delivery: &Delivery) -> bool {
        self.extend_lease(delivery)
    }

    fn release_unstarted(&mut self) -> Vec<TaskId> {
        // Deliveries are handed out one at a time: nothing is held unstarted.
        Vec::new()
    }
}
