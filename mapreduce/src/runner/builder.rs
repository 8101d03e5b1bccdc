//! [`RunnerBuilder`]: the runner's settings, their defaults and checks.

use std::path::PathBuf;

use sysblocks_clock::{Clock, MonotonicClock, SharedClock};

use super::{ProgressFn, Runner};
use crate::error::BuildError;
use crate::partition::HashPartitioner;
use crate::progress::Progress;
use crate::sync::{available_parallelism, StdArc as Arc};

/// Configures a [`Runner`]. Every setting has a default; see each method.
#[derive(Clone)]
pub struct RunnerBuilder<P = HashPartitioner> {
    threads: Option<usize>,
    partitions: Option<usize>,
    split_size: u64,
    records_per_split: usize,
    memory_budget: u64,
    spill_quota: u64,
    spill_dir: Option<PathBuf>,
    max_retries: u32,
    clock: Option<SharedClock>,
    progress_bar: bool,
    on_progress: Option<ProgressFn>,
    partitioner: P,
}

impl<P> std::fmt::Debug for RunnerBuilder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerBuilder").finish_non_exhaustive()
    }
}

impl Runner {
    /// The most worker threads [`RunnerBuilder::threads`] accepts. Each is
    /// an OS thread with its own stack; more than a machine has cores only
    /// adds memory and contention.
    pub const MAX_THREADS: usize = 1024;

    /// The most reduce partitions [`RunnerBuilder::partitions`] accepts.
    /// Each partition is one reduce task and, with
    /// [`Runner::run_to_dir`], one part file; a run's memory grows with the
    /// partitions its data falls into, never with R itself.
    pub const MAX_PARTITIONS: usize = 1 << 16;

    /// The most retries [`RunnerBuilder::max_retries`] accepts, so that a
    /// task that always fails ends the job in bounded time.
    pub const MAX_RETRIES: u32 = 100;

    /// A builder with the defaults.
    #[must_use]
    pub fn builder() -> RunnerBuilder {
        RunnerBuilder {
            threads: None,
            partitions: None,
            split_size: 64 << 20,
            records_per_split: 10_000,
            memory_budget: 1 << 30,
            spill_quota: u64::MAX,
            spill_dir: None,
            max_retries: 2,
            clock: None,
            progress_bar: false,
            on_progress: None,
            partitioner: HashPartitioner,
        }
    }
}

impl<P> RunnerBuilder<P> {
    /// Worker threads, at most [`Runner::MAX_THREADS`]. Default: all cores
    /// (`available_parallelism`, capped at [`Runner::MAX_THREADS`]). A
    /// phase never starts more threads than it has tasks for when it
    /// knows their number; when the OS refuses a thread, the job runs on
    /// the threads it got.
    #[must_use]
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Reduce partitions R, at most [`Runner::MAX_PARTITIONS`]. Default:
    /// four per worker thread.
    #[must_use]
    pub fn partitions(mut self, r: usize) -> Self {
        self.partitions = Some(r);
        self
    }

    /// The largest split of text input, in bytes (cut at the next line
    /// end). Default 64 MiB. Inputs smaller than `2 * threads` such splits
    /// are cut into about `2 * threads` splits (of at least 1 MiB), so that
    /// every thread has work.
    #[must_use]
    pub fn split_size(mut self, bytes: u64) -> Self {
        self.split_size = bytes;
        self
    }

    /// Records per split of an iterator input. Default 10,000.
    #[must_use]
    pub fn records_per_split(mut self, n: usize) -> Self {
        self.records_per_split = n;
        self
    }

    /// Bytes of intermediate data held in memory before spilling (an
    /// estimate from entry sizes and [`Codec::heap_bytes`](crate::Codec::heap_bytes)).
    /// Default 1 GiB.
    #[must_use]
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Bytes the job may have in spill files at once; a spill beyond it
    /// fails with an [`io::ErrorKind::StorageFull`](std::io::ErrorKind::StorageFull) error, as a full disk
    /// would. Default: unlimited.
    #[must_use]
    pub fn spill_quota(mut self, bytes: u64) -> Self {
        self.spill_quota = bytes;
        self
    }

    /// Directory in which the job's temporary spill directory is created.
    /// Default: the system's temporary directory.
    #[must_use]
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// How many times a failed task is retried before the job fails, at
    /// most [`Runner::MAX_RETRIES`]. Default 2 (three attempts).
    #[must_use]
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The clock for elapsed time, rate and ETA. Default: [`MonotonicClock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Whether to draw a progress bar on stderr, redrawn in place about ten
    /// times a second; it is drawn only when stderr is a terminal. Default
    /// false: the runner writes nothing unless asked to (the
    /// [`on_progress`](Self::on_progress) callback works either way).
    #[must_use]
    pub fn progress_bar(mut self, on: bool) -> Self {
        self.progress_bar = on;
        self
    }

    /// A callback for progress snapshots, called on the thread that runs
    /// the job about ten times a second and at the end of each phase.
    #[must_use]
    pub fn on_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = Some(Arc::new(f));
        self
    }

    /// The partitioner. Default: [`HashPartitioner`].
    #[must_use]
    pub fn partitioner<Q>(self, partitioner: Q) -> RunnerBuilder<Q> {
        RunnerBuilder {
            threads: self.threads,
            partitions: self.partitions,
            split_size: self.split_size,
            records_per_split: self.records_per_split,
            memory_budget: self.memory_budget,
            spill_quota: self.spill_quota,
            spill_dir: self.spill_dir,
            max_retries: self.max_retries,
            clock: self.clock,
            progress_bar: self.progress_bar,
            on_progress: self.on_progress,
            partitioner,
        }
    }

    /// The runner.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] when threads, partitions, split size, records
    /// per split or the memory budget is 0; [`BuildError::Invalid`] when
    /// threads, partitions or retries exceed [`Runner::MAX_THREADS`],
    /// [`Runner::MAX_PARTITIONS`] or [`Runner::MAX_RETRIES`].
    pub fn build(self) -> Result<Runner<P>, BuildError> {
        let threads = self.threads.unwrap_or_else(|| {
            available_parallelism()
                .map_or(1, usize::from)
                .min(Runner::MAX_THREADS)
        });
        let zero = |v: u64, setting| {
            if v == 0 {
                Err(BuildError::Zero { setting })
            } else {
                Ok(())
            }
        };
        zero(threads as u64, "threads")?;
        if threads > Runner::MAX_THREADS {
            return Err(BuildError::Invalid {
                setting: "threads",
                reason: "more than Runner::MAX_THREADS (1024)",
            });
        }
        let partitions = self.partitions.unwrap_or(threads * 4);
        zero(partitions as u64, "partitions")?;
        if partitions > Runner::MAX_PARTITIONS {
            return Err(BuildError::Invalid {
                setting: "partitions",
                reason: "more than Runner::MAX_PARTITIONS (65536)",
            });
        }
        if self.max_retries > Runner::MAX_RETRIES {
            return Err(BuildError::Invalid {
                setting: "max_retries",
                reason: "more than Runner::MAX_RETRIES (100)",
            });
        }
        zero(self.split_size, "split_size")?;
        zero(self.records_per_split as u64, "records_per_split")?;
        zero(self.memory_budget, "memory_budget")?;
        Ok(Runner {
            threads,
            partitions,
            split_size: self.split_size,
            records_per_split: self.records_per_split,
            memory_budget: self.memory_budget,
            spill_quota: self.spill_quota,
            spill_dir: self.spill_dir,
            max_retries: self.max_retries,
            clock: self
                .clock
                .unwrap_or_else(|| Arc::new(MonotonicClock::new())),
            progress_bar: self.progress_bar,
            on_progress: self.on_progress,
            partitioner: self.partitioner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reasons name the limits; keep them in step.
    const _: () = assert!(Runner::MAX_THREADS == 1024);
    const _: () = assert!(Runner::MAX_PARTITIONS == 65536);
    const _: () = assert!(Runner::MAX_RETRIES == 100);
    // A partition index fits the `u32` of a buffer entry.
    const _: () = assert!(Runner::MAX_PARTITIONS <= u32::MAX as usize);

    #[test]
    fn quiet_unless_asked() {
        assert!(!Runner::builder().build().unwrap().progress_bar);
        assert!(
            Runner::builder()
                .progress_bar(true)
                .build()
                .unwrap()
                .progress_bar
        );
    }
}
