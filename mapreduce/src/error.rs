//! The crate's error types.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

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
    /// A setting was outside the range the builder accepts.
    Invalid {
        /// The builder method that set it.
        setting: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zero { setting } => write!(f, "{setting} must be greater than zero"),
            Self::Invalid { setting, reason } => write!(f, "invalid {setting}: {reason}"),
        }
    }
}

impl StdError for BuildError {}

/// Why one attempt of a map or reduce task failed.
///
/// User code returns it from [`Job::map`](crate::Job::map) and
/// [`Job::reduce`](crate::Job::reduce); the runner also produces it for a
/// panic caught inside a task and for I/O on spill files.
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskError {
    /// The user's code reported a failure.
    Failed(Box<dyn StdError + Send + Sync + 'static>),
    /// The user's code panicked; the payload's message, if it had one.
    Panicked(String),
    /// Reading the input or writing/reading a spill run or an output file failed.
    Io(io::Error),
    /// The job was cancelled because another task failed for good.
    Cancelled,
    /// The partitioner returned a partition index that is not below R.
    BadPartition {
        /// What the partitioner returned.
        partition: usize,
        /// The number of partitions R.
        partitions: usize,
    },
}

impl TaskError {
    /// A failure described by a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::Failed(message.to_string().into())
    }

    /// A failure caused by another error.
    pub fn other(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Failed(Box::new(error))
    }
}

impl From<io::Error> for TaskError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(e) => write!(f, "{e}"),
            Self::Panicked(m) => write!(f, "panicked: {m}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Cancelled => write!(f, "cancelled after another task failed"),
            Self::BadPartition {
                partition,
                partitions,
            } => write!(
                f,
                "partitioner returned partition {partition} but there are {partitions}"
            ),
        }
    }
}

impl StdError for TaskError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Failed(e) => Some(&**e),
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// A job did not complete. No partial output is returned or left in place.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobError {
    /// An input path is missing or unreadable.
    Input {
        /// The path.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The temporary directory for spill runs could not be created.
    Spill {
        /// What the operating system said.
        source: io::Error,
    },
    /// Not one worker thread of a phase could be started. (When only some
    /// could, the job runs on those.)
    Spawn {
        /// What the operating system said.
        source: io::Error,
    },
    /// A map task failed on every attempt.
    MapFailed {
        /// The split, as `path:start-end` (bytes) or `records a..b`.
        split: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        source: TaskError,
    },
    /// A reduce task failed on every attempt.
    ReduceFailed {
        /// The partition index (its file is `part-{partition:05}`).
        partition: usize,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's failure.
        source: TaskError,
    },
    /// The output directory already exists; the job never overwrites output.
    OutputExists {
        /// The directory.
        path: PathBuf,
    },
    /// Creating or publishing the output directory failed.
    Output {
        /// The path involved.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input { path, source } => {
                write!(f, "cannot read input {}: {source}", path.display())
            }
            Self::Spill { source } => write!(f, "cannot create the spill directory: {source}"),
            Self::Spawn { source } => write!(f, "cannot start a worker thread: {source}"),
            Self::MapFailed {
                split,
                attempts,
                source,
            } => write!(
                f,
                "map task for split {split} failed after {attempts} attempts: {source}"
            ),
            Self::ReduceFailed {
                partition,
                attempts,
                source,
            } => write!(
                f,
                "reduce task for partition {partition} failed after {attempts} attempts: {source}"
            ),
            Self::OutputExists { path } => {
                write!(f, "output directory {} already exists", path.display())
            }
            Self::Output { path, source } => {
                write!(f, "cannot write output {}: {source}", path.display())
            }
        }
    }
}

impl StdError for JobError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Input { source, .. }
            | Self::Spill { source }
            | Self::Spawn { source }
            | Self::Output { source, .. } => Some(source),
            Self::MapFailed { source, .. } | Self::ReduceFailed { source, .. } => Some(source),
            Self::OutputExists { .. } => None,
        }
    }
}

/// A spill record could not be decoded (a corrupt or truncated run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    what: &'static str,
}

impl DecodeError {
    /// A decode failure; `what` says what was being decoded.
    #[must_use]
    pub fn new(what: &'static str) -> Self {
        Self { what }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot decode {}: truncated or corrupt record",
            self.what
        )
    }
}

impl StdError for DecodeError {}
