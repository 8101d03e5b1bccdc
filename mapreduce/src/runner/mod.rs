//! The runner: [`Runner`], its public entry points, and the coordinator
//! that runs a job's two phases ([`map`] then [`reduce`]) with retries and
//! progress reports, writing into a [`sink`]. Its settings are in
//! [`builder`].

mod builder;
#[cfg(feature = "timely")]
mod cluster;
mod map;
mod reduce;
mod sink;

use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sysblocks_clock::SharedClock;

pub use self::builder::RunnerBuilder;
use self::sink::PartSink;
use crate::board::{TaskBoard, WorkerGuard};
use crate::buffer::KeyHashers;
use crate::counters::Counters;
use crate::error::{JobError, TaskError};
use crate::input::{Feed, IterFeed, TextFeed, TextInput};
use crate::job::Job;
use crate::partition::{HashPartitioner, Partitioner};
use crate::progress::{draw, Phase, Progress};
use crate::spill::SpillDir;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, Scope, StdArc as Arc, ThreadBuilder};

/// Every key of a job with its output, sorted by key.
pub type Outputs<J> = Vec<(<J as Job>::Key, <J as Job>::Output)>;

/// The progress callback type.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How often the coordinator reports progress.
const TICK: Duration = Duration::from_millis(100);

/// Runs [`Job`]s: M map tasks (one per split) and R reduce partitions on a
/// pool of scoped worker threads.
///
/// Memory: map output is held in per-task hash tables. A running map task
/// spills a sorted run to disk when its table exceeds
/// `memory_budget / (2 * threads)`; a finished task's output stays in
/// memory while all retained output is below `memory_budget / 2`, and is
/// spilled otherwise. Spill runs live in a temporary directory that is
/// removed when the job ends, whether it succeeds, fails or panics.
#[derive(Clone)]
pub struct Runner<P = HashPartitioner> {
    threads: usize,
    partitions: usize,
    split_size: u64,
    records_per_split: usize,
    memory_budget: u64,
    spill_quota: u64,
    spill_dir: Option<PathBuf>,
    max_retries: u32,
    clock: SharedClock,
    progress_bar: bool,
    on_progress: Option<ProgressFn>,
    partitioner: P,
}

impl<P> std::fmt::Debug for Runner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("threads", &self.threads)
            .field("partitions", &self.partitions)
            .field("split_size", &self.split_size)
            .field("memory_budget", &self.memory_budget)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl<P> Runner<P> {
    /// Worker threads.
    #[must_use]
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Reduce partitions R.
    #[must_use]
    pub fn partitions(&self) -> usize {
        self.partitions
    }

    /// Runs `job` over text input and returns every key with its output,
    /// sorted by key.
    ///
    /// An input of empty files (or an empty directory) gives an empty
    /// result.
    ///
    /// # Errors
    ///
    /// [`JobError::Input`] for a missing or unreadable path,
    /// [`JobError::Spill`] when the spill directory cannot be created,
    /// [`JobError::MapFailed`] / [`JobError::ReduceFailed`] naming the split
    /// or partition whose task failed on every attempt.
    pub fn run<J>(&self, job: &J, input: &TextInput) -> Result<Outputs<J>, JobError>
    where
        J: Job<Record = [u8]>,
        P: Partitioner<J::Key>,
    {
        Ok(self.run_counted(job, input)?.0)
    }

    /// [`Runner::run`], also returning the job's [`Counters`]: the job's
    /// own, summed over its tasks' successful attempts, and the runner's
    /// `mapreduce.input_bytes` and `mapreduce.input_records` (read by all
    /// attempts).
    ///
    /// # Errors
    ///
    /// As [`Runner::run`].
    pub fn run_counted<J>(
        &self,
        job: &J,
        input: &TextInput,
    ) -> Result<(Outputs<J>, Counters), JobError>
    where
        J: Job<Record = [u8]>,
        P: Partitioner<J::Key>,
    {
        let feed = TextFeed::plan(input, self.split_size, self.threads)?;
        let (parts, counters) = self.execute(job, &feed, &self.mem_sink::<J::Key>())?;
        Ok((self.join_sorted::<J>(parts), counters))
    }

    /// Runs `job` over the records of an iterator (pulled lazily,
    /// `records_per_split` at a time) and returns every key with its output,
    /// sorted by key.
    ///
    /// # Errors
    ///
    /// As [`Runner::run`], without the input errors.
    pub fn run_iter<J, I>(&self, job: &J, records: I) -> Result<Outputs<J>, JobError>
    where
        J: Job,
        J::Record: Sized + Send,
        I: IntoIterator<Item = J::Record>,
        I::IntoIter: Send,
        P: Partitioner<J::Key>,
    {
        Ok(self.run_iter_counted(job, records)?.0)
    }

    /// [`Runner::run_iter`], also returning the job's [`Counters`] (see
    /// [`Runner::run_counted`]).
    ///
    /// # Errors
    ///
    /// As [`Runner::run_iter`].
    pub fn run_iter_counted<J, I>(
        &self,
        job: &J,
        records: I,
    ) -> Result<(Outputs<J>, Counters), JobError>
    where
        J: Job,
        J::Record: Sized + Send,
        I: IntoIterator<Item = J::Record>,
        I::IntoIter: Send,
        P: Partitioner<J::Key>,
    {
        let feed = IterFeed::new(records.into_iter(), self.records_per_split);
        let (parts, counters) = self.execute(job, &feed, &self.mem_sink::<J::Key>())?;
        Ok((self.join_sorted::<J>(parts), counters))
    }

    /// Runs `job` over text input and writes partition `i`'s outputs with
    /// `format` to `dir/part-{i:05}` (in key order when the partitioner is
    /// ordered, as [`RangePartitioner`](crate::RangePartitioner) is, else in
    /// the order of the keys' hashes), plus an empty
    /// `dir/_SUCCESS`. The files are written to a hidden sibling directory
    /// and renamed to `dir` only when every partition is complete, so `dir`
    /// never holds partial output. Returns the part files' paths.
    ///
    /// # Errors
    ///
    /// As [`Runner::run`], plus [`JobError::OutputExists`] when `dir`
    /// exists and [`JobError::Output`] when the output cannot be created or
    /// renamed into place.
    pub fn run_to_dir<J, F>(
        &self,
        job: &J,
        input: &TextInput,
        dir: &Path,
        format: F,
    ) -> Result<Vec<PathBuf>, JobError>
    where
        J: Job<Record = [u8]>,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        Ok(self.run_to_dir_counted(job, input, dir, format)?.0)
    }

    /// [`Runner::run_to_dir`], also returning the job's [`Counters`] (see
    /// [`Runner::run_counted`]).
    ///
    /// # Errors
    ///
    /// As [`Runner::run_to_dir`].
    pub fn run_to_dir_counted<J, F>(
        &self,
        job: &J,
        input: &TextInput,
        dir: &Path,
        format: F,
    ) -> Result<(Vec<PathBuf>, Counters), JobError>
    where
        J: Job<Record = [u8]>,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        let feed = TextFeed::plan(input, self.split_size, self.threads)?;
        self.to_dir(job, &feed, dir, &format)
    }

    /// [`Runner::run_to_dir`] over the records of an iterator.
    ///
    /// # Errors
    ///
    /// As [`Runner::run_to_dir`], without the input errors.
    pub fn run_iter_to_dir<J, I, F>(
        &self,
        job: &J,
        records: I,
        dir: &Path,
        format: F,
    ) -> Result<Vec<PathBuf>, JobError>
    where
        J: Job,
        J::Record: Sized + Send,
        I: IntoIterator<Item = J::Record>,
        I::IntoIter: Send,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        Ok(self.run_iter_to_dir_counted(job, records, dir, format)?.0)
    }

    /// [`Runner::run_iter_to_dir`], also returning the job's [`Counters`]
    /// (see [`Runner::run_counted`]).
    ///
    /// # Errors
    ///
    /// As [`Runner::run_iter_to_dir`].
    pub fn run_iter_to_dir_counted<J, I, F>(
        &self,
        job: &J,
        records: I,
        dir: &Path,
        format: F,
    ) -> Result<(Vec<PathBuf>, Counters), JobError>
    where
        J: Job,
        J::Record: Sized + Send,
        I: IntoIterator<Item = J::Record>,
        I::IntoIter: Send,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        let feed = IterFeed::new(records.into_iter(), self.records_per_split);
        self.to_dir(job, &feed, dir, &format)
    }

    /// A snapshot of `state` in `phase` for the progress callback and bar.
    fn snapshot(&self, state: &JobState, phase: Phase, splits_done: usize) -> Progress {
        Progress {
            phase,
            bytes_mapped: state.counters.bytes.load(Ordering::Relaxed),
            bytes_total: state.bytes_total,
            records_mapped: state.counters.records.load(Ordering::Relaxed),
            splits_done,
            splits_total: state.splits_total,
            partitions_done: state.partitions_done.load(Ordering::Relaxed),
            partitions_total: self.partitions,
            spilled_bytes: state.spill.total_bytes(),
            elapsed: Duration::from_nanos(self.clock.now_nanos().saturating_sub(state.start)),
        }
    }

    fn report(&self, state: &JobState, phase: Phase, splits_done: usize, last: bool) {
        let p = self.snapshot(state, phase, splits_done);
        if let Some(cb) = &self.on_progress {
            cb(&p);
        }
        if state.bar {
            draw(&p, last);
        }
    }

    /// Runs `attempt` until it succeeds, panics and errors counting as
    /// failures, at most `max_retries + 1` times (fewer once the board is
    /// cancelled).
    fn with_retries<T>(
        &self,
        board: &TaskBoard,
        mut attempt: impl FnMut() -> Result<T, TaskError>,
    ) -> Result<T, (u32, TaskError)> {
        let mut n = 0u32;
        loop {
            n += 1;
            let r = match catch_unwind(AssertUnwindSafe(&mut attempt)) {
                Ok(r) => r,
                Err(p) => Err(TaskError::Panicked(panic_message(&*p))),
            };
            match r {
                Ok(v) => return Ok(v),
                Err(e) if n > self.max_retries || board.is_cancelled() => return Err((n, e)),
                Err(_) => {}
            }
        }
    }

    /// A new job's shared state (and its spill directory).
    fn job_state(
        &self,
        bytes_total: Option<u64>,
        splits_total: Option<usize>,
    ) -> Result<JobState, JobError> {
        Ok(JobState {
            spill: SpillDir::new(self.spill_dir.as_deref(), self.spill_quota)?,
            hashers: KeyHashers::for_run(),
            start: self.clock.now_nanos(),
            bar: self.progress_bar && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            counters: Live::default(),
            user: Mutex::new(Counters::new()),
            partitions_done: AtomicUsize::new(0),
            failure: Mutex::new(None),
            bytes_total,
            splits_total,
        })
    }

    /// Runs the map phase, then the reduce phase into `sink`; returns each
    /// partition's finished sink output, in partition order, and the
    /// job's counters.
    fn execute<J, Fd, S>(
        &self,
        job: &J,
        feed: &Fd,
        sink: &S,
    ) -> Result<(Vec<S::Done>, Counters), JobError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let state = self.job_state(feed.total_bytes(), feed.splits())?;
        let (outputs, splits_done) = self.map_phase(job, feed, &state);
        self.report(&state, Phase::Map, splits_done, false);
        if let Some(e) = state.failure.lock().take() {
            self.report(&state, Phase::Done, splits_done, true);
            return Err(e);
        }
        let done = self.reduce_phase(job, outputs, sink, &state, splits_done);
        self.report(&state, Phase::Done, splits_done, true);
        if let Some(e) = state.failure.lock().take() {
            return Err(e);
        }
        let mut parts = Vec::with_capacity(done.len());
        for (p, d) in done.into_iter().enumerate() {
            match d {
                Some(d) => parts.push(d),
                None => {
                    return Err(JobError::ReduceFailed {
                        partition: p,
                        attempts: 0,
                        source: TaskError::msg("partition was never reduced"),
                    })
                }
            }
        }
        Ok((parts, state.counters()))
    }
}

/// Counter names the runner itself fills in.
pub(crate) const INPUT_BYTES: &str = "mapreduce.input_bytes";
pub(crate) const INPUT_RECORDS: &str = "mapreduce.input_records";

/// Live counters the coordinator reads for progress.
#[derive(Default)]
struct Live {
    bytes: AtomicU64,
    records: AtomicU64,
}

/// What the phases of one job share: the spill directory, what progress
/// reports read, and the first failure.
struct JobState {
    spill: SpillDir,
    /// The key hashers of this run (the tables' seeds are new each run).
    hashers: KeyHashers,
    /// When the job started, by the runner's clock.
    start: u64,
    /// Whether to draw the progress bar.
    bar: bool,
    counters: Live,
    /// The job's counters, from the tasks' successful attempts.
    user: Mutex<Counters>,
    partitions_done: AtomicUsize,
    failure: Mutex<Option<JobError>>,
    bytes_total: Option<u64>,
    splits_total: Option<usize>,
}

impl JobState {
    /// The job's counters and the runner's input counters.
    fn counters(&self) -> Counters {
        let mut c = self.user.lock().clone();
        c.add(INPUT_BYTES, self.counters.bytes.load(Ordering::Relaxed));
        c.add(INPUT_RECORDS, self.counters.records.load(Ordering::Relaxed));
        c
    }

    /// Records a task's final error unless an earlier one is recorded; a
    /// cancelled task is not a cause, it only follows one.
    fn fail(&self, source: TaskError, error: impl FnOnce(TaskError) -> JobError) {
        let mut f = self.failure.lock();
        if f.is_none() && !matches!(source, TaskError::Cancelled) {
            *f = Some(error(source));
        }
    }
}

/// Starts `n` workers in `s`, each running `work` and then marking itself
/// exited on `board` (from a guard, so also when it panics). When the OS
/// refuses a thread, the slots not started are marked exited and no more
/// are tried: the workers already running take every task. When none
/// starts, the job fails with [`JobError::Spawn`].
fn spawn_workers<'scope, 'env>(
    s: &'scope Scope<'scope, 'env>,
    n: usize,
    board: &'env TaskBoard,
    state: &'env JobState,
    work: &'env (dyn Fn() + Sync),
) {
    for i in 0..n {
        let spawned = ThreadBuilder::new().spawn_scoped(s, move || {
            let _guard = WorkerGuard(board);
            work();
        });
        if let Err(source) = spawned {
            for _ in i..n {
                board.worker_exit();
            }
            if i == 0 {
                let mut f = state.failure.lock();
                if f.is_none() {
                    *f = Some(JobError::Spawn { source });
                }
            }
            return;
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
