//! The map phase: map tasks over splits on the task board, each filling
//! its buffer and spilling sorted runs when over its share of the budget.

use super::{spawn_workers, JobState, Runner, TICK};
use crate::board::TaskBoard;
use crate::buffer::{MapBuffer, MemRun};
use crate::codec::Codec;
use crate::counters::Counters;
use crate::error::{JobError, TaskError};
use crate::input::Feed;
use crate::job::{Emitter, Job};
use crate::partition::Partitioner;
use crate::progress::Phase;
use crate::spill::{DiskRun, SpillDir};
use crate::sync::{scope, AtomicUsize, Mutex, Ordering};

/// What one map task leaves for the reduce phase.
pub(super) struct TaskOutput<'s, K, V> {
    pub(super) task: usize,
    pub(super) runs: Vec<DiskRun<'s>>,
    pub(super) mem: Option<MemRun<K, V>>,
}

/// What a successful map attempt returns: its spill runs, its in-memory
/// run, and its counters.
type MapDone<'s, K, V> = (Vec<DiskRun<'s>>, Option<MemRun<K, V>>, Counters);

/// Every map task's output, in split order.
pub(super) type TaskOutputs<'s, J> = Vec<TaskOutput<'s, <J as Job>::Key, <J as Job>::Value>>;

impl<P> Runner<P> {
    /// Runs the map tasks; returns their outputs in split order and the
    /// number of tasks finished. A task that fails on every attempt is
    /// recorded in `state` and cancels the phase.
    pub(super) fn map_phase<'s, J, Fd>(
        &self,
        job: &J,
        feed: &Fd,
        state: &'s JobState,
    ) -> (TaskOutputs<'s, J>, usize)
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
    {
        let map_threads = feed
            .splits()
            .map_or(self.threads, |s| s.clamp(1, self.threads));
        let board = TaskBoard::new(feed.splits().unwrap_or(usize::MAX), map_threads);
        let outputs: Mutex<Vec<TaskOutput<'_, J::Key, J::Value>>> = Mutex::new(Vec::new());
        let retained = AtomicUsize::new(0);
        // Distinct keys of the largest finished task: later tasks start
        // with a table that size instead of growing one step at a time.
        let capacity_hint = AtomicUsize::new(0);
        let work = || {
            while let Some((idx, split)) = feed.next_split(&board) {
                let r = self.with_retries(&board, || {
                    self.map_attempt(job, feed, &split, &board, state, &retained, &capacity_hint)
                });
                match r {
                    Ok((runs, mem, counters)) => {
                        state.user.lock().merge(&counters);
                        outputs.lock().push(TaskOutput {
                            task: idx,
                            runs,
                            mem,
                        });
                    }
                    Err((attempts, source)) => {
                        state.fail(source, |source| JobError::MapFailed {
                            split: feed.name(&split),
                            attempts,
                            source,
                        });
                        board.cancel();
                    }
                }
                board.complete();
            }
        };
        scope(|s| {
            spawn_workers(s, map_threads, &board, state, &work);
            while !board.wait_for(TICK) {
                self.report(state, Phase::Map, board.completed(), false);
            }
        });
        let mut outputs = outputs.into_inner();
        outputs.sort_unstable_by_key(|o| o.task);
        (outputs, board.completed())
    }

    /// Per-task share of the budget before a running task spills.
    fn task_share(&self) -> usize {
        let b = usize::try_from(self.memory_budget).unwrap_or(usize::MAX);
        (b / (2 * self.threads)).max(1)
    }

    /// Budget for finished tasks' output kept in memory.
    pub(super) fn retained_limit(&self) -> usize {
        usize::try_from(self.memory_budget).unwrap_or(usize::MAX) / 2
    }

    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn map_attempt<'s, J, Fd>(
        &self,
        job: &J,
        feed: &Fd,
        split: &Fd::Split,
        board: &TaskBoard,
        state: &'s JobState,
        retained: &AtomicUsize,
        capacity_hint: &AtomicUsize,
    ) -> Result<MapDone<'s, J::Key, J::Value>, TaskError>
    where
        J: Job,
        Fd: Feed<J::Record>,
        P: Partitioner<J::Key>,
    {
        let (live, spill) = (&state.counters, &state.spill);
        let r = self.partitions;
        let share = self.task_share();
        let by_hash = !self.partitioner.is_ordered();
        let hint = capacity_hint
            .load(Ordering::Relaxed)
            .min(share / MapBuffer::<J::Key, J::Value>::entry_cost());
        let mut buf = MapBuffer::<J::Key, J::Value>::new(r, hint, &state.hashers);
        let mut runs = Vec::new();
        let mut counters = Counters::new();
        let combine = |k: &J::Key, acc: &mut J::Value, v: J::Value| job.combine(k, acc, v);
        feed.for_each(
            split,
            board,
            &live.bytes,
            &live.records,
            |record, origin| {
                let mut em = Emitter {
                    buf: &mut buf,
                    combine: &combine,
                    partitioner: &self.partitioner,
                    origin,
                    counters: &mut counters,
                };
                job.map(record, &mut em)?;
                if let Some(e) = buf.error.take() {
                    return Err(e);
                }
                if buf.bytes > share {
                    runs.push(write_run(spill, r, &buf.take_sorted(by_hash))?);
                }
                Ok(())
            },
        )?;
        if buf.is_empty() {
            return Ok((runs, None, counters));
        }
        capacity_hint.fetch_max(buf.len(), Ordering::Relaxed);
        // Sorted only if it has to be spilled, or later if another task
        // spilled (see `reduce_phase`).
        let mut run = buf.take_grouped();
        let limit = self.retained_limit();
        let kept = retained
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let next = cur.checked_add(run.bytes)?;
                (next <= limit).then_some(next)
            })
            .is_ok();
        if kept {
            Ok((runs, Some(run), counters))
        } else {
            run.sort(by_hash);
            runs.push(write_run(spill, r, &run)?);
            Ok((runs, None, counters))
        }
    }
}

/// Writes a task's sorted buffer as one run (R = `partitions`).
fn write_run<'s, K: Codec, V: Codec>(
    spill: &'s SpillDir,
    partitions: usize,
    run: &MemRun<K, V>,
) -> Result<DiskRun<'s>, TaskError> {
    let mut w = spill.writer::<K, V>(partitions)?;
    for (p, entries) in run.partitions() {
        for e in entries {
            w.write(p, &e.key, e.value_count(&run.more), e.values(&run.more))?;
        }
    }
    Ok(w.finish()?)
}
