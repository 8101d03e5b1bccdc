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
    /// The cluster backend (feature `timely`) could not start or finish.
    Cluster(ClusterError),
}

impl From<ClusterError> for JobError {
    fn from(e: ClusterError) -> Self {
        Self::Cluster(e)
    }
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
            Self::Cluster(e) => write!(f, "cluster: {e}"),
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
            Self::Cluster(e) => Some(e),
        }
    }
}

/// Why a job on a cluster of processes (feature `timely`) could not start,
/// or stopped: bad flags or hostfile, peers that cannot be reached or that
/// went away, a failure in another worker, or a local launch that failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterError {
    /// A flag was missing its value, had a bad value, or was not allowed.
    Flag {
        /// The flag, e.g. `-w`.
        flag: String,
        /// Why it was refused.
        reason: String,
    },
    /// The hostfile could not be read.
    Hostfile {
        /// The hostfile.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A hostfile line is not `host:port`.
    HostfileLine {
        /// The hostfile.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// The hostfile lists a different number of processes than `-n`.
    ProcessCount {
        /// `-n`.
        processes: usize,
        /// Addresses in the hostfile.
        addresses: usize,
    },
    /// `-p` is not below `-n`.
    ProcessIndex {
        /// `-p`.
        process: usize,
        /// `-n`.
        processes: usize,
    },
    /// timely refused to start (e.g. this process's address cannot be
    /// bound).
    Start {
        /// What timely said.
        message: String,
    },
    /// The processes could not connect to each other within the timeout.
    Unreachable {
        /// The timeout.
        timeout: std::time::Duration,
    },
    /// Processes disagree on the job (flags, input size or split count).
    Mismatch {
        /// What differed.
        what: String,
    },
    /// A worker of this process stopped: most often a peer process went
    /// away (timely does not recover within a run), or timely panicked.
    WorkerLost {
        /// The worker's index, across the cluster.
        worker: usize,
        /// What it said (a panic message).
        message: String,
    },
    /// Another worker's job failed; that worker reports the cause.
    PeerFailed {
        /// The worker's index, across the cluster.
        worker: usize,
        /// Its error, as text.
        message: String,
    },
    /// The local launcher could not start or wait for a process.
    Launch {
        /// What the operating system said.
        source: io::Error,
    },
    /// A process started by the local launcher failed (after any retries).
    ProcessFailed {
        /// Its index (`-p`).
        process: usize,
        /// Its exit status, as text.
        status: String,
    },
}

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag { flag, reason } => write!(f, "flag {flag}: {reason}"),
            Self::Hostfile { path, source } => {
                write!(f, "cannot read hostfile {}: {source}", path.display())
            }
            Self::HostfileLine { path, line } => write!(
                f,
                "hostfile {} line {line}: expected host:port",
                path.display()
            ),
            Self::ProcessCount {
                processes,
                addresses,
            } => write!(
                f,
                "-n says {processes} processes but the hostfile lists {addresses}"
            ),
            Self::ProcessIndex { process, processes } => {
                write!(f, "-p {process} is not below -n {processes}")
            }
            Self::Start { message } => write!(f, "cannot start: {message}"),
            Self::Unreachable { timeout } => {
                write!(f, "peers not reachable within {timeout:?}")
            }
            Self::Mismatch { what } => write!(f, "processes disagree on {what}"),
            Self::WorkerLost { worker, message } => {
                write!(
                    f,
                    "worker {worker} stopped (a peer process is gone?): {message}"
                )
            }
            Self::PeerFailed { worker, message } => write!(f, "worker {worker} failed: {message}"),
            Self::Launch { source } => write!(f, "cannot launch a process: {source}"),
            Self::ProcessFailed { process, status } => {
                write!(f, "process {process} failed: {status}")
            }
        }
    }
}

impl StdError for ClusterError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Hostfile { source, .. } | Self::Launch { source } => Some(source),
            _ => None,
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
