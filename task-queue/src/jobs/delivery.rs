//! What the queue hands out and reports: deliveries, the outcome of
//! completing one, dead letters and the counters.

use crate::record::{RecordState, TaskRecord};
use crate::task::{Task, TaskId};

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
    /// The record that keeps it in the store, written at `now`.
    pub(super) fn record(&self, now: u64) -> TaskRecord {
        TaskRecord {
            id: self.id,
            task: self.task.clone(),
            attempts: self.attempts,
            restarts: 0,
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
    /// These deliveries count as restarts, not as failed attempts.
    pub recovered_leases: u64,
}

/// A task handed to a worker, with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue that handed it out.
    pub(crate) queue: u64,
    pub(crate) id: TaskId,
    /// Tells this delivery from a later one of the same task.
    pub(crate) token: u64,
    pub(crate) task: Task,
    pub(crate) attempt: u32,
    pub(crate) lease_until: u64,
    /// Where a remote backend keeps this delivery (a stream entry).
    pub(crate) entry: Option<EntryRef>,
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

    /// Which delivery of the task this is, from 1. Deliveries cut short by
    /// a restart are counted too, but only failures count against
    /// `max_attempts` (see [`TaskQueueBuilder::max_restarts`](crate::TaskQueueBuilder::max_restarts)).
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

/// What [`TaskQueue::complete`](crate::TaskQueue::complete) did with a delivery's result.
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
    /// The delivery was handed out by another queue: nothing was changed.
    Foreign,
}

/// The stream entry behind a delivery of a remote backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryRef {
    /// The priority stream: 0 high, 1 normal, 2 low.
    pub(crate) level: u8,
    /// The entry's stream id, `<ms>-<seq>`.
    pub(crate) stream_id: String,
    /// Failed attempts before this delivery.
    pub(crate) failures: u32,
    /// The consumer that holds the entry (a heartbeat from another
    /// connection extends it for this consumer).
    pub(crate) consumer: String,
}

impl Delivery {
    /// The stream id of the entry a remote backend delivered (`<ms>-<seq>`),
    /// `None` for the embedded queue.
    #[must_use]
    pub fn stream_id(&self) -> Option<&str> {
        self.entry.as_ref().map(|e| e.stream_id.as_str())
    }
}
