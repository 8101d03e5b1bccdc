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
    /// Worker threads. Default: all cores (`available_parallelism`).
    #[must_use]
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Reduce partitions R. Default: four per worker thread.
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

    /// How many times a failed task is retried before the job fails.
    /// Default 2 (three attempts).
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
    /// partitions exceed `u32::MAX`.
    pub fn build(self) -> Result<Runner<P>, BuildError> {
        let threads = self
            .threads
            .unwrap_or_else(|| available_parallelism().map_or(1, usize::from));
        let zero = |v: u64, setting| {
            if v == 0 {
                Err(BuildError::Zero { setting })
            } else {
                Ok(())
            }
        };
        zero(threads as u64, "threads")?;
        let partitions = self.partitions.unwrap_or(threads.saturating_mul(4));
        zero(partitions as u64, "partitions")?;
        if u32::try_from(partitions).is_err() {
            return Err(BuildError::Invalid {
                setting: "partitions",
                reason: "at most u32::MAX partitions",
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
