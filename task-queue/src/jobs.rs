//! `TaskQueue`: submission with back pressure, leases, retries with
//! backoff, delayed tasks, priorities and dead letters, over a `Store`.
//!
//! A task moves `ready -> leased -> done`, or `leased -> delayed (backoff)
//! -> ready` on failure, or `leased -> dead` after its last attempt. A lease
//! that runs out counts as a failed attempt. Every move is appended to the
//! store under the queue's lock, so the store sees moves in the order they
//! happened; only `submit` waits for the store to make its move durable.
//!
//! How attempts are counted: `attempts` counts deliveries, and
//! `Delivery::attempt` numbers them from 1. A delivery fails when its
//! handler returns `Err` or panics, or when its lease runs out in this
//! process. A delivery found leased when a queue starts over the store was
//! cut short by a restart, not by the task: it counts in `restarts`
//! instead. A task is dead-lettered when `attempts - restarts` (its
//! failures) reaches `max_attempts`, or when `restarts` reaches
//! `max_restarts`; so a crash loop does not use up healthy tasks' attempts.
//! Counters never wrap: a task whose delivery count is at `u32::MAX` is
//! dead-lettered instead of delivered again.
//!
//! This file holds the queue's state and the moves after submission. The
//! settings and `build` are in `builder.rs`, what `build` makes of the
//! store's records in `recovery.rs`, the two-phase submit in `submit.rs`,
//! and what the queue hands out and reports in `delivery.rs`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use sysblocks_clock::SharedClock;

use crate::backoff::{Backoff, SplitMix64};
use crate::error::{StoreError, TaskError};
use crate::record::{RecordState, TaskRecord};
use crate::store::{Store, StoreOp};
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering};
use crate::task::{Task, TaskId};

mod builder;
mod delivery;
mod recovery;
mod submit;

pub use builder::TaskQueueBuilder;
#[cfg(feature = "redis")]
pub(crate) use delivery::EntryRef;
pub use delivery::{DeadLetter, Delivery, Outcome, Stats};
pub use submit::PendingSubmit;

/// The longest a waiting worker sleeps before it looks at the clock again
/// (a test clock moves without waking anyone).
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Delayed { run_at: u64 },
    Leased { token: u64 },
}

#[derive(Debug)]
struct Entry {
    task: Task,
    /// Deliveries so far.
    attempts: u32,
    /// Deliveries cut short by a restart (see the module docs).
    restarts: u32,
    state: State,
    /// While leased: when the lease ends (moved on by
    /// [`TaskQueue::extend_lease`]; only the lease heap entry with this end
    /// is live).
    lease_until: u64,
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
    /// An empty queue state that hands out ids from `next_id` on.
    fn new(next_id: u64, seed: u64) -> Self {
        Self {
            entries: HashMap::new(),
            ready: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            delayed: BinaryHeap::new(),
            leases: BinaryHeap::new(),
            dead: BTreeMap::new(),
            next_id,
            next_token: 0,
            reserved: 0,
            closed: false,
            rng: SplitMix64::new(seed),
            stats: Stats::default(),
        }
    }

    fn insert(&mut self, id: u64, task: Task, counts: (u32, u32), run_at: u64, now: u64) {
        let (attempts, restarts) = counts;
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
                restarts,
                state,
                lease_until: 0,
            },
        );
    }
}

struct Inner {
    /// This queue's identity, which its deliveries carry: a delivery of
    /// another queue is refused, whatever its task id.
    id: u64,
    core: Mutex<Core>,
    work: Condvar,
    store: Box<dyn Store>,
    clock: SharedClock,
    capacity: usize,
    max_attempts: u32,
    lease_nanos: u64,
    backoff: Backoff,
}

impl Drop for Inner {
    /// The last handle is gone: the store may serve another queue.
    fn drop(&mut self) {
        self.store.release();
    }
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

    /// Stops accepting tasks: `submit` returns
    /// [`SubmitError::Closed`](crate::SubmitError::Closed) from
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

    /// Moves due delayed tasks to ready and fails expired leases. A lease
    /// whose end saturated at `u64::MAX` (a `Duration::MAX` lease, or a
    /// clock at its end) never expires.
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
            if until > now || until == u64::MAX {
                break;
            }
            core.leases.pop();
            let live = core
                .entries
                .get(&id)
                .is_some_and(|e| e.state == State::Leased { token } && e.lease_until == until);
            if live {
                core.stats.expired_leases += 1;
                self.fail(core, id, "lease expired".into(), now);
            }
        }
    }

    /// Moves a live task to the dead-letter queue.
    fn bury(&self, core: &mut Core, id: u64, error: String, now: u64) -> Outcome {
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
        let _ = self
            .inner
            .store
            .append(vec![StoreOp::Put(dead.record(now))]);
        core.dead.insert(id, dead);
        core.stats.dead_lettered += 1;
        Outcome::Dead
    }

    /// A failed attempt: retry after backoff, or dead-letter.
    fn fail(&self, core: &mut Core, id: u64, error: String, now: u64) -> Outcome {
        let inner = &*self.inner;
        core.stats.failed_attempts += 1;
        let (attempts, restarts) = match core.entries.get(&id) {
            Some(e) => (e.attempts, e.restarts),
            None => return Outcome::Stale,
        };
        // Deliveries cut short by a restart are not failures of the task.
        let failures = attempts.saturating_sub(restarts);
        if failures >= inner.max_attempts {
            self.bury(core, id, error, now)
        } else {
            let random = core.rng.next_u64();
            let retry = failures.saturating_sub(1);
            let run_at = now.saturating_add(inner.backoff.delay_nanos(retry, random));
            let Some(e) = core.entries.get_mut(&id) else {
                return Outcome::Stale;
            };
            let rec = TaskRecord {
                id: TaskId(id),
                task: e.task.clone(),
                attempts,
                restarts,
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
                let Some(attempt) = e.attempts.checked_add(1) else {
                    // Another delivery could not be counted.
                    self.bury(core, id, "attempt counter exhausted".into(), now);
                    continue;
                };
                // One token per lease: 2^64 leases are out of reach, and a
                // token only has to differ from the live leases' ones.
                core.next_token = token.wrapping_add(1);
                e.attempts = attempt;
                e.state = State::Leased { token };
                let until = now.saturating_add(inner.lease_nanos);
                e.lease_until = until;
                let delivery = Delivery {
                    queue: inner.id,
                    id: TaskId(id),
                    token,
                    task: e.task.clone(),
                    attempt,
                    lease_until: until,
                    entry: None,
                };
                let rec = TaskRecord {
                    id: TaskId(id),
                    task: e.task.clone(),
                    attempts: attempt,
                    restarts: e.restarts,
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
                // A lease ending at `u64::MAX` never expires.
                core.leases
                    .peek()
                    .map(|r| r.0 .0)
                    .filter(|&until| until != u64::MAX),
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
    ///
    /// A delivery handed out by another queue changes nothing and returns
    /// [`Outcome::Foreign`], even where this queue has a task with the same
    /// id.
    pub fn complete(&self, delivery: &Delivery, result: Result<(), TaskError>) -> Outcome {
        let inner = &*self.inner;
        if delivery.queue != inner.id {
            return Outcome::Foreign;
        }
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
                restarts: 0,
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
        core.insert(id.0, dead.task, (0, 0), now, now);
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

    /// The lease a delivery gets.
    #[must_use]
    pub fn lease_duration(&self) -> Duration {
        Duration::from_nanos(self.inner.lease_nanos)
    }

    /// The queue's clock (for the pool's heartbeat and handler timeout).
    pub(crate) fn clock(&self) -> SharedClock {
        crate::sync::StdArc::clone(&self.inner.clock)
    }

    /// Extends the lease of a delivery that still holds it to a full lease
    /// from now (a heartbeat for a long task; a
    /// [`WorkerPool`](crate::WorkerPool) does this for its running
    /// handlers). [`Delivery::lease_until`] keeps the first end. Returns
    /// `false` if the lease was lost (it expired, or the delivery belongs to
    /// another queue).
    pub fn extend_lease(&self, delivery: &Delivery) -> bool {
        let inner = &*self.inner;
        if delivery.queue != inner.id {
            return false;
        }
        let mut core = inner.core.lock();
        let now = inner.clock.now_nanos();
        self.promote(&mut core, now);
        let id = delivery.id.0;
        let until = now.saturating_add(inner.lease_nanos);
        let Some(e) = core.entries.get_mut(&id) else {
            return false;
        };
        if e.state
            != (State::Leased {
                token: delivery.token,
            })
        {
            return false;
        }
        if until > e.lease_until {
            e.lease_until = until;
            core.leases.push(Reverse((until, id, delivery.token)));
        }
        true
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
