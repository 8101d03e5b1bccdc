//! `WorkerPool`: N threads that lease tasks from a [`Backend`], run a
//! `Handler`, and report; a watcher thread extends the leases of running
//! handlers (a heartbeat) and fails the ones that overrun the handler
//! timeout.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use sysblocks_clock::{saturating_nanos, Clock};

use crate::backend::{Backend, Session};
use crate::error::{BuildError, TaskError};
use crate::jobs::Delivery;
use crate::sync::{thread, Arc, AtomicBool, AtomicUsize, Mutex, Ordering, StdArc};
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
    /// Tasks the workers had leased but not started, handed back to the
    /// backend so that other workers take them at once.
    pub released: Vec<TaskId>,
    /// Tasks accepted but not yet delivered (ready or delayed), kept in the
    /// store for the next start.
    pub pending: usize,
    /// Dead letters in the queue.
    pub dead_letters: usize,
}

/// A pool of worker threads over a [`Backend`]: the embedded
/// [`TaskQueue`](crate::TaskQueue), or `RedisQueue` (feature `redis`),
/// which many processes share. The same handler runs on either.
///
/// While a handler runs, a watcher thread extends its lease every third of
/// the backend's lease (a heartbeat), so a long task is not redelivered
/// while its worker lives; a worker that dies stops the heartbeat and the
/// task is redelivered after one lease. With a handler timeout
/// ([`WorkerPool::start_with_timeout`]) a handler that runs longer fails
/// its attempt (retried with backoff, or dead-lettered) and loses the
/// heartbeat; its late result is then stale.
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
pub struct WorkerPool {
    backend: StdArc<dyn Backend>,
    workers: usize,
    running: Arc<AtomicUsize>,
    /// This pool's stop flag: pools sharing a queue stop independently.
    stop: Arc<AtomicBool>,
    /// What each worker runs now, for the watcher and the report.
    slots: Arc<Slots>,
    /// Ids the workers released at shutdown.
    released: Arc<Mutex<Vec<TaskId>>>,
    handles: Vec<thread::JoinHandle<()>>,
    watcher: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("backend", &self.backend)
            .field("workers", &self.workers)
            .field("running", &self.running.load(Ordering::Relaxed))
            .finish()
    }
}

/// A running handler: its delivery, when it started (backend clock
/// nanoseconds), and whether the watcher already failed it for overrunning
/// the handler timeout.
struct Running {
    delivery: Delivery,
    started: u64,
    timed_out: bool,
}

/// One slot per worker.
type Slots = Vec<Mutex<Option<Running>>>;

impl WorkerPool {
    /// The most workers one pool starts.
    pub const MAX_WORKERS: usize = 4096;

    /// Starts `workers` threads running `handler` on the backend's tasks,
    /// without a handler timeout.
    ///
    /// A handler that panics fails its attempt; the worker carries on.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] if `workers` is zero,
    /// [`BuildError::TooLarge`] if it exceeds [`WorkerPool::MAX_WORKERS`],
    /// [`BuildError::Spawn`] if the system refuses a thread (the workers
    /// already started are stopped again), and the backend's error if it
    /// cannot open a worker's session.
    pub fn start<B: Backend + Clone, H: Handler>(
        backend: &B,
        workers: usize,
        handler: H,
    ) -> Result<Self, BuildError> {
        Self::start_inner(StdArc::new(backend.clone()), workers, None, handler)
    }

    /// [`WorkerPool::start`] with a handler timeout: a handler still running
    /// `timeout` after it started fails its attempt (the pool cannot stop
    /// the thread; its eventual result is stale). The timeout and the
    /// heartbeat run on the backend's clock ([`Backend::clock`]), the one
    /// its leases follow: a [`TaskQueue`](crate::TaskQueue)'s clock (so a
    /// test's manual clock drives them too), real time for `RedisQueue`.
    ///
    /// # Errors
    ///
    /// As [`WorkerPool::start`], and [`BuildError::Zero`] for a zero
    /// `timeout`.
    pub fn start_with_timeout<B: Backend + Clone, H: Handler>(
        backend: &B,
        workers: usize,
        timeout: Duration,
        handler: H,
    ) -> Result<Self, BuildError> {
        if timeout.is_zero() {
            return Err(BuildError::Zero {
                setting: "handler timeout",
            });
        }
        Self::start_inner(
            StdArc::new(backend.clone()),
            workers,
            Some(timeout),
            handler,
        )
    }

    fn start_inner<H: Handler>(
        backend: StdArc<dyn Backend>,
        workers: usize,
        timeout: Option<Duration>,
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
        let clock = backend.clock();
        let mut sessions = Vec::with_capacity(workers);
        for i in 0..workers {
            sessions.push(backend.session(i)?);
        }
        let watch_session = backend.session(workers)?;
        let handler = Arc::new(handler);
        let running = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let slots: Arc<Slots> = Arc::new((0..workers).map(|_| Mutex::new(None)).collect());
        let mut pool = Self {
            backend: StdArc::clone(&backend),
            workers: 0,
            running: Arc::clone(&running),
            stop: Arc::clone(&stop),
            slots: Arc::clone(&slots),
            released: Arc::new(Mutex::new(Vec::new())),
            handles: Vec::with_capacity(workers),
            watcher: None,
        };
        for (index, mut session) in sessions.into_iter().enumerate() {
            let handler = Arc::clone(&handler);
            let running = Arc::clone(&running);
            let stop = Arc::clone(&stop);
            let slots = Arc::clone(&slots);
            let released = Arc::clone(&pool.released);
            let clock = StdArc::clone(&clock);
            pool.running.fetch_add(1, Ordering::AcqRel);
            let spawned = thread::Builder::new()
                .name("task-queue-worker".into())
                .spawn(move || {
                    worker_loop(&mut *session, &*handler, &*clock, &stop, &slots[index]);
                    released.lock().extend(session.release_unstarted());
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
        let lease = backend.lease();
        let watcher = {
            let stop = Arc::clone(&stop);
            let slots = Arc::clone(&slots);
            let running = Arc::clone(&running);
            thread::Builder::new()
                .name("task-queue-watcher".into())
                .spawn(move || {
                    watch(
                        watch_session,
                        &*clock,
                        &slots,
                        &stop,
                        &running,
                        lease,
                        timeout,
                    );
                })
        };
        match watcher {
            Ok(h) => pool.watcher = Some(h),
            Err(e) => {
                drop(pool);
                return Err(BuildError::Spawn {
                    setting: "workers",
                    detail: e.to_string(),
                });
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
        self.backend.wake_workers();
    }

    /// Graceful shutdown: the backend stops accepting tasks through this
    /// process's handle, workers take no new task and hand back the ones
    /// they leased but did not start, and running handlers get until
    /// `deadline` (real time) to finish; their leases are extended until
    /// then. Tasks not done stay in the backend.
    #[must_use = "the report says what was left undone"]
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.backend.close();
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
        // The watcher stops once no worker runs; detached with busy ones.
        if busy == 0 {
            if let Some(w) = self.watcher.take() {
                let _ = w.join();
            }
        } else {
            self.watcher = None;
        }
        let mut in_flight: Vec<TaskId> = self
            .slots
            .iter()
            .filter_map(|s| s.lock().as_ref().map(|r| r.delivery.id()))
            .collect();
        in_flight.sort_unstable();
        let mut released = std::mem::take(&mut *self.released.lock());
        released.sort_unstable();
        ShutdownReport {
            stopped_workers: self.workers - busy,
            busy_workers: busy,
            in_flight,
            released,
            pending: self.backend.pending(),
            dead_letters: self.backend.dead_letters(),
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
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

fn worker_loop(
    session: &mut dyn Session,
    handler: &dyn Handler,
    clock: &dyn Clock,
    stop: &AtomicBool,
    slot: &Mutex<Option<Running>>,
) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let Some(delivery) = session.lease(Duration::from_millis(100), stop) else {
            continue;
        };
        *slot.lock() = Some(Running {
            delivery: delivery.clone(),
            started: clock.now_nanos(),
            timed_out: false,
        });
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
        // Clear the slot before completing: the watcher must not extend a
        // lease that is being given up.
        let timed_out = slot.lock().take().is_some_and(|r| r.timed_out);
        if timed_out {
            // The watcher failed this attempt already; a success still
            // completes the task (the retry it scheduled is a duplicate).
            if result.is_ok() {
                let _ = session.complete(&delivery, result);
            }
        } else {
            let _ = session.complete(&delivery, result);
        }
    }
}

/// The watcher: extends running handlers' leases every third of `lease`,
/// and fails the ones running longer than `timeout`. Stops when the pool
/// stops and no worker runs any more.
#[allow(clippy::too_many_arguments)]
fn watch(
    mut session: Box<dyn Session>,
    clock: &dyn Clock,
    slots: &Slots,
    stop: &AtomicBool,
    running: &AtomicUsize,
    lease: Duration,
    timeout: Option<Duration>,
) {
    let beat = (lease / 3).max(Duration::from_millis(1));
    let tick = timeout
        .map_or(beat, |t| beat.min(t / 4))
        .clamp(Duration::from_millis(1), Duration::from_millis(100));
    let beat_nanos = saturating_nanos(beat);
    let timeout_nanos = timeout.map(saturating_nanos);
    let mut last_beat = clock.now_nanos();
    loop {
        if stop.load(Ordering::Acquire) && running.load(Ordering::Acquire) == 0 {
            return;
        }
        // Real time between looks; the beat and the timeout follow the
        // backend's clock (a test's manual clock moves without waking us).
        std::thread::sleep(tick);
        let now = clock.now_nanos();
        let due_beat = now.saturating_sub(last_beat) >= beat_nanos;
        if due_beat {
            last_beat = now;
        }
        for slot in slots {
            let mut guard = slot.lock();
            let Some(run) = guard.as_mut() else { continue };
            if run.timed_out {
                continue;
            }
            if timeout_nanos.is_some_and(|t| now.saturating_sub(run.started) >= t) {
                run.timed_out = true;
                let delivery = run.delivery.clone();
                drop(guard);
                let _ = session.complete(&delivery, Err(TaskError::new("handler timed out")));
            } else if due_beat {
                let delivery = run.delivery.clone();
                drop(guard);
                let _ = session.extend(&delivery);
            }
        }
    }
}
