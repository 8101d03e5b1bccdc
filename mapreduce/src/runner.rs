//! The runner: map tasks over splits, spill when over budget, reduce
//! partitions after a k-way merge, retries, progress, output.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sysblocks_clock::{Clock, MonotonicClock, SharedClock};

use crate::board::{TaskBoard, WorkerGuard};
use crate::buffer::{Entry, MapBuffer, MemRun};
use crate::error::{BuildError, JobError, TaskError};
use crate::input::{Feed, IterFeed, TextFeed, TextInput};
use crate::job::{Emitter, Job};
use crate::merge::{group_in_memory, Merger, Source};
use crate::partition::{HashPartitioner, Partitioner};
use crate::progress::{draw, Phase, Progress};
use crate::spill::{DiskRun, SpillDir};
use crate::sync::{
    available_parallelism, scope, AtomicU64, AtomicUsize, Mutex, Ordering, StdArc as Arc,
};

/// Every key of a job with its output, sorted by key.
pub type Outputs<J> = Vec<(<J as Job>::Key, <J as Job>::Output)>;

/// The progress callback type.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// A reduce task merges at most this many sorted sources at once; beyond
/// that, groups of sources are first merged into new runs.
const MAX_FAN_IN: usize = 64;

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
            progress_bar: true,
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
    /// fails with an [`io::ErrorKind::StorageFull`] error, as a full disk
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

    /// Whether to draw a progress bar on stderr when stderr is a terminal
    /// (it never draws otherwise). Default true.
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

/// What one map task leaves for the reduce phase.
struct TaskOutput<'s, K, V> {
    task: usize,
    runs: Vec<DiskRun<'s>>,
    mem: Option<MemRun<K, V>>,
}

/// Where reduced partitions go.
trait PartSink<K, O>: Sync {
    type Writer;
    type Done: Send;
    fn open(&self, partition: usize) -> Result<Self::Writer, TaskError>;
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError>;
    fn close(&self, w: Self::Writer) -> Result<Self::Done, TaskError>;
    /// Whether `close` sorts the partition by key itself.
    fn sorts_by_key(&self) -> bool {
        false
    }
}

/// Collects a partition's outputs in memory, sorted by key when `sort`
/// (each reduce task sorts its own partition, so the sorting runs on
/// every thread; the partitions are merged at the end).
struct MemSink {
    sort: bool,
}

impl<K: Send + Ord, O: Send> PartSink<K, O> for MemSink {
    type Writer = Vec<(K, O)>;
    type Done = Vec<(K, O)>;
    fn open(&self, _p: usize) -> Result<Self::Writer, TaskError> {
        Ok(Vec::new())
    }
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError> {
        w.push((key, out));
        Ok(())
    }
    fn close(&self, mut w: Self::Writer) -> Result<Self::Done, TaskError> {
        if self.sort {
            // Keys are unique within a partition.
            w.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(w)
    }
    fn sorts_by_key(&self) -> bool {
        self.sort
    }
}

struct DirSink<'f, F> {
    dir: PathBuf,
    format: &'f F,
}

/// The name of partition `p`'s output file.
fn part_name(p: usize) -> String {
    format!("part-{p:05}")
}

impl<K, O, F> PartSink<K, O> for DirSink<'_, F>
where
    F: Fn(&K, &O, &mut dyn Write) -> io::Result<()> + Sync,
{
    type Writer = (BufWriter<File>, String);
    type Done = String;
    fn open(&self, p: usize) -> Result<Self::Writer, TaskError> {
        let name = part_name(p);
        let f = File::create(self.dir.join(&name))?;
        Ok((BufWriter::with_capacity(256 * 1024, f), name))
    }
    fn write(&self, w: &mut Self::Writer, key: K, out: O) -> Result<(), TaskError> {
        (self.format)(&key, &out, &mut w.0)?;
        Ok(())
    }
    fn close(&self, (w, name): Self::Writer) -> Result<String, TaskError> {
        let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        Ok(name)
    }
}

/// The message of a caught panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Live counters the coordinator reads for progress.
#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    records: AtomicU64,
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
        let feed = TextFeed::plan(input, self.split_size, self.threads)?;
        let parts = self.execute(job, &feed, &self.mem_sink::<J::Key>())?;
        Ok(self.join_sorted::<J>(parts))
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
        let feed = IterFeed::new(records.into_iter(), self.records_per_split);
        let parts = self.execute(job, &feed, &self.mem_sink::<J::Key>())?;
        Ok(self.join_sorted::<J>(parts))
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
        let feed = IterFeed::new(records.into_iter(), self.records_per_split);
        self.to_dir(job, &feed, dir, &format)
    }

    fn to_dir<J, Fd, F>(
        &self,
        job: &J,
        feed: &Fd,
        dir: &Path,
        format: &F,
    ) -> Result<Vec<PathBuf>, JobError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Sync,
    {
        let out_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| JobError::Output { path, source }
        };
        if dir.symlink_metadata().is_ok() {
            return Err(JobError::OutputExists {
                path: dir.to_path_buf(),
            });
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{name}.partial-"))
            .tempdir_in(&parent)
            .map_err(out_err(&parent))?;
        let sink = DirSink {
            dir: staging.path().to_path_buf(),
            format,
        };
        let names = self.execute(job, feed, &sink)?;
        File::create(staging.path().join("_SUCCESS"))
            .and_then(|f| f.sync_all())
            .map_err(out_err(staging.path()))?;
        let staged = staging.keep();
        if let Err(source) = std::fs::rename(&staged, dir) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(JobError::Output {
                path: dir.to_path_buf(),
                source,
            });
        }
        if let Ok(d) = File::open(&parent) {
            let _ = d.sync_all();
        }
        Ok(names.into_iter().map(|n| dir.join(n)).collect())
    }

    /// The in-memory sink: it sorts each partition unless the partitioner
    /// already orders keys.
    fn mem_sink<K>(&self) -> MemSink
    where
        P: Partitioner<K>,
    {
        MemSink {
            sort: !self.partitioner.is_ordered(),
        }
    }

    /// Joins the partitions, each sorted by key, into one sorted vector:
    /// concatenated when the partitioner is ordered, else merged.
    fn join_sorted<J: Job>(&self, parts: Vec<Vec<(J::Key, J::Output)>>) -> Vec<(J::Key, J::Output)>
    where
        P: Partitioner<J::Key>,
    {
        if self.partitioner.is_ordered() {
            parts.into_iter().flatten().collect()
        } else {
            merge_sorted(parts)
        }
    }

    fn report(&self, p: &Progress, bar: bool, last: bool) {
        if let Some(cb) = &self.on_progress {
            cb(p);
        }
        if bar {
            draw(p, last);
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

    fn execute<J, Fd, S>(&self, job: &J, feed: &Fd, sink: &S) -> Result<Vec<S::Done>, JobError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let spill = SpillDir::new(self.spill_dir.as_deref(), self.spill_quota)?;
        let start = self.clock.now_nanos();
        let bar = self.progress_bar && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let counters = Counters::default();
        let partitions_done = AtomicUsize::new(0);
        let snapshot = |phase, splits_done| Progress {
            phase,
            bytes_mapped: counters.bytes.load(Ordering::Relaxed),
            bytes_total: feed.total_bytes(),
            records_mapped: counters.records.load(Ordering::Relaxed),
            splits_done,
            splits_total: feed.splits(),
            partitions_done: partitions_done.load(Ordering::Relaxed),
            partitions_total: self.partitions,
            spilled_bytes: spill.total_bytes(),
            elapsed: Duration::from_nanos(self.clock.now_nanos().saturating_sub(start)),
        };

        // Map phase.
        let map_threads = feed
            .splits()
            .map_or(self.threads, |s| s.clamp(1, self.threads));
        let board = TaskBoard::new(feed.splits().unwrap_or(usize::MAX), map_threads);
        let outputs: Mutex<Vec<TaskOutput<'_, J::Key, J::Value>>> = Mutex::new(Vec::new());
        let failure: Mutex<Option<JobError>> = Mutex::new(None);
        let retained = AtomicUsize::new(0);
        // Distinct keys of the largest finished task: later tasks start
        // with a table that size instead of growing one step at a time.
        let capacity_hint = AtomicUsize::new(0);
        scope(|s| {
            for _ in 0..map_threads {
                s.spawn(|| {
                    let _guard = WorkerGuard(&board);
                    while let Some((idx, split)) = feed.next_split(&board) {
                        let r = self.with_retries(&board, || {
                            self.map_attempt(
                                job,
                                feed,
                                &split,
                                &board,
                                &counters,
                                &spill,
                                &retained,
                                &capacity_hint,
                            )
                        });
                        match r {
                            Ok((runs, mem)) => outputs.lock().push(TaskOutput {
                                task: idx,
                                runs,
                                mem,
                            }),
                            Err((attempts, source)) => {
                                let mut f = failure.lock();
                                if f.is_none() && !matches!(source, TaskError::Cancelled) {
                                    *f = Some(JobError::MapFailed {
                                        split: feed.name(&split),
                                        attempts,
                                        source,
                                    });
                                }
                                board.cancel();
                            }
                        }
                        board.complete();
                    }
                });
            }
            while !board.wait_for(TICK) {
                self.report(&snapshot(Phase::Map, board.completed()), bar, false);
            }
        });
        let splits_done = board.completed();
        self.report(&snapshot(Phase::Map, splits_done), bar, false);
        if let Some(e) = failure.lock().take() {
            self.report(&snapshot(Phase::Done, splits_done), bar, true);
            return Err(e);
        }
        let mut outputs = outputs.into_inner();
        outputs.sort_unstable_by_key(|o| o.task);
        // Without spill runs, each partition is grouped in a hash table;
        // with them, it is a k-way merge, which needs sorted in-memory runs.
        let in_memory = outputs.iter().all(|o| o.runs.is_empty());
        if !in_memory {
            let by_hash = !self.partitioner.is_ordered();
            for m in outputs.iter_mut().filter_map(|o| o.mem.as_mut()) {
                m.sort(by_hash);
            }
        }

        // Reduce phase.
        let rboard = TaskBoard::new(self.partitions, self.threads);
        let done: Mutex<Vec<Option<S::Done>>> =
            Mutex::new((0..self.partitions).map(|_| None).collect());
        scope(|s| {
            for _ in 0..self.threads {
                s.spawn(|| {
                    let _guard = WorkerGuard(&rboard);
                    while let Some(p) = rboard.claim() {
                        let r = self.with_retries(&rboard, || {
                            if in_memory {
                                self.reduce_in_memory(job, &outputs, p, sink, &rboard)
                            } else {
                                self.reduce_attempt(job, &outputs, p, sink, &spill, &rboard)
                            }
                        });
                        match r {
                            Ok(d) => {
                                done.lock()[p] = Some(d);
                                partitions_done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err((attempts, source)) => {
                                let mut f = failure.lock();
                                if f.is_none() && !matches!(source, TaskError::Cancelled) {
                                    *f = Some(JobError::ReduceFailed {
                                        partition: p,
                                        attempts,
                                        source,
                                    });
                                }
                                rboard.cancel();
                            }
                        }
                        rboard.complete();
                    }
                });
            }
            while !rboard.wait_for(TICK) {
                self.report(&snapshot(Phase::Reduce, splits_done), bar, false);
            }
        });
        drop(outputs);
        self.report(&snapshot(Phase::Done, splits_done), bar, true);
        if let Some(e) = failure.lock().take() {
            return Err(e);
        }
        let done = done.into_inner();
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
        Ok(parts)
    }

    /// Runs are sorted by (hash, key) unless the partitioner promises
    /// ordered partitions: integer comparisons are cheaper, and the final
    /// in-memory result is sorted by key anyway.
    fn merge_hasher<K>(&self) -> Option<ahash::RandomState>
    where
        P: Partitioner<K>,
    {
        (!self.partitioner.is_ordered()).then(crate::buffer::key_hasher)
    }

    /// Per-task share of the budget before a running task spills.
    fn task_share(&self) -> usize {
        let b = usize::try_from(self.memory_budget).unwrap_or(usize::MAX);
        (b / (2 * self.threads)).max(1)
    }

    /// Budget for finished tasks' output kept in memory.
    fn retained_limit(&self) -> usize {
        usize::try_from(self.memory_budget).unwrap_or(usize::MAX) / 2
    }

    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn map_attempt<'s, J, Fd>(
        &self,
        job: &J,
        feed: &Fd,
        split: &Fd::Split,
        board: &TaskBoard,
        counters: &Counters,
        spill: &'s SpillDir,
        retained: &AtomicUsize,
        capacity_hint: &AtomicUsize,
    ) -> Result<(Vec<DiskRun<'s>>, Option<MemRun<J::Key, J::Value>>), TaskError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
    {
        let r = self.partitions;
        let share = self.task_share();
        let by_hash = !self.partitioner.is_ordered();
        let hint = capacity_hint
            .load(Ordering::Relaxed)
            .min(share / MapBuffer::<J::Key, J::Value>::entry_cost());
        let mut buf = MapBuffer::<J::Key, J::Value>::new(r, hint);
        let mut runs = Vec::new();
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        feed.for_each(
            split,
            board,
            &counters.bytes,
            &counters.records,
            |record, origin| {
                let mut em = Emitter {
                    buf: &mut buf,
                    combine: &combine,
                    partitioner: &self.partitioner,
                    origin,
                };
                job.map(record, &mut em)?;
                if let Some(e) = buf.error.take() {
                    return Err(e);
                }
                if buf.bytes > share {
                    runs.push(write_run(spill, &buf.take_sorted(by_hash))?);
                }
                Ok(())
            },
        )?;
        if buf.is_empty() {
            return Ok((runs, None));
        }
        capacity_hint.fetch_max(buf.len(), Ordering::Relaxed);
        // Sorted only if it has to be spilled, or later if another task
        // spilled (see `execute`).
        let mut run = buf.take_grouped();
        let limit = self.retained_limit();
        let kept = retained
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let next = cur.checked_add(run.bytes)?;
                (next <= limit).then_some(next)
            })
            .is_ok();
        if kept {
            Ok((runs, Some(run)))
        } else {
            run.sort(by_hash);
            runs.push(write_run(spill, &run)?);
            Ok((runs, None))
        }
    }

    /// Reduces partition `p` when every task's output is in memory: the
    /// entries are grouped in a hash table (tasks in split order, so values
    /// are combined in split order), then reduced in key order when the
    /// partitioner is ordered or the sink sorts anyway, else in hash order.
    fn reduce_in_memory<J, S>(
        &self,
        job: &J,
        outputs: &[TaskOutput<'_, J::Key, J::Value>],
        p: usize,
        sink: &S,
        board: &TaskBoard,
    ) -> Result<S::Done, TaskError>
    where
        J: Job,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        let runs: Vec<&MemRun<J::Key, J::Value>> =
            outputs.iter().filter_map(|o| o.mem.as_ref()).collect();
        let mut groups = group_in_memory(&runs, p, &combine, || board.is_cancelled())?;
        if self.partitioner.is_ordered() || sink.sorts_by_key() {
            groups.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        } else {
            groups.sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.key.cmp(&b.key)));
        }
        let mut w = sink.open(p)?;
        for (n, g) in groups.into_iter().enumerate() {
            let mut values = g.values;
            values.push(g.last);
            let out = job.reduce(&g.key, values)?;
            sink.write(&mut w, g.key, out)?;
            if n % 4096 == 4095 && board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
        }
        sink.close(w)
    }

    fn reduce_attempt<'s, J, S>(
        &self,
        job: &J,
        outputs: &[TaskOutput<'s, J::Key, J::Value>],
        p: usize,
        sink: &S,
        spill: &'s SpillDir,
        board: &TaskBoard,
    ) -> Result<S::Done, TaskError>
    where
        J: Job,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        // The partition's sorted sources in split order; files are opened
        // only when merged, at most MAX_FAN_IN at a time.
        let mut specs: Vec<Spec<'_, 's, J::Key, J::Value>> = Vec::new();
        for out in outputs {
            for run in &out.runs {
                if run.has_segment(p) {
                    specs.push(Spec::Disk(run, p));
                }
            }
            if let Some(m) = &out.mem {
                let s = m.partition(p);
                if !s.is_empty() {
                    specs.push(Spec::Mem(s, &m.more));
                }
            }
        }
        // Too many runs to merge at once: merge consecutive groups first
        // (consecutive, so values keep their split order).
        let mut premerged: Vec<DiskRun<'s>> = Vec::new();
        let mut round: Vec<usize> = Vec::new();
        let mut first_round = true;
        while (if first_round {
            specs.len()
        } else {
            round.len()
        }) > MAX_FAN_IN
        {
            let count = if first_round {
                specs.len()
            } else {
                round.len()
            };
            let mut next = Vec::new();
            for g in (0..count).step_by(MAX_FAN_IN) {
                let group: Vec<Source<'_, J::Key, J::Value>> = (g..count.min(g + MAX_FAN_IN))
                    .map(|i| {
                        if first_round {
                            specs[i].open()
                        } else {
                            Spec::Disk(&premerged[round[i]], 0).open()
                        }
                    })
                    .collect::<Result<_, _>>()?;
                let mut m = Merger::new(group, self.merge_hasher::<J::Key>())?;
                let mut w = spill.writer::<J::Key, J::Value>(1)?;
                while let Some((k, vs)) = m.next_group(&combine)? {
                    w.write(0, &k, vs.len(), vs.iter())?;
                }
                drop(m);
                let run = w.finish()?;
                if run.has_segment(0) {
                    next.push(premerged.len());
                    premerged.push(run);
                }
            }
            round = next;
            first_round = false;
        }
        let sources: Vec<Source<'_, J::Key, J::Value>> = if first_round {
            specs.iter().map(Spec::open).collect::<Result<_, _>>()?
        } else {
            round
                .iter()
                .map(|&i| Spec::Disk(&premerged[i], 0).open())
                .collect::<Result<_, _>>()?
        };
        let mut merger = Merger::new(sources, self.merge_hasher::<J::Key>())?;
        let mut w = sink.open(p)?;
        let mut n = 0u64;
        while let Some((key, values)) = merger.next_group(&combine)? {
            let out = job.reduce(&key, values)?;
            sink.write(&mut w, key, out)?;
            n += 1;
            if n.is_multiple_of(4096) && board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
        }
        let done = sink.close(w)?;
        drop(premerged);
        Ok(done)
    }
}

/// The next item of source `src` in a k-way merge; `BinaryHeap` is a
/// max-heap, so the order is reversed.
struct Next<K, O> {
    item: (K, O),
    src: usize,
}

impl<K: Ord, O> PartialEq for Next<K, O> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl<K: Ord, O> Eq for Next<K, O> {}

impl<K: Ord, O> PartialOrd for Next<K, O> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, O> Ord for Next<K, O> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .item
            .0
            .cmp(&self.item.0)
            .then_with(|| other.src.cmp(&self.src))
    }
}

/// Merges vectors sorted by key into one sorted vector.
fn merge_sorted<K: Ord, O>(parts: Vec<Vec<(K, O)>>) -> Vec<(K, O)> {
    let total = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<std::vec::IntoIter<(K, O)>> =
        parts.into_iter().map(Vec::into_iter).collect();
    let mut heap = std::collections::BinaryHeap::with_capacity(iters.len());
    for (src, it) in iters.iter_mut().enumerate() {
        if let Some(item) = it.next() {
            heap.push(Next { item, src });
        }
    }
    while let Some(mut top) = heap.peek_mut() {
        match iters[top.src].next() {
            // Replacing the top sifts it down when `top` is dropped.
            Some(item) => out.push(std::mem::replace(&mut top.item, item)),
            None => out.push(std::collections::binary_heap::PeekMut::pop(top).item),
        }
    }
    out
}

/// A sorted source of one partition, not yet opened.
enum Spec<'a, 's, K, V> {
    Mem(&'a [Entry<K, V>], &'a [Vec<V>]),
    Disk(&'a DiskRun<'s>, usize),
}

impl<'a, K: crate::Codec, V: crate::Codec> Spec<'a, '_, K, V> {
    fn open(&self) -> Result<Source<'a, K, V>, TaskError> {
        match self {
            Self::Mem(s, more) => Ok(Source::Mem(s.iter(), more)),
            Self::Disk(run, p) => run
                .segment(*p)?
                .map(Source::Disk)
                .ok_or_else(|| TaskError::msg("empty spill segment")),
        }
    }
}

/// Writes a task's sorted buffer as one run.
fn write_run<'s, K: crate::Codec, V: crate::Codec>(
    spill: &'s SpillDir,
    run: &MemRun<K, V>,
) -> Result<DiskRun<'s>, TaskError> {
    let mut w = spill.writer::<K, V>(run.partitions())?;
    for p in 0..run.partitions() {
        for e in run.partition(p) {
            w.write(p, &e.key, e.value_count(&run.more), e.values(&run.more))?;
        }
    }
    Ok(w.finish()?)
}
