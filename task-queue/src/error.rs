//! The crate's error types.

use std::fmt;

use crate::task::Task;

/// A builder was given a setting it cannot honour. Settings are reported,
/// never clamped silently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting that must be positive was zero.
    Zero {
        /// The builder method that set it.
        setting: &'static str,
    },
    /// A setting was larger than the crate supports.
    TooLarge {
        /// The builder method that set it.
        setting: &'static str,
        /// The largest accepted value.
        max: u64,
    },
    /// The memory a setting asks for could not be allocated.
    OutOfMemory {
        /// The setting.
        setting: &'static str,
        /// The bytes it needed.
        bytes: u64,
    },
    /// A thread the setting asks for could not be started.
    Spawn {
        /// The setting.
        setting: &'static str,
        /// The operating system's error.
        detail: String,
    },
    /// Two settings contradict each other, or a setting is out of range.
    Invalid {
        /// The builder method that set it.
        setting: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The store could not be read while the queue was being built.
    Store(StoreError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::TooLarge { setting, max } => write!(f, "{setting} must be at most {max}"),
            Self::OutOfMemory { setting, bytes } => {
                write!(
                    f,
                    "{setting} needs {bytes} bytes, which could not be allocated"
                )
            }
            Self::Spawn { setting, detail } => {
                write!(f, "cannot start the threads {setting} asks for: {detail}")
            }
            Self::Invalid { setting, reason } => write!(f, "invalid {setting}: {reason}"),
            Self::Store(e) => write!(f, "cannot recover from the store: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for BuildError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Why [`BoundedQueue::try_push`](crate::BoundedQueue::try_push) and its
/// blocking variants refused an item. The item always comes back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PushError<T> {
    /// The queue was full (for `push_timeout`: still full at the deadline).
    Full(T),
    /// The queue was closed.
    Closed(T),
}

impl<T> PushError<T> {
    /// The item that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(v) | Self::Closed(v) => v,
        }
    }

    /// Whether the queue was full (rather than closed).
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("Full(..)"),
            Self::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the queue is full"),
            Self::Closed(_) => f.write_str("the queue is closed"),
        }
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Why [`BoundedQueue::try_pop`](crate::BoundedQueue::try_pop) or
/// [`BoundedQueue::pop_timeout`](crate::BoundedQueue::pop_timeout) returned
/// no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopError {
    /// The queue was empty (for `pop_timeout`: still empty at the deadline).
    Empty,
    /// The queue was closed and drained.
    Closed,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("the queue is empty"),
            Self::Closed => f.write_str("the queue is closed and drained"),
        }
    }
}

impl std::error::Error for PopError {}

/// A failure of a [`Store`](crate::Store).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The file exists but is not a task-queue store (another database, or
    /// not a database at all). The file is left untouched.
    Foreign {
        /// The file.
        path: String,
        /// What was found instead.
        detail: String,
    },
    /// The file is a task-queue store but a record or the file itself is
    /// damaged. The file is left untouched.
    Corrupt {
        /// What is damaged.
        detail: String,
    },
    /// The database reported an error (I/O, a failed commit, ...).
    Database {
        /// The database's message.
        detail: String,
    },
    /// The store has been shut down.
    Closed,
    /// The store already serves a queue: another [`TaskQueue`](crate::TaskQueue)
    /// was built over it (or over a clone of it, or over the same file) and
    /// is still alive. Two queues over one store would hand out the same
    /// ids and overwrite each other's tasks.
    InUse,
    /// Every task id has been handed out (ids are never reused, and never
    /// wrap around).
    IdsExhausted,
    /// A record is larger than the store can keep; it was not stored and
    /// the store carries on.
    TooLarge {
        /// The record's encoded size.
        bytes: u64,
        /// The largest record the store keeps.
        max: u64,
    },
    /// [`Store::wait`](crate::Store::wait) was given a ticket the store
    /// never handed out.
    UnknownTicket {
        /// The ticket.
        ticket: u64,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Foreign { path, detail } => {
                write!(f, "{path} is not a task-queue store: {detail}")
            }
            Self::Corrupt { detail } => write!(f, "the task store is corrupt: {detail}"),
            Self::Database { detail } => write!(f, "task store database error: {detail}"),
            Self::Closed => f.write_str("the task store is closed"),
            Self::InUse => f.write_str("the task store already serves another queue"),
            Self::IdsExhausted => f.write_str("the task store has handed out every task id"),
            Self::TooLarge { bytes, max } => {
                write!(
                    f,
                    "a {bytes}-byte task record exceeds the store's {max} bytes"
                )
            }
            Self::UnknownTicket { ticket } => {
                write!(f, "ticket {ticket} was never handed out by this store")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// Why [`TaskQueue::submit`](crate::TaskQueue::submit) refused a task. The
/// task comes back where the refusal is a matter of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue holds as many live tasks as its capacity allows: back
    /// pressure, try again later.
    Full(Task),
    /// The queue no longer accepts tasks (it is shutting down).
    Closed(Task),
    /// The store could not make the task durable; it was not accepted.
    Store(StoreError),
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("the task queue is full, retry later"),
            Self::Closed(_) => f.write_str("the task queue is shutting down"),
            Self::Store(e) => write!(f, "the task was not accepted: {e}"),
        }
    }
}

impl std::error::Error for SubmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// A handler's report that a task failed; the task is retried or, after
/// its last attempt, dead-lettered with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
}

impl TaskError {
    /// A failure described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The description.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

impl From<&str> for TaskError {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for TaskError {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// Why [`TaskQueue::submit_batch`](crate::TaskQueue::submit_batch) refused
/// a batch. No task of the batch was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitBatchError {
    /// The batch does not fit in the remaining capacity.
    Full(Vec<Task>),
    /// The queue no longer accepts tasks.
    Closed(Vec<Task>),
    /// The store could not make the batch durable.
    Store(StoreError),
}

impl fmt::Display for SubmitBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(t) => write!(f, "the task queue has no room for {} tasks", t.len()),
            Self::Closed(_) => f.write_str("the task queue is shutting down"),
            Self::Store(e) => write!(f, "the tasks were not accepted: {e}"),
        }
    }
}

impl std::error::Error for SubmitBatchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// A failure of [`RedisQueue`](crate::RedisQueue) (feature `redis`). The
/// queue keeps working after any of them: a connection is opened again on
/// the next call, a missing consumer group is created again.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisQueueError {
    /// A setting was refused.
    Build(BuildError),
    /// The server could not be reached, or the connection broke (the
    /// command may or may not have run: a submit that fails this way was
    /// not acknowledged, and may still have been stored).
    Connection {
        /// The command.
        command: &'static str,
        /// The client's message.
        detail: String,
    },
    /// A key the queue uses holds another type (`WRONGTYPE`).
    WrongType {
        /// The command.
        command: &'static str,
    },
    /// The server answered with another error.
    Server {
        /// The command.
        command: &'static str,
        /// The error code (the first word of the server's message).
        code: String,
        /// The whole message.
        detail: String,
    },
    /// The server answered with something the command cannot return.
    UnexpectedReply {
        /// The command.
        command: &'static str,
        /// What was wrong with the reply.
        detail: String,
    },
    /// A payload was larger than the configured maximum.
    PayloadTooLarge {
        /// Its length in bytes.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A task id that is not a stream id (`<ms>-<seq>`).
    BadStreamId(String),
    /// This handle was closed: it submits no more tasks.
    Closed,
}

#[cfg(feature = "redis")]
impl fmt::Display for RedisQueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Build(e) => write!(f, "invalid setting: {e}"),
            Self::Connection { command, detail } => {
                write!(f, "{command}: connection to redis failed: {detail}")
            }
            Self::WrongType { command } => {
                write!(f, "{command}: a queue key holds another type (WRONGTYPE)")
            }
            Self::Server {
                command, detail, ..
            } => write!(f, "{command}: redis answered with an error: {detail}"),
            Self::UnexpectedReply { command, detail } => {
                write!(f, "{command}: unexpected reply from redis: {detail}")
            }
            Self::PayloadTooLarge { len, max } => {
                write!(f, "payload of {len} bytes exceeds the maximum of {max}")
            }
            Self::BadStreamId(s) => write!(f, "{s:?} is not a stream id (<ms>-<seq>)"),
            Self::Closed => f.write_str("the queue handle is closed"),
        }
    }
}

#[cfg(feature = "redis")]
impl std::error::Error for RedisQueueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Build(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "redis")]
impl From<BuildError> for RedisQueueError {
    fn from(e: BuildError) -> Self {
        Self::Build(e)
    }
}

/// A typed payload that could not be encoded or decoded (feature `serde`).
#[cfg(feature = "serde")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The value could not be serialized (e.g. a map with non-string keys).
    Encode(String),
    /// The payload is not the expected type in JSON (not JSON, or another
    /// shape); carries serde_json's message, with line and column.
    Decode(String),
}

#[cfg(feature = "serde")]
impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "payload does not encode: {e}"),
            Self::Decode(e) => write!(f, "payload does not decode: {e}"),
        }
    }
}

#[cfg(feature = "serde")]
impl std::error::Error for PayloadError {}

/// A handler can use `?` on [`Delivery::deserialize`](crate::Delivery::deserialize):
/// a payload that does not decode fails the attempt (and, as it will not
/// decode on the next one either, ends among the dead letters).
#[cfg(feature = "serde")]
impl From<PayloadError> for TaskError {
    fn from(e: PayloadError) -> Self {
        Self::new(e.to_string())
    }
}

/// A priority level other than 0 (high), 1 (normal) or 2 (low).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPriority(pub u8);

impl fmt::Display for UnknownPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown priority level {} (0 high, 1 normal, 2 low)",
            self.0
        )
    }
}

impl std::error::Error for UnknownPriority {}
