//! The runner on timely dataflow (feature `timely`; see
//! [`crate::cluster`]): each worker maps its splits with the map phase,
//! sends every partition's sorted frames to the partition's owner, and
//! merges and reduces its own partitions.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::core::Input;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Probe;
use timely::worker::Worker;

use super::map::TaskOutput;
use super::reduce::reduce_group;
use super::sink::{part_name, DirSink, PartSink};
use super::{JobState, Runner};
use super::{INPUT_BYTES, INPUT_RECORDS};
use crate::board::TaskBoard;
use crate::cluster::execute::execute;
use crate::cluster::inbox::{Inbox, Msg, Status};
use crate::cluster::{ClusterConfig, ClusterOutput};
use crate::codec::Codec;
use crate::counters::Counters;
use crate::error::{ClusterError, JobError, TaskError};
use crate::input::{Feed, TextFeed, TextInput, TextSplit};
use crate::job::{Job, Origin};
use crate::merge::{Merger, Source};
use crate::partition::Partitioner;
use crate::spill::encode_frame;
use crate::sync::{AtomicU64, Ordering, StdArc as Arc};

/// A batch of frames is sent once it holds this many bytes.
const BATCH: usize = 256 * 1024;

/// Counter names the cluster runner fills in, beside the runner's.
const EXCHANGE_BYTES: &str = "mapreduce.exchange_bytes";
const EXCHANGE_REMOTE_BYTES: &str = "mapreduce.exchange_remote_bytes";
/// Nanoseconds each worker ran, from the start barrier (every worker of
/// every process started) to its partitions reduced, by the runner's
/// clock, summed over workers.
const WORKER_NANOS: &str = "mapreduce.worker_nanos";

/// The splits of a text input assigned to one worker: `w`, `w + W`, ...
struct Assigned<'f> {
    feed: &'f TextFeed,
    splits: Vec<usize>,
}

impl Feed<[u8]> for Assigned<'_> {
    type Split = TextSplit;

    fn next_split(&self, board: &TaskBoard) -> Option<(usize, TextSplit)> {
        board.claim().map(|j| (j, self.feed.split(self.splits[j])))
    }

    fn splits(&self) -> Option<usize> {
        Some(self.splits.len())
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.feed.total())
    }

    fn name(&self, split: &TextSplit) -> String {
        self.feed.name(split)
    }

    fn for_each<F>(
        &self,
        split: &TextSplit,
        board: &TaskBoard,
        bytes: &AtomicU64,
        records: &AtomicU64,
        f: F,
    ) -> Result<(), TaskError>
    where
        F: FnMut(&[u8], Origin<'_>) -> Result<(), TaskError>,
    {
        self.feed.for_each(split, board, bytes, records, f)
    }
}

/// What one worker returns: its partitions' sink outputs and the counters
/// of all workers.
type WorkerDone<D> = (Vec<(usize, D)>, Counters);

impl<P> Runner<P> {
    /// Runs `job` over text input on the workers of `cluster` and returns
    /// the outputs of the partitions this process reduced (worker `w`
    /// reduces partitions `w`, `w + W`, ...), each sorted by key, with the
    /// counters summed over all workers.
    ///
    /// Every process must be given the same job, runner settings and
    /// input (a path all processes can read).
    ///
    /// # Errors
    ///
    /// As [`Runner::run`], plus [`JobError::Cluster`] when the processes
    /// cannot connect, disagree on the input, or a worker elsewhere fails
    /// or goes away.
    pub fn run_cluster<J>(
        &self,
        cluster: &ClusterConfig,
        job: J,
        input: &TextInput,
    ) -> Result<ClusterOutput<J::Key, J::Output>, JobError>
    where
        J: Job<Record = [u8]> + Send + 'static,
        J::Key: 'static,
        J::Value: 'static,
        J::Output: 'static,
        P: Partitioner<J::Key> + Clone + 'static,
    {
        let runner = Arc::new(self.clone());
        let job = Arc::new(job);
        let input = input.clone();
        let local = cluster.threads_per_process();
        let results = execute(cluster, move |worker| {
            let sink = runner.mem_sink::<J::Key>();
            runner.worker_body(worker, &*job, &input, &sink, local, |_| Ok(()))
        })?;
        let mut partitions = Vec::new();
        let mut counters = Counters::new();
        for (parts, c) in results {
            partitions.extend(parts);
            counters = c;
        }
        partitions.sort_unstable_by_key(|(p, _)| *p);
        Ok(ClusterOutput {
            partitions,
            counters,
        })
    }

    /// Runs `job` over text input on the workers of `cluster` and writes
    /// partition `i` to `dir/part-{i:05}` as [`Runner::run_to_dir`] does,
    /// each worker its own partitions. `dir` must be a path all processes
    /// share: the parts are written to the hidden sibling
    /// `.{name}.partial-cluster`, which worker 0 renames to `dir` (with an
    /// empty `_SUCCESS`) once every worker has finished. Returns the paths
    /// of all part files and the counters summed over all workers.
    ///
    /// # Errors
    ///
    /// As [`Runner::run_to_dir`] and [`Runner::run_cluster`].
    pub fn run_cluster_to_dir<J, F>(
        &self,
        cluster: &ClusterConfig,
        job: J,
        input: &TextInput,
        dir: &Path,
        format: F,
    ) -> Result<(Vec<PathBuf>, Counters), JobError>
    where
        J: Job<Record = [u8]> + Send + 'static,
        J::Key: 'static,
        J::Value: 'static,
        J::Output: 'static,
        P: Partitioner<J::Key> + Clone + 'static,
        F: Fn(&J::Key, &J::Output, &mut dyn Write) -> io::Result<()> + Send + Sync + 'static,
    {
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
        let staging = parent.join(format!(".{name}.partial-cluster"));
        let runner = Arc::new(self.clone());
        let job = Arc::new(job);
        let format = Arc::new(format);
        let input = input.clone();
        let local = cluster.threads_per_process();
        let (st, out) = (staging.clone(), dir.to_path_buf());
        let results = execute(cluster, move |worker| {
            let out_err = |path: &Path| {
                let path = path.to_path_buf();
                move |source| JobError::Output { path, source }
            };
            let sink = DirSink {
                dir: st.clone(),
                format: &*format,
            };
            let first = worker.index() == 0;
            let (st, out) = (&st, &out);
            runner.worker_body(worker, &*job, &input, &sink, local, |stage| match stage {
                // Before reducing: every worker makes sure the staging
                // directory exists (parts of an earlier failed attempt
                // are overwritten).
                Stage::Reduce => std::fs::create_dir_all(st).map_err(out_err(st)),
                // After every worker reduced: worker 0 publishes.
                Stage::Publish(ok) if first => {
                    if !ok {
                        let _ = std::fs::remove_dir_all(st);
                        return Ok(());
                    }
                    std::fs::File::create(st.join("_SUCCESS"))
                        .and_then(|f| f.sync_all())
                        .map_err(out_err(st))?;
                    std::fs::rename(st, out).map_err(out_err(out))
                }
                Stage::Publish(_) => Ok(()),
            })
        })?;
        let counters = results
            .into_iter()
            .next_back()
            .map(|r| r.1)
            .unwrap_or_default();
        let parts = (0..self.partitions)
            .map(|p| dir.join(part_name(p)))
            .collect();
        Ok((parts, counters))
    }

    /// One worker's share of a runner: one map thread, and the process's
    /// memory budget split between its workers.
    fn for_worker(&self, local_workers: usize) -> Self
    where
        P: Clone,
    {
        let mut r = self.clone();
        r.threads = 1;
        r.memory_budget = (self.memory_budget / local_workers as u64).max(1);
        r.progress_bar = false;
        r
    }

    /// One worker: map its splits, exchange, reduce its partitions into
    /// `sink`. `hook` runs before the reduce and, with whether all workers
    /// succeeded, after the last barrier.
    #[allow(clippy::too_many_lines)]
    fn worker_body<J, S>(
        &self,
        worker: &mut Worker,
        job: &J,
        input: &TextInput,
        sink: &S,
        local_workers: usize,
        hook: impl Fn(Stage) -> Result<(), JobError>,
    ) -> Result<WorkerDone<S::Done>, JobError>
    where
        J: Job<Record = [u8]>,
        P: Partitioner<J::Key> + Clone,
        S: PartSink<J::Key, J::Output>,
    {
        let me = worker.index();
        let peers = worker.peers();
        let runner = self.for_worker(local_workers);
        let received: Rc<RefCell<Vec<Msg>>> = Rc::default();
        let (mut handle, probe) = worker.dataflow::<u32, _, _>(|scope| {
            let (handle, stream) = scope.new_input::<Vec<Msg>>();
            let sink = Rc::clone(&received);
            let (probe, _) = stream
                .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|m: &Msg| m.dest()),
                    "Inbox",
                    move |cap, _| {
                        // Holds nothing back: the probe then tells when
                        // every message of a round has been taken in.
                        drop(cap);
                        move |input, _output| {
                            input.for_each(|_, data| sink.borrow_mut().append(data));
                        }
                    },
                )
                .probe();
            (handle, probe)
        });
        // Round 0 is a start barrier: every worker starts mapping once all
        // have started (timely's connection setup may start one process's
        // workers a second before another's), and `started` is then the
        // same moment everywhere.
        handle.advance_to(1);
        while probe.less_than(&1) {
            worker.step_or_park(Some(std::time::Duration::from_millis(1)));
        }
        let started = self.clock.now_nanos();
        let status =
            |stage: u8, plan: Option<(u64, u64)>, error: Option<String>, counters: &Counters| {
                (0..peers)
                    .map(|dest| {
                        Msg::Status(Status {
                            dest: dest as u32,
                            from: me as u32,
                            stage,
                            plan,
                            error: error.clone(),
                            counters: counters.iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                        })
                    })
                    .collect::<Vec<_>>()
            };
        let mut statuses: Vec<Status> = Vec::new();
        let mut counters = Counters::new();

        // Stage 0: plan, map, send.
        let setup = TextFeed::plan(input, self.split_size, peers).and_then(|feed| {
            let state = runner.job_state(Some(feed.total()), None)?;
            Ok((feed, state))
        });
        let (feed, state) = match setup {
            Ok(v) => v,
            Err(e) => {
                for m in status(0, None, Some(e.to_string()), &counters) {
                    handle.send(m);
                }
                return Err(e);
            }
        };
        let plan = (feed.len() as u64, feed.total());
        let assigned = Assigned {
            feed: &feed,
            splits: (me..feed.len()).step_by(peers).collect(),
        };
        let (mut outputs, _) = runner.map_phase(job, &assigned, &state);
        let mut error = state.failure.lock().take();
        counters.merge(&state.user.lock());
        counters.add(INPUT_BYTES, state.counters.bytes.load(Ordering::Relaxed));
        counters.add(
            INPUT_RECORDS,
            state.counters.records.load(Ordering::Relaxed),
        );
        let mut inbox = Inbox::new(&state.spill, runner.retained_limit());
        let drain = |inbox: &mut Inbox<'_>, statuses: &mut Vec<Status>| -> io::Result<()> {
            for m in received.borrow_mut().drain(..) {
                match m {
                    Msg::Frames {
                        partition,
                        split,
                        source,
                        seq,
                        values,
                        bytes,
                        ..
                    } => inbox.push(partition, split, source, seq, values, bytes)?,
                    Msg::Status(s) => statuses.push(s),
                }
            }
            Ok(())
        };
        if error.is_none() {
            let by_hash = !self.partitioner.is_ordered();
            let (mut sent, mut remote) = (0u64, 0u64);
            let mut send = |m: Msg, worker: &mut Worker| {
                if let Msg::Frames { dest, bytes, .. } = &m {
                    sent += bytes.len() as u64;
                    if *dest as usize != me {
                        remote += bytes.len() as u64;
                    }
                }
                handle.send(m);
                worker.step();
            };
            let mut r = Ok(());
            for out in &mut outputs {
                if let Some(m) = out.mem.as_mut() {
                    m.sort(by_hash);
                }
                let split = assigned.splits[out.task] as u64;
                r = send_task(out, split, self.partitions, peers, &mut |m| send(m, worker));
                if r.is_err() {
                    break;
                }
                if let Err(e) = drain(&mut inbox, &mut statuses) {
                    r = Err(e.into());
                    break;
                }
            }
            if let Err(source) = r {
                error = Some(JobError::MapFailed {
                    split: "(sending map output)".into(),
                    attempts: 1,
                    source,
                });
            }
            counters.add(EXCHANGE_BYTES, sent);
            counters.add(EXCHANGE_REMOTE_BYTES, remote);
        }
        drop(outputs);
        for m in status(
            0,
            Some(plan),
            error.as_ref().map(ToString::to_string),
            &counters,
        ) {
            handle.send(m);
        }
        handle.advance_to(2);
        let mut r = Ok(());
        while probe.less_than(&2) {
            worker.step_or_park(Some(std::time::Duration::from_millis(1)));
            if r.is_ok() {
                r = drain(&mut inbox, &mut statuses);
            }
        }
        r.and_then(|()| drain(&mut inbox, &mut statuses))
            .and_then(|()| inbox.finish())
            .map_err(|source| JobError::Spill { source })?;
        if let Some(e) = error {
            return Err(e);
        }
        check_statuses(&statuses, 0, peers, plan)?;

        // Stage 1: reduce this worker's partitions.
        let reduced = hook(Stage::Reduce)
            .and_then(|()| runner.reduce_received(job, &inbox, sink, me, peers, &state));
        let err = reduced.as_ref().err().map(ToString::to_string);
        let mut reduce_counters = reduced.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
        let ran = self.clock.now_nanos().saturating_sub(started);
        reduce_counters.add(WORKER_NANOS, ran);
        for m in status(1, Some(plan), err, &reduce_counters) {
            handle.send(m);
        }
        drop(handle);
        while !probe.done() {
            worker.step_or_park(Some(std::time::Duration::from_millis(1)));
        }
        drain(&mut inbox, &mut statuses).map_err(|source| JobError::Spill { source })?;
        let (parts, _) = reduced?;
        let ok = check_statuses(&statuses, 1, peers, plan);
        hook(Stage::Publish(ok.is_ok()))?;
        ok?;
        // Every worker sent its map counters with its stage-0 status and
        // its reduce counters with its stage-1 status to every worker.
        let mut all = Counters::new();
        for s in &statuses {
            for (k, v) in &s.counters {
                all.add(k, *v);
            }
        }
        Ok((parts, all))
    }

    /// Merges and reduces the partitions this worker owns from its inbox.
    fn reduce_received<J, S>(
        &self,
        job: &J,
        inbox: &Inbox<'_>,
        sink: &S,
        me: usize,
        peers: usize,
        state: &JobState,
    ) -> Result<WorkerDone<S::Done>, JobError>
    where
        J: Job,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let board = TaskBoard::new(0, 1);
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        let mut done = Vec::new();
        let mut all = Counters::new();
        for p in (me..self.partitions).step_by(peers) {
            let r = self.with_retries(&board, || {
                let sources: Vec<Source<'_, J::Key, J::Value>> = inbox
                    .sources(p as u32)
                    .into_iter()
                    .map(Source::Received)
                    .collect();
                let mut merger = Merger::new(sources, self.merge_hasher::<J::Key>())?;
                let mut w = sink.open(p)?;
                let mut counters = Counters::new();
                while let Some((key, values)) = merger.next_group(&combine)? {
                    let out = reduce_group(job, key, values, &mut counters)?;
                    sink.write(&mut w, merger.take_key(), out)?;
                }
                Ok((sink.close(w)?, counters))
            });
            match r {
                Ok((d, counters)) => {
                    all.merge(&counters);
                    done.push((p, d));
                    state.partitions_done.fetch_add(1, Ordering::Relaxed);
                }
                Err((attempts, source)) => {
                    return Err(JobError::ReduceFailed {
                        partition: p,
                        attempts,
                        source,
                    })
                }
            }
        }
        Ok((done, all))
    }
}

/// Where a worker is, for the hook of [`Runner::worker_body`].
enum Stage {
    /// About to reduce.
    Reduce,
    /// Every worker has reduced (`true`) or some failed (`false`).
    Publish(bool),
}

/// Sends one map task's output: for each of its sorted sources (spill runs
/// in order, then the in-memory run) and each partition, the frames in
/// batches to the partition's owner.
fn send_task<K: Codec + Clone, V: Codec + Clone>(
    out: &TaskOutput<'_, K, V>,
    split: u64,
    partitions: usize,
    peers: usize,
    send: &mut dyn FnMut(Msg),
) -> Result<(), TaskError> {
    let mut source = 0u32;
    for run in &out.runs {
        for p in 0..partitions {
            let Some(mut seg) = run.segment::<K, V>(p)? else {
                continue;
            };
            let mut b = Batcher::new(p, split, source, peers);
            while let Some((k, first, rest)) = seg.next_entry()? {
                let vals = std::iter::once(&first).chain(rest.iter());
                b.frame(&k, 1 + rest.len(), vals, send)?;
            }
            b.flush(send);
        }
        source += 1;
    }
    if let Some(m) = &out.mem {
        for (p, entries) in m.partitions() {
            let mut b = Batcher::new(p, split, source, peers);
            for e in entries {
                b.frame(&e.key, e.value_count(&m.more), e.values(&m.more), send)?;
            }
            b.flush(send);
        }
    }
    Ok(())
}

/// Collects the frames of one source and partition into batches.
struct Batcher {
    partition: u32,
    dest: u32,
    split: u64,
    source: u32,
    seq: u32,
    values: u64,
    bytes: Vec<u8>,
}

impl Batcher {
    fn new(partition: usize, split: u64, source: u32, peers: usize) -> Self {
        Self {
            partition: partition as u32,
            dest: (partition % peers) as u32,
            split,
            source,
            seq: 0,
            values: 0,
            bytes: Vec::new(),
        }
    }

    fn frame<'v, K: Codec, V: Codec + 'v>(
        &mut self,
        key: &K,
        count: usize,
        values: impl Iterator<Item = &'v V>,
        send: &mut dyn FnMut(Msg),
    ) -> Result<(), TaskError> {
        encode_frame(&mut self.bytes, key, count, values)?;
        self.values += count as u64;
        if self.bytes.len() >= BATCH {
            self.flush(send);
        }
        Ok(())
    }

    fn flush(&mut self, send: &mut dyn FnMut(Msg)) {
        if self.bytes.is_empty() {
            return;
        }
        send(Msg::Frames {
            dest: self.dest,
            partition: self.partition,
            split: self.split,
            source: self.source,
            seq: self.seq,
            values: std::mem::take(&mut self.values),
            bytes: std::mem::take(&mut self.bytes),
        });
        self.seq += 1;
    }
}

/// Checks that every worker reported `stage` without an error and with
/// the same plan.
fn check_statuses(
    statuses: &[Status],
    stage: u8,
    peers: usize,
    plan: (u64, u64),
) -> Result<(), JobError> {
    let mut seen = vec![false; peers];
    for s in statuses.iter().filter(|s| s.stage == stage) {
        if let Some(e) = &s.error {
            return Err(ClusterError::PeerFailed {
                worker: s.from as usize,
                message: e.clone(),
            }
            .into());
        }
        if s.plan != Some(plan) {
            return Err(ClusterError::Mismatch {
                what: format!(
                    "the input: worker {} sees {:?} (splits, bytes), this one {plan:?}",
                    s.from, s.plan
                ),
            }
            .into());
        }
        if let Some(x) = seen.get_mut(s.from as usize) {
            *x = true;
        }
    }
    if let Some(w) = seen.iter().position(|s| !s) {
        return Err(ClusterError::PeerFailed {
            worker: w,
            message: "stopped without reporting".into(),
        }
        .into());
    }
    Ok(())
}
