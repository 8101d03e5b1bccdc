//! Submission: a submit reserves room, takes ids and appends its tasks to
//! the store under the queue's lock (`stage`), then waits for the store
//! without the lock and makes the tasks ready (`finish`). `submit` does both
//! at once; `submit_pending` hands the second half to a [`PendingSubmit`].

use std::fmt;
use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use super::TaskQueue;
use crate::error::{StoreError, SubmitBatchError, SubmitError};
use crate::record::{RecordState, TaskRecord};
use crate::store::{StoreOp, Ticket};
use crate::task::{Task, TaskId};

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

impl TaskQueue {
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
    /// accepted), with [`StoreError::IdsExhausted`] once every id has been
    /// handed out.
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
            let live = core.entries.len().saturating_add(core.reserved);
            if live.saturating_add(n) > inner.capacity {
                return Err(SubmitBatchError::Full(tasks));
            }
            // Ids never wrap: `u64::MAX` is never handed out, so the ids
            // `first..end` all lie below `end <= u64::MAX`.
            let first = core.next_id;
            let Some(end) = u64::try_from(n).ok().and_then(|n| first.checked_add(n)) else {
                return Err(SubmitBatchError::Store(StoreError::IdsExhausted));
            };
            let now = inner.clock.now_nanos();
            let run_at = now.saturating_add(saturating_nanos(delay));
            core.next_id = end;
            core.reserved += n;
            let ops = tasks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    StoreOp::Put(TaskRecord {
                        id: TaskId(first + i as u64),
                        task: t.clone(),
                        attempts: 0,
                        restarts: 0,
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
            core.insert(first + i as u64, task, (0, 0), run_at, now);
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
}
