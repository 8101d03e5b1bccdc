//! Tasks, their ids and priorities.

use std::fmt;

use crate::error::UnknownPriority;

/// The id the queue gives a task when it accepts it. Ids are unique for the
/// life of a store, restarts included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(pub u64);

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task-{}", self.0)
    }
}

/// How urgent a task is. Workers always take a ready `High` task before a
/// ready `Normal` one, and `Normal` before `Low`; within a priority, tasks
/// run in the order they became ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Taken first.
    High,
    /// The default.
    #[default]
    Normal,
    /// Taken when nothing else is ready.
    Low,
}

impl Priority {
    pub(crate) fn index(self) -> usize {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }

    /// The priority of a numeric level: 0 high, 1 normal, 2 low (how
    /// remote backends and other languages name it); `None` for any other
    /// level.
    #[must_use]
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            0 => Some(Self::High),
            1 => Some(Self::Normal),
            2 => Some(Self::Low),
            _ => None,
        }
    }

    /// The numeric level: 0 high, 1 normal, 2 low.
    #[must_use]
    pub fn level(self) -> u8 {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }
}

/// A numeric level (0 high, 1 normal, 2 low), checked: how a level read
/// from another process or language becomes a [`Priority`].
///
/// ```
/// use sysblocks_task_queue::{Priority, UnknownPriority};
///
/// assert_eq!(Priority::try_from(0), Ok(Priority::High));
/// assert_eq!(Priority::try_from(7), Err(UnknownPriority(7)));
/// ```
impl TryFrom<u8> for Priority {
    type Error = UnknownPriority;

    fn try_from(level: u8) -> Result<Self, UnknownPriority> {
        Self::from_level(level).ok_or(UnknownPriority(level))
    }
}

/// A unit of work: an opaque payload (the handler decides what it means)
/// and a priority.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Task {
    payload: Vec<u8>,
    priority: Priority,
}

impl Task {
    /// A `Normal` task carrying `payload`.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            payload: payload.into(),
            priority: Priority::Normal,
        }
    }

    /// The same task with another priority.
    #[must_use]
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The priority.
    #[must_use]
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The payload, by value.
    #[must_use]
    pub fn into_payload(self) -> Vec<u8> {
        self.payload
    }
}
