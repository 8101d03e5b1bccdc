//! The reduce phase: each partition's map outputs grouped in a hash table
//! when all of them stayed in memory, else merged from sorted runs (in
//! rounds of at most `MAX_FAN_IN` sources), then reduced into the sink.

use super::map::{TaskOutput, TaskOutputs};
use super::sink::PartSink;
use super::{spawn_workers, JobState, Runner, TICK};
use crate::board::TaskBoard;
use crate::buffer::{Entry, MemRun};
use crate::codec::Codec;
use crate::counters::Counters;
use crate::error::{JobError, TaskError};
use crate::job::Job;
use crate::job::Values;
use crate::merge::{group_in_memory, GroupValues, Merger, Source};
use crate::partition::Partitioner;
use crate::progress::Phase;
use crate::spill::{DiskRun, RunWriter, SpillDir};
use crate::sync::{scope, Mutex, Ordering};

/// A reduce task merges at most this many sorted sources at once; beyond
/// that, groups of sources are first merged into new runs.
const MAX_FAN_IN: usize = 64;

impl<P> Runner<P> {
    /// Reduces every partition; returns each partition's finished sink
    /// output (`None` where it failed). A partition that fails on every
    /// attempt is recorded in `state` and cancels the phase.
    pub(super) fn reduce_phase<'s, J, S>(
        &self,
        job: &J,
        mut outputs: TaskOutputs<'s, J>,
        sink: &S,
        state: &'s JobState,
        splits_done: usize,
    ) -> Vec<Option<S::Done>>
    where
        J: Job,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        // Without spill runs, each partition is grouped in a hash table;
        // with them, it is a k-way merge, which needs sorted in-memory runs.
        let in_memory = outputs.iter().all(|o| o.runs.is_empty());
        if !in_memory {
            let by_hash = !self.partitioner.is_ordered();
            for m in outputs.iter_mut().filter_map(|o| o.mem.as_mut()) {
                m.sort(by_hash);
            }
        }
        // No more workers than partitions: the rest would find no task.
        let threads = self.threads.min(self.partitions);
        let rboard = TaskBoard::new(self.partitions, threads);
        let done: Mutex<Vec<Option<S::Done>>> =
            Mutex::new((0..self.partitions).map(|_| None).collect());
        let tasks = &outputs;
        let work = || {
            while let Some(p) = rboard.claim() {
                let r = self.with_retries(&rboard, || {
                    if in_memory {
                        let table = &state.hashers.table;
                        self.reduce_in_memory(job, tasks, p, sink, table, &rboard)
                    } else {
                        self.reduce_attempt(job, tasks, p, sink, &state.spill, &rboard)
                    }
                });
                match r {
                    Ok((d, counters)) => {
                        state.user.lock().merge(&counters);
                        done.lock()[p] = Some(d);
                        state.partitions_done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err((attempts, source)) => {
                        state.fail(source, |source| JobError::ReduceFailed {
                            partition: p,
                            attempts,
                            source,
                        });
                        rboard.cancel();
                    }
                }
                rboard.complete();
            }
        };
        scope(|s| {
            spawn_workers(s, threads, &rboard, state, &work);
            while !rboard.wait_for(TICK) {
                self.report(state, Phase::Reduce, splits_done, false);
            }
        });
        drop(outputs);
        done.into_inner()
    }

    /// Runs are sorted by (hash, key) unless the partitioner promises
    /// ordered partitions: integer comparisons are cheaper, and the final
    /// in-memory result is sorted by key anyway.
    pub(super) fn merge_hasher<K>(&self) -> Option<ahash::RandomState>
    where
        P: Partitioner<K>,
    {
        (!self.partitioner.is_ordered()).then(crate::buffer::stable_hasher)
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
        table: &ahash::RandomState,
        board: &TaskBoard,
    ) -> Result<(S::Done, Counters), TaskError>
    where
        J: Job,
        P: Partitioner<J::Key>,
        S: PartSink<J::Key, J::Output>,
    {
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        let mut counters = Counters::new();
        let runs: Vec<&MemRun<J::Key, J::Value>> =
            outputs.iter().filter_map(|o| o.mem.as_ref()).collect();
        let mut groups = group_in_memory(&runs, p, table, &combine, || board.is_cancelled())?;
        if self.partitioner.is_ordered() || sink.sorts_by_key() {
            groups.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        } else {
            groups.sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.key.cmp(&b.key)));
        }
        let mut w = sink.open(p)?;
        for (n, g) in groups.into_iter().enumerate() {
            let mut values = g.values;
            values.push(g.last);
            let out = job.reduce_iter(&g.key, Values::from(values), &mut counters)?;
            sink.write(&mut w, g.key, out)?;
            if n % 4096 == 4095 && board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
        }
        Ok((sink.close(w)?, counters))
    }

    fn reduce_attempt<'s, J, S>(
        &self,
        job: &J,
        outputs: &[TaskOutput<'s, J::Key, J::Value>],
        p: usize,
        sink: &S,
        spill: &'s SpillDir,
        board: &TaskBoard,
    ) -> Result<(S::Done, Counters), TaskError>
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
                    write_chunked(&mut w, k, vs)?;
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
        let mut counters = Counters::new();
        let mut n = 0u64;
        while let Some((key, values)) = merger.next_group(&combine)? {
            let out = reduce_group(job, key, values, &mut counters)?;
            sink.write(&mut w, merger.take_key(), out)?;
            n += 1;
            if n.is_multiple_of(4096) && board.is_cancelled() {
                return Err(TaskError::Cancelled);
            }
        }
        let done = sink.close(w)?;
        drop(premerged);
        Ok((done, counters))
    }
}

/// Reduces one merged key: its values are streamed to
/// [`Job::reduce_iter`]; a read error while streaming fails the attempt
/// whatever the reducer returned. The key then comes from
/// [`Merger::take_key`].
pub(super) fn reduce_group<J: Job>(
    job: &J,
    key: &J::Key,
    mut values: GroupValues<'_, '_, J::Key, J::Value>,
    counters: &mut Counters,
) -> Result<J::Output, TaskError> {
    let out = job.reduce_iter(key, Values::stream(&mut values), counters);
    values.finish()?;
    out
}

/// Writes one merged key's values as frames of at most about
/// [`FRAME_BYTES`] of values each, so that a hot key's frame is never
/// held whole (the merge reads consecutive frames of one key from one
/// run in order, as one key).
fn write_chunked<K, V>(
    w: &mut RunWriter<'_, K, V>,
    key: &K,
    mut values: GroupValues<'_, '_, K, V>,
) -> Result<(), TaskError>
where
    K: Ord + std::hash::Hash + Clone + Codec,
    V: Clone + Codec,
{
    let mut chunk: Vec<V> = Vec::new();
    let mut bytes = 0usize;
    for v in values.by_ref() {
        bytes += std::mem::size_of::<V>() + v.heap_bytes();
        chunk.push(v);
        if bytes >= FRAME_BYTES {
            w.write(0, key, chunk.len(), chunk.iter())?;
            chunk.clear();
            bytes = 0;
        }
    }
    values.finish()?;
    if !chunk.is_empty() {
        w.write(0, key, chunk.len(), chunk.iter())?;
    }
    Ok(())
}

/// The values a premerged frame holds at most (estimated as the memory
/// budget does).
const FRAME_BYTES: usize = 1 << 20;

/// A sorted source of one partition, not yet opened.
enum Spec<'a, 's, K, V> {
    Mem(&'a [Entry<K, V>], &'a [Vec<V>]),
    Disk(&'a DiskRun<'s>, usize),
}

impl<'a, K: Codec, V: Codec> Spec<'a, '_, K, V> {
    fn open(&self) -> Result<Source<'a, K, V>, TaskError> {
        match self {
            Self::Mem(s, more) => Ok(Source::mem(s, more)),
            Self::Disk(run, p) => run
                .segment(*p)?
                .map(Source::Disk)
                .ok_or_else(|| TaskError::msg("empty spill segment")),
        }
    }
}
