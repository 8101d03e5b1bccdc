//! `TaskQueue`: submission with back pressure, leases, retries with
//! backoff, delayed tasks, priorities and dead letters, over a `Store`.
//!
//! A task moves `ready -> leased -> done`, or `leased -> delayed (backoff)
//! -> ready` on failure, or `leased -> dead` after its last attempt. A lease
//! that runs out counts as a failed attempt. Every move is appended to the
//! store under the queue's lock, so the store sees moves in the order they
//! happened; only `submit` waits for the store to make its move durable.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use sysblocks_clock::{saturating_nanos, Clock, MonotonicClock, SharedClock};

use crate::backoff::{Backoff, SplitMix64};
use crate::error::{BuildError, StoreError, SubmitBatchError, SubmitError, TaskError};
use crate::store::{MemoryStore, Store, StoreOp, Ticket};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering};
use crate::task::{RecordState, Task, TaskId, TaskRecord};

/// The longest a waiting worker sleeps before it looks at the clock again
/// (a test clock moves without waking anyone).
const POLL: Duration = Duration::from_millis(20);

/// Configures a [`TaskQueue`].
#[derive(Debug)]
pub struct TaskQueueBuilder {
    capacity: usize,
    max_attempts: u32,
    lease: Duration,
    backoff: Backoff,
    clock: Option<SharedClock>,
    store: Option<Box<dyn Store>>,
    seed: Option<u64>,
}

impl Default for TaskQueueBuilder {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_attempts: 5,
            lease: Duration::from_secs(30),
            backoff: Backoff::default(),
            clock: None,
            store: None,
            seed: None,
        }
    }
}

impl TaskQueueBuilder {
    /// The most live tasks (waiting, delayed or running; dead letters do
    /// not count) the queue holds; `submit` returns
    /// [`SubmitError::Full`] beyond it. Default 10 000.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How many times a task is delivered at most before it goes to the
    /// dead-letter queue. Default 5.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The lease (visibility timeout): a delivery not completed within it
    /// counts as failed and the task is delivered again. Default 30 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The retry schedule. Default [`Backoff::default`].
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The clock that times leases, delays and backoff. Default a
    /// [`MonotonicClock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(crate::sync::StdArc::new(clock));
        self
    }

    /// Where tasks are kept. Default a fresh [`MemoryStore`].
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Seeds the jitter of the retry schedule, for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the queue and recovers whatever its store holds: pending
    /// tasks wait again (a delay keeps what remained of it when it was
    /// written), leased tasks count as failed attempts whose lease ran out
    /// (the process that held them is gone), dead letters stay dead.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero capacity, max attempts or lease;
    /// [`BuildError::Store`] if the store cannot be read.
    pub fn build(self) -> Result<TaskQueue, BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::Zero {
                setting: "capacity",
            });
        }
        if self.max_attempts == 0 {
            return Err(BuildError::Zero {
                setting: "max_attempts",
            });
        }
        if self.lease.is_zero() {
            return Err(BuildError::Zero { setting: "lease" });
        }
        let clock: SharedClock = self
            .clock
            .unwrap_or_else(|| crate::sync::StdArc::new(MonotonicClock::new()));
        let store = self
            .store
            .unwrap_or_else(|| Box::new(MemoryStore::new()) as Box<dyn Store>);
        let seed = self.seed.unwrap_or_else(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        let recovered = store.load()?;
        let now = clock.now_nanos();
        let mut core = Core {
            entries: HashMap::new(),
            ready: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            delayed: BinaryHeap::new(),
            leases: BinaryHeap::new(),
            dead: BTreeMap::new(),
            next_id: recovered.next_id,
            next_token: 0,
            reserved: 0,
            closed: false,
            rng: SplitMix64::new(seed),
            stats: Stats::default(),
        };
        let mut fixes = Vec::new();
        for rec in recovered.records {
            core.next_id = core.next_id.max(rec.id.0.saturating_add(1));
            let id = rec.id.0;
            match rec.state {
                RecordState::Dead { error } => {
                    core.dead.insert(
                        id,
                        DeadLetter {
                            id: rec.id,
                            task: rec.task,
                            attempts: rec.attempts,
                            error,
                        },
                    );
                }
                RecordState::Pending { run_at } => {
                    let run_at = if now < rec.written_at {
                        now.saturating_add(run_at.saturating_sub(rec.written_at))
                    } else {
                        run_at
                    };
                    core.insert(id, rec.task, rec.attempts, run_at, now);
                }
                RecordState::Leased { .. } => {
                    core.stats.recovered_leases += 1;
                    if rec.attempts >= self.max_attempts {
                        let dead = DeadLetter {
                            id: rec.id,
                            task: rec.task,
                            attempts: rec.attempts,
                            error: "lease lost in a restart on the last attempt".into(),
                        };
                        fixes.push(StoreOp::Put(dead.record(now)));
                        core.dead.insert(id, dead);
                    } else {
                        fixes.push(StoreOp::Put(TaskRecord {
                            id: rec.id,
                            task: rec.task.clone(),
                            attempts: rec.attempts,
                            state: RecordState::Pending { run_at: now },
                            written_at: now,
                        }));
                        core.insert(id, rec.task, rec.attempts, now, now);
                    }
                }
            }
        }
        if !fixes.is_empty() {
            let ticket = store.append(fixes)?;
            store.wait(ticket)?;
        }
        Ok(TaskQueue {
            inner: Arc::new(Inner {
                core: Mutex::new(core),
                work: Condvar::new(),
                store,
                clock,
                capacity: self.capacity,
                max_attempts: self.max_attempts,
                lease_nanos: saturating_nanos(self.lease),
                backoff: self.backoff,
            }),
        })
    }
}

/// A submit between its append to the store and its durability.
struct Staged {
    ticket: Ticket,
    first: u64,
    run_at: u64,
    tasks: Vec<Task>,
}

/// A submit started by [`TaskQueue::submit_pending`]: the task has an id
/// and its place in the store's write order; [`PendingSubmit::wait`] waits
/// until it is durable and hands it to the workers.
///
/// Dropping it without `wait` waits all the same (and ignores a store
/// error), so a task is never left reserved but undelivered.
#[must_use = "the task is accepted only once wait() returns Ok"]
pub struct PendingSubmit {
    queue: TaskQueue,
    staged: Option<Staged>,
}

impl fmt::Debug for PendingSubmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSubmit")
            .field("id", &self.id())
            .finish()
    }
}

impl PendingSubmit {
    /// The id the task will have once accepted.
    #[must_use]
    pub fn id(&self) -> TaskId {
        TaskId(self.staged.as_ref().map_or(u64::MAX, |s| s.first))
    }

    /// Waits until the task is durable, then makes it ready for workers.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Store`] if the store could not make it durable; the
    /// task is then not accepted.
    pub fn wait(mut self) -> Result<TaskId, SubmitError> {
        let staged = self.staged.take().expect("staged until wait or drop");
        match self.queue.finish(staged) {
            Ok(mut ids) => Ok(ids.pop().unwrap_or(TaskId(u64::MAX))),
            Err(e) => Err(SubmitError::Store(e)),
        }
    }
}

impl Drop for PendingSubmit {
    fn drop(&mut self) {
        if let Some(staged) = self.staged.take() {
            let _ = self.queue.finish(staged);
        }
    }
}

/// A task in the dead-letter queue: it failed on every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The task's id.
    pub id: TaskId,
    /// The task.
    pub task: Task,
    /// How many times it was delivered.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
}

impl DeadLetter {
    fn record(&self, now: u64) -> TaskRecord {
        TaskRecord {
            id: self.id,
            task: self.task.clone(),
            attempts: self.attempts,
            state: RecordState::Dead {
                error: self.error.clone(),
            },
            written_at: now,
        }
    }
}

/// Counters since the queue was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Tasks accepted by `submit`.
    pub submitted: u64,
    /// Deliveries handed to workers (first attempts and retries).
    pub delivered: u64,
    /// Tasks completed successfully (counted once per task).
    pub completed: u64,
    /// Attempts that failed (handler error, panic or expired lease).
    pub failed_attempts: u64,
    /// Leases that ran out before their delivery was completed.
    pub expired_leases: u64,
    /// Successful completions of a task that had already completed: the
    /// duplicates that at-least-once delivery allows.
    pub duplicate_completions: u64,
    /// Tasks moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Leased tasks found in the store at start-up (their process died).
    pub recovered_leases: u64,
}

/// A task handed to a worker, with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    id: TaskId,
    token: u64,
    task: Task,
    attempt: u32,
    lease_until: u64,
}

impl Delivery {
    /// The task's id.
    #[must_use]
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task.
    #[must_use]
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The task's payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        self.task.payload()
    }

    /// Which attempt this is, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the lease ends, in the queue clock's nanoseconds.
    #[must_use]
    pub fn lease_until(&self) -> u64 {
        self.lease_until
    }
}

/// What [`TaskQueue::complete`] did with a delivery's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The task is done and removed.
    Completed,
    /// The attempt failed; the task runs again at this clock time.
    Retry {
        /// The next attempt's earliest start, in clock nanoseconds.
        at: u64,
    },
    /// The attempt failed and was the last: the task is a dead letter.
    Dead,
    /// The lease had been lost: the task was already completed (a
    /// duplicate, counted in [`Stats::duplicate_completions`] if this one
    /// succeeded too) or its failure was already handled.
    Stale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Delayed { run_at: u64 },
    Leased { token: u64 },
}

#[derive(Debug)]
struct Entry {
    task: Task,
    attempts: u32,
    state: State,
}

struct Core {
    entries: HashMap<u64, Entry>,
    ready: [VecDeque<u64>; 3],
    delayed: BinaryHeap<Reverse<(u64, u64)>>,
    leases: BinaryHeap<Reverse<(u64, u64, u64)>>,
    dead: BTreeMap<u64, DeadLetter>,
    next_id: u64,
    next_token: u64,
    reserved: usize,
    closed: bool,
    rng: SplitMix64,
    stats: Stats,
}

impl Core {
    fn insert(&mut self, id: u64, task: Task, attempts: u32, run_at: u64, now: u64) {
        let prio = task.priority().index();
        let state = if run_at <= now {
            self.ready[prio].push_back(id);
            State::Ready
        } else {
            self.delayed.push(Reverse((run_at, id)));
            State::Delayed { run_at }
        };
        self.entries.insert(
            id,
            Entry {
                task,
                attempts,
                state,
            },
        );
    }
}

struct Inner {
    core: Mutex<Core>,
    work: Condvar,
    store: Box<dyn Store>,
    clock: SharedClock,
    capacity: usize,
    max_attempts: u32,
    lease_nanos: u64,
    backoff: Backoff,
}

/// A task queue: back-pressured submission, leases, retries, delayed tasks,
/// priorities and dead letters over a [`Store`]. A cheap `Clone` handle.
///
/// Workers either pull deliveries themselves ([`TaskQueue::lease`] then
/// [`TaskQueue::complete`]) or run in a [`WorkerPool`](crate::WorkerPool).
///
/// # Examples
///
/// ```
/// use sysblocks_task_queue::{Outcome, Task, TaskQueue};
///
/// let q = TaskQueue::builder().capacity(2).build().unwrap();
/// let id = q.submit(Task::new("resize video 1")).unwrap();
/// let d = q.lease().unwrap();
/// assert_eq!(d.id(), id);
/// assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
/// assert!(q.is_empty());
/// ```
#[derive(Clone)]
pub struct TaskQueue {
    inner: Arc<Inner>,
}

impl fmt::Debug for TaskQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskQueue")
            .field("capacity", &self.inner.capacity)
            .field("len", &self.len())
            .field("store", &self.inner.store)
            .finish()
    }
}

impl TaskQueue {
    /// A builder with the defaults.
    #[must_use]
    pub fn builder() -> TaskQueueBuilder {
        TaskQueueBuilder::default()
    }

    /// The capacity in live tasks.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// How many live tasks (ready, delayed or leased) the queue holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.core.lock().entries.len()
    }

    /// Whether the queue holds no live task.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.inner.core.lock().stats
    }

    /// The ids of the tasks leased right now.
    #[must_use]
    pub fn leased(&self) -> Vec<TaskId> {
        let core = self.inner.core.lock();
        let mut ids: Vec<TaskId> = core
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::Leased { .. }))
            .map(|(&id, _)| TaskId(id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Submits a task to run as soon as a worker is free.
    ///
    /// Returns once the store holds the task durably (for a durable store:
    /// on disk); from then on the task is delivered at least once, whatever
    /// happens to the process.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] at once if the queue is at capacity,
    /// [`SubmitError::Closed`] if it no longer accepts tasks, and
    /// [`SubmitError::Store`] if the store failed (the task is then not
    /// accepted).
    pub fn submit(&self, task: Task) -> Result<TaskId, SubmitError> {
        self.submit_after(task, Duration::ZERO)
    }

    /// Submits a task that becomes ready after `delay` (on the queue's
    /// clock).
    ///
    /// # Errors
    ///
    /// As [`TaskQueue::submit`].
    pub fn submit_after(&self, task: Task, delay: Duration) -> Result<TaskId, SubmitError> {
        match self.submit_inner(vec![task], delay) {
            Ok(mut ids) => Ok(ids.pop().unwrap_or(TaskId(u64::MAX))),
            Err(SubmitBatchError::Full(mut t)) => {
                Err(SubmitError::Full(t.pop().unwrap_or_default()))
            }
            Err(SubmitBatchError::Closed(mut t)) => {
                Err(SubmitError::Closed(t.pop().unwrap_or_default()))
            }
            Err(SubmitBatchError::Store(e)) => Err(SubmitError::Store(e)),
        }
    }

    /// Submits several tasks at once, all or none, made durable together.
    ///
    /// # Errors
    ///
    /// [`SubmitBatchError::Full`] if they do not all fit,
    /// [`SubmitBatchError::Closed`] if the queue no longer accepts tasks
    /// (both hand the tasks back), [`SubmitBatchError::Store`] if the store
    /// failed (none is accepted).
    pub fn submit_batch(&self, tasks: Vec<Task>) -> Result<Vec<TaskId>, SubmitBatchError> {
        self.submit_inner(tasks, Duration::ZERO)
    }

    fn submit_inner(
        &self,
        tasks: Vec<Task>,
        delay: Duration,
    ) -> Result<Vec<TaskId>, SubmitBatchError> {
        let staged = self.stage(tasks, delay)?;
        self.finish(staged).map_err(SubmitBatchError::Store)
    }

    /// Starts a submit without waiting for the store: the task gets its id
    /// and a place in the store's write order, and counts against the
    /// capacity; it is accepted (and delivered to workers) once
    /// [`PendingSubmit::wait`] returns `Ok`. A producer can keep many
    /// submits pending and wait for them in turn, so that one thread's
    /// tasks share fsyncs the way several threads' `submit`s do.
    ///
    /// # Errors
    ///
    /// As [`TaskQueue::submit`], except that a store failure that happens
    /// after this call returns is reported by [`PendingSubmit::wait`].
    ///
    /// # Examples
    ///
    /// ```
    /// use sysblocks_task_queue::{Task, TaskQueue};
    ///
    /// let q = TaskQueue::builder().build().unwrap();
    /// let pending: Vec<_> = (0..8)
    ///     .map(|i| q.submit_pending(Task::new(format!("upload {i}"))).unwrap())
    ///     .collect();
    /// for p in pending {
    ///     p.wait().unwrap(); // durable (with a durable store) from here on
    /// }
    /// assert_eq!(q.len(), 8);
    /// ```
    pub fn submit_pending(&self, task: Task) -> Result<PendingSubmit, SubmitError> {
        match self.stage(vec![task], Duration::ZERO) {
            Ok(staged) => Ok(PendingSubmit {
                queue: self.clone(),
                staged: Some(staged),
            }),
            Err(SubmitBatchError::Full(mut t)) => {
                Err(SubmitError::Full(t.pop().unwrap_or_default()))
            }
            Err(SubmitBatchError::Closed(mut t)) => {
                Err(SubmitError::Closed(t.pop().unwrap_or_default()))
            }
            Err(SubmitBatchError::Store(e)) => Err(SubmitError::Store(e)),
        }
    }

    /// The first half of a submit: checks, ids, reservation, append.
    fn stage(&self, tasks: Vec<Task>, delay: Duration) -> Result<Staged, SubmitBatchError> {
        let inner = &*self.inner;
        let n = tasks.len();
        let (ticket, first, run_at) = {
            let mut core = inner.core.lock();
            if core.closed {
                return Err(SubmitBatchError::Closed(tasks));
            }
            if core.entries.len() + core.reserved + n > inner.capacity {
                return Err(SubmitBatchError::Full(tasks));
            }
            let now = inner.clock.now_nanos();
            let run_at = now.saturating_add(saturating_nanos(delay));
            let first = core.next_id;
            core.next_id += n as u64;
            core.reserved += n;
            let ops = tasks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    StoreOp::Put(TaskRecord {
                        id: TaskId(first + i as u64),
                        task: t.clone(),
                        attempts: 0,
                        state: RecordState::Pending { run_at },
                        written_at: now,
                    })
                })
                .collect();
            match inner.store.append(ops) {
                Ok(t) => (t, first, run_at),
                Err(e) => {
                    core.reserved -= n;
                    return Err(SubmitBatchError::Store(e));
                }
            }
        };
        Ok(Staged {
            ticket,
            first,
            run_at,
            tasks,
        })
    }

    /// The second half of a submit: waits for the store, then makes the
    /// tasks ready.
    fn finish(&self, staged: Staged) -> Result<Vec<TaskId>, StoreError> {
        let inner = &*self.inner;
        let Staged {
            ticket,
            first,
            run_at,
            tasks,
        } = staged;
        let n = tasks.len();
        let durable = inner.store.wait(ticket);
        let mut core = inner.core.lock();
        core.reserved -= n;
        durable?;
        let now = inner.clock.now_nanos();
        let ids = (0..n as u64).map(|i| TaskId(first + i)).collect();
        for (i, task) in tasks.into_iter().enumerate() {
            core.insert(first + i as u64, task, 0, run_at, now);
        }
        core.stats.submitted += n as u64;
        drop(core);
        if n == 1 {
            inner.work.notify_one();
        } else {
            inner.work.notify_all();
        }
        Ok(ids)
    }

    /// Stops accepting tasks: `submit` returns [`SubmitError::Closed`] from
    /// now on. Tasks already accepted are still delivered.
    pub fn close(&self) {
        self.inner.core.lock().closed = true;
        self.inner.work.notify_all();
    }

    /// Whether [`TaskQueue::close`] was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.inner.core.lock().closed
    }

    /// Moves due delayed tasks to ready and fails expired leases.
    fn promote(&self, core: &mut Core, now: u64) {
        while let Some(&Reverse((run_at, id))) = core.delayed.peek() {
            if run_at > now {
                break;
            }
            core.delayed.pop();
            if let Some(e) = core.entries.get_mut(&id) {
                if e.state == (State::Delayed { run_at }) {
                    e.state = State::Ready;
                    core.ready[e.task.priority().index()].push_back(id);
                }
            }
        }
        while let Some(&Reverse((until, id, token))) = core.leases.peek() {
            if until > now {
                break;
            }
            core.leases.pop();
            let live = core
                .entries
                .get(&id)
                .is_some_and(|e| e.state == State::Leased { token });
            if live {
                core.stats.expired_leases += 1;
                self.fail(core, id, "lease expired".into(), now);
            }
        }
    }

    /// A failed attempt: retry after backoff, or dead-letter.
    fn fail(&self, core: &mut Core, id: u64, error: String, now: u64) -> Outcome {
        let inner = &*self.inner;
        core.stats.failed_attempts += 1;
        let attempts = match core.entries.get(&id) {
            Some(e) => e.attempts,
            None => return Outcome::Stale,
        };
        if attempts >= inner.max_attempts {
            let Some(e) = core.entries.remove(&id) else {
                return Outcome::Stale;
            };
            let dead = DeadLetter {
                id: TaskId(id),
                task: e.task,
                attempts: e.attempts,
                error,
            };
            // A store failure here leaves the older record, which a restart
            // redelivers: at-least-once still holds.
            let _ = inner.store.append(vec![StoreOp::Put(dead.record(now))]);
            core.dead.insert(id, dead);
            core.stats.dead_lettered += 1;
            Outcome::Dead
        } else {
            let random = core.rng.next_u64();
            let retry = attempts.saturating_sub(1);
            let run_at = now.saturating_add(inner.backoff.delay_nanos(retry, random));
            let Some(e) = core.entries.get_mut(&id) else {
                return Outcome::Stale;
            };
            let rec = TaskRecord {
                id: TaskId(id),
                task: e.task.clone(),
                attempts,
                state: RecordState::Pending { run_at },
                written_at: now,
            };
            if run_at <= now {
                e.state = State::Ready;
                core.ready[e.task.priority().index()].push_back(id);
            } else {
                e.state = State::Delayed { run_at };
                core.delayed.push(Reverse((run_at, id)));
            }
            let _ = inner.store.append(vec![StoreOp::Put(rec)]);
            Outcome::Retry { at: run_at }
        }
    }

    fn lease_locked(&self, core: &mut Core) -> Option<Delivery> {
        let inner = &*self.inner;
        let now = inner.clock.now_nanos();
        self.promote(core, now);
        for prio in 0..3 {
            while let Some(id) = core.ready[prio].pop_front() {
                let token = core.next_token;
                let Some(e) = core.entries.get_mut(&id) else {
                    continue;
                };
                if e.state != State::Ready {
                    continue;
                }
                core.next_token += 1;
                e.attempts += 1;
                e.state = State::Leased { token };
                let until = now.saturating_add(inner.lease_nanos);
                let delivery = Delivery {
                    id: TaskId(id),
                    token,
                    task: e.task.clone(),
                    attempt: e.attempts,
                    lease_until: until,
                };
                let rec = TaskRecord {
                    id: TaskId(id),
                    task: e.task.clone(),
                    attempts: e.attempts,
                    state: RecordState::Leased { until },
                    written_at: now,
                };
                core.leases.push(Reverse((until, id, token)));
                core.stats.delivered += 1;
                // If this write is lost the store still says "pending":
                // a restart delivers the task again, as it would anyway.
                let _ = inner.store.append(vec![StoreOp::Put(rec)]);
                return Some(delivery);
            }
        }
        None
    }

    /// Leases the most urgent ready task, if any, without waiting. Due
    /// delayed tasks become ready and expired leases fail first.
    #[must_use]
    pub fn lease(&self) -> Option<Delivery> {
        let mut core = self.inner.core.lock();
        self.lease_locked(&mut core)
    }

    /// Leases a task, waiting up to `timeout` (real time) for one to become
    /// ready. Returns `None` at the timeout.
    #[must_use]
    pub fn lease_timeout(&self, timeout: Duration) -> Option<Delivery> {
        self.lease_unless_stopped(timeout, None)
    }

    /// [`TaskQueue::lease_timeout`] that also returns `None` at once when
    /// `stop` is set. `stop` belongs to one [`WorkerPool`](crate::WorkerPool),
    /// so pools sharing a queue stop independently; the pool sets it and then
    /// calls [`TaskQueue::wake_workers`], and the flag is read under the
    /// lock the wait releases, so that wake-up is never lost.
    pub(crate) fn lease_unless_stopped(
        &self,
        timeout: Duration,
        stop: Option<&AtomicBool>,
    ) -> Option<Delivery> {
        let inner = &*self.inner;
        let deadline = Instant::now().checked_add(timeout);
        let mut core = inner.core.lock();
        loop {
            if stop.is_some_and(|s| s.load(Ordering::Acquire)) {
                return None;
            }
            if let Some(d) = self.lease_locked(&mut core) {
                return Some(d);
            }
            let now_real = Instant::now();
            let left = match deadline {
                Some(d) if d <= now_real => return None,
                Some(d) => d - now_real,
                None => POLL,
            };
            let mut wait = left.min(POLL);
            let now = inner.clock.now_nanos();
            let next = [
                core.delayed.peek().map(|r| r.0 .0),
                core.leases.peek().map(|r| r.0 .0),
            ]
            .into_iter()
            .flatten()
            .min();
            if let Some(next) = next {
                wait = wait.min(Duration::from_nanos(next.saturating_sub(now)));
            }
            if wait.is_zero() {
                continue;
            }
            wait_for(&inner.work, &mut core, wait);
        }
    }

    /// Reports the result of a delivery: `Ok` completes the task, `Err`
    /// fails the attempt (retry after backoff, or dead letter after the last
    /// attempt).
    ///
    /// A delivery whose lease ran out may still complete: the task is then
    /// done, and the other delivery it got meanwhile is a duplicate.
    pub fn complete(&self, delivery: &Delivery, result: Result<(), TaskError>) -> Outcome {
        let inner = &*self.inner;
        let mut core = inner.core.lock();
        let now = inner.clock.now_nanos();
        let id = delivery.id.0;
        let current = core.entries.get(&id).map(|e| {
            e.state
                == State::Leased {
                    token: delivery.token,
                }
        });
        let outcome = match (current, result) {
            (Some(_), Ok(())) => {
                core.entries.remove(&id);
                core.stats.completed += 1;
                let _ = inner.store.append(vec![StoreOp::Delete(TaskId(id))]);
                Outcome::Completed
            }
            (Some(true), Err(e)) => self.fail(&mut core, id, e.message().to_owned(), now),
            (Some(false), Err(_)) => Outcome::Stale,
            (None, Ok(())) => {
                if core.dead.remove(&id).is_some() {
                    core.stats.completed += 1;
                    let _ = inner.store.append(vec![StoreOp::Delete(TaskId(id))]);
                    Outcome::Completed
                } else {
                    core.stats.duplicate_completions += 1;
                    Outcome::Stale
                }
            }
            (None, Err(_)) => Outcome::Stale,
        };
        drop(core);
        if matches!(outcome, Outcome::Retry { .. }) {
            inner.work.notify_one();
        }
        outcome
    }

    /// The dead-letter queue, oldest id first.
    #[must_use]
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.inner.core.lock().dead.values().cloned().collect()
    }

    /// Moves a dead letter back to the queue with a fresh attempt count.
    /// Returns `false` if there is no dead letter with that id. Requeueing
    /// ignores the capacity (the task was accepted once already).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store could not record the move durably; the
    /// task then stays a dead letter.
    pub fn requeue_dead(&self, id: TaskId) -> Result<bool, StoreError> {
        let inner = &*self.inner;
        let (ticket, dead) = {
            let mut core = inner.core.lock();
            let Some(dead) = core.dead.remove(&id.0) else {
                return Ok(false);
            };
            let now = inner.clock.now_nanos();
            let rec = TaskRecord {
                id,
                task: dead.task.clone(),
                attempts: 0,
                state: RecordState::Pending { run_at: now },
                written_at: now,
            };
            match inner.store.append(vec![StoreOp::Put(rec)]) {
                Ok(t) => (t, dead),
                Err(e) => {
                    core.dead.insert(id.0, dead);
                    return Err(e);
                }
            }
        };
        let durable = inner.store.wait(ticket);
        let mut core = inner.core.lock();
        if let Err(e) = durable {
            core.dead.insert(id.0, dead);
            return Err(e);
        }
        let now = inner.clock.now_nanos();
        core.insert(id.0, dead.task, 0, now, now);
        drop(core);
        inner.work.notify_one();
        Ok(true)
    }

    /// Deletes every dead letter; returns how many there were.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store could not record the deletion durably.
    pub fn purge_dead(&self) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let (ticket, n) = {
            let mut core = inner.core.lock();
            let dead = std::mem::take(&mut core.dead);
            let n = dead.len();
            let ops = dead.keys().map(|&id| StoreOp::Delete(TaskId(id))).collect();
            (inner.store.append(ops)?, n)
        };
        inner.store.wait(ticket)?;
        Ok(n)
    }

    /// Blocks until the store has made durable everything appended so far
    /// (completions and leases are appended without waiting).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store failed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let ticket = self.inner.store.append(Vec::new())?;
        self.inner.store.wait(ticket)
    }

    /// Wakes every worker waiting in [`TaskQueue::lease_unless_stopped`] so
    /// that it looks at its pool's stop flag (set before this call).
    pub(crate) fn wake_workers(&self) {
        let _guard = self.inner.core.lock();
        self.inner.work.notify_all();
    }
}

fn wait_for(cv: &Condvar, guard: &mut MutexGuard<'_, Core>, d: Duration) {
    let _ = cv.wait_for(guard, d);
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests;
