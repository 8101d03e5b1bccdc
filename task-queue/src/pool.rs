//! `WorkerPool`: N threads that lease tasks, run a `Handler`, and report.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::error::{BuildError, TaskError};
use crate::jobs::{Delivery, TaskQueue};
use crate::sync::{thread, Arc, AtomicBool, AtomicUsize, Ordering};
use crate::task::TaskId;

/// What a worker runs for each delivery. `Ok` completes the task; `Err`
/// (or a panic) fails the attempt.
pub trait Handler: Send + Sync + 'static {
    /// Runs one delivery.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] describing why the attempt failed.
    fn handle(&self, delivery: &Delivery) -> Result<(), TaskError>;
}

impl<F> Handler for F
where
    F: Fn(&Delivery) -> Result<(), TaskError> + Send + Sync + 'static,
{
    fn handle(&self, delivery: &Delivery) -> Result<(), TaskError> {
        self(delivery)
    }
}

/// What [`WorkerPool::shutdown`] left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Workers that stopped before the deadline.
    pub stopped_workers: usize,
    /// Workers still inside a handler at the deadline (left running,
    /// detached; their tasks keep their leases).
    pub busy_workers: usize,
    /// Tasks leased at the deadline: they run again after their lease
    /// expires (in this process, or after a restart with a durable store).
    pub in_flight: Vec<TaskId>,
    /// Tasks accepted but not yet delivered (ready or delayed), kept in the
    /// store for the next start.
    pub pending: usize,
    /// Dead letters in the queue.
    pub dead_letters: usize,
}

/// A pool of worker threads over a [`TaskQueue`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use sysblocks_task_queue::{Task, TaskError, TaskQueue, WorkerPool};
///
/// let q = TaskQueue::builder().build().unwrap();
/// let pool = WorkerPool::start(&q, 2, |d: &sysblocks_task_queue::Delivery| {
///     if d.payload().is_empty() { Err(TaskError::new("empty")) } else { Ok(()) }
/// })
/// .unwrap();
/// q.submit(Task::new("transcode")).unwrap();
/// while q.stats().completed < 1 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// let report = pool.shutdown(Duration::from_secs(1));
/// assert_eq!(report.busy_workers, 0);
/// assert_eq!(report.pending, 0);
/// ```
#[derive(Debug)]
pub struct WorkerPool {
    queue: TaskQueue,
    workers: usize,
    running: Arc<AtomicUsize>,
    /// This pool's stop flag: pools sharing a queue stop independently.
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl WorkerPool {
    /// The most workers one pool starts.
    pub const MAX_WORKERS: usize = 4096;

    /// Starts `workers` threads running `handler` on the queue's tasks.
    ///
    /// A handler that panics fails its attempt; the worker carries on.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `workers` is zero,
    /// [`BuildError::TooLarge`] if it exceeds [`WorkerPool::MAX_WORKERS`],
    /// and [`BuildError::Spawn`] if the system refuses a thread (the
    /// workers already started are stopped again).
    pub fn start<H: Handler>(
        queue: &TaskQueue,
        workers: usize,
        handler: H,
    ) -> Result<Self, BuildError> {
        if workers == 0 {
            return Err(BuildError::Zero { setting: "workers" });
        }
        if workers > Self::MAX_WORKERS {
            return Err(BuildError::TooLarge {
                setting: "workers",
                max: Self::MAX_WORKERS as u64,
            });
        }
        let handler = Arc::new(handler);
        let running = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut pool = Self {
            queue: queue.clone(),
            workers: 0,
            running: Arc::clone(&running),
            stop: Arc::clone(&stop),
            handles: Vec::with_capacity(workers),
        };
        for _ in 0..workers {
            let queue = queue.clone();
            let handler = Arc::clone(&handler);
            let running = Arc::clone(&running);
            let stop = Arc::clone(&stop);
            pool.running.fetch_add(1, Ordering::AcqRel);
            let spawned = thread::Builder::new()
                .name("task-queue-worker".into())
                .spawn(move || {
                    worker_loop(&queue, &*handler, &stop);
                    running.fetch_sub(1, Ordering::AcqRel);
                });
            match spawned {
                Ok(h) => {
                    pool.handles.push(h);
                    pool.workers += 1;
                }
                Err(e) => {
                    pool.running.fetch_sub(1, Ordering::AcqRel);
                    // Dropping the pool stops and joins the workers started.
                    drop(pool);
                    return Err(BuildError::Spawn {
                        setting: "workers",
                        detail: e.to_string(),
                    });
                }
            }
        }
        Ok(pool)
    }

    /// How many workers the pool started.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Tells this pool's workers (and no other pool's) to take no new task.
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.queue.wake_workers();
    }

    /// Graceful shutdown: the queue stops accepting tasks, workers take no
    /// new task, running handlers get until `deadline` (real time) to
    /// finish. Tasks not done stay in the store.
    #[must_use = "the report says what was left undone"]
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.queue.close();
        self.stop();
        let end = Instant::now().checked_add(deadline);
        while self.running.load(Ordering::Acquire) > 0 {
            match end {
                Some(end) if Instant::now() >= end => break,
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let busy = self.running.load(Ordering::Acquire);
        if busy == 0 {
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
        } else {
            // Detach: the busy workers finish their handler on their own.
            self.handles.clear();
        }
        let in_flight = self.queue.leased();
        let pending = self.queue.len().saturating_sub(in_flight.len());
        ShutdownReport {
            stopped_workers: self.workers - busy,
            busy_workers: busy,
            in_flight,
            pending,
            dead_letters: self.queue.dead_letters().len(),
        }
    }
}

impl Drop for WorkerPool {
    /// A pool dropped without [`WorkerPool::shutdown`] stops its workers
    /// and waits for their running handlers.
    fn drop(&mut self) {
        if self.handles.is_empty() {
            return;
        }
        self.stop();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker_loop(queue: &TaskQueue, handler: &dyn Handler, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(delivery) = queue.lease_unless_stopped(Duration::from_millis(100), Some(stop))
        else {
            continue;
        };
        let result = match catch_unwind(AssertUnwindSafe(|| handler.handle(&delivery))) {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic".to_owned());
                Err(TaskError::new(format!("handler panicked: {msg}")))
            }
        };
        let _ = queue.complete(&delivery, result);
    }
}
