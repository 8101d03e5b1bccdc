//! The committer thread: group commit.
//!
//! Appends go to an in-memory batch; one committer thread takes whatever has
//! gathered, writes it in one redb write transaction and commits it with
//! `Durability::Immediate` (fsync), then wakes every waiter whose ticket the
//! commit covered. Submits that arrive while a commit is on the disk share
//! the next one.
//!
//! Two refinements make the groups larger:
//! - appends nobody waits for (leases, completions) do not start a commit
//!   of their own: they ride along with the next waited-for one, or are
//!   committed after [`LAZY_DELAY`] or once [`LAZY_OPS`] have gathered
//!   (losing them to a crash means a redelivery, never a lost task);
//! - when fewer submitters wait than the largest of the last [`GROUPS`]
//!   groups, the committer lingers (at most half the last commit's time,
//!   and at most [`MAX_LINGER`]) until that many are back. Without it, producers that each wait for
//!   their own submit split into two alternating half-groups: the
//!   committer starts the next commit as soon as the first of them has
//!   appended again.
//!
//! A failed commit (an error or a panic inside redb, caught here) fails the
//! store for good: its waiters and every later call get the error, and
//! nothing more is written, because later ops must never be stored without
//! the earlier ones.

use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableTable};

use super::{
    decode_next_id, encode_next_id, guarded, redb_error, Shared, META, NEXT_ID_KEY, TASKS,
};
use crate::error::StoreError;
use crate::store::StoreOp;

/// The longest appends that nobody waits for stay uncommitted.
const LAZY_DELAY: Duration = Duration::from_millis(10);
/// Unwaited appends (ops) that start a commit without waiting for
/// [`LAZY_DELAY`].
pub(super) const LAZY_OPS: usize = 4096;
/// The longest the committer waits for the last groups' waiters to return.
const MAX_LINGER: Duration = Duration::from_micros(500);
/// How many recent group sizes the linger target remembers.
const GROUPS: usize = 8;

#[derive(Default)]
pub(super) struct CommitState {
    pub(super) batch: Vec<StoreOp>,
    /// Tickets handed out so far (ticket n is the n-th append).
    pub(super) appended: u64,
    /// Every ticket up to this one has been committed, or has failed.
    pub(super) settled: u64,
    /// The first ticket of the first failed commit, and why. The store
    /// refuses everything from then on: it never guesses what is on disk.
    pub(super) failed: Option<(u64, StoreError)>,
    pub(super) next_id: u64,
    pub(super) commits: u64,
    pub(super) shutdown: bool,
    /// A queue holds the store (see `Store::claim`).
    pub(super) claimed: bool,
    /// The last ticket a commit has taken (it may still be on the disk).
    pub(super) taken: u64,
    /// `wait` calls for tickets above `taken`.
    pub(super) waiting: usize,
    /// Waiters of the last few commits (a ring); their maximum is the
    /// linger target, so one short group does not shrink the next ones.
    recent_groups: [usize; GROUPS],
    /// Commits so far that had waiters (the ring's write position).
    grouped_commits: usize,
    /// How long the last commit took.
    last_commit: Duration,
}

/// Settles every ticket with an error if the committer thread ends other
/// than by shutdown (a panic that escaped the guards), so that no waiter
/// blocks forever and later calls are refused.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.state.lock();
        if !st.shutdown || st.settled < st.appended {
            if st.failed.is_none() {
                let first = st.settled + 1;
                st.failed = Some((
                    first,
                    StoreError::Database {
                        detail: "the committer thread stopped".into(),
                    },
                ));
            }
            st.settled = st.appended;
            st.batch.clear();
        }
        drop(st);
        self.0.done.notify_all();
    }
}

pub(super) fn committer_loop(shared: &Shared) {
    let _exit = ExitGuard(shared);
    loop {
        let (ops, first, last, next_id, failed) = {
            let mut st = shared.state.lock();
            // Wait for a reason to commit: a waiter, shutdown, or unwaited
            // appends that are old enough or many enough.
            let mut lazy_since: Option<Instant> = None;
            loop {
                if st.appended == st.settled {
                    if st.shutdown {
                        return;
                    }
                    lazy_since = None;
                    shared.work.wait(&mut st);
                    continue;
                }
                if st.waiting > 0 || st.shutdown || st.batch.len() >= LAZY_OPS {
                    break;
                }
                let since = *lazy_since.get_or_insert_with(Instant::now);
                let left = LAZY_DELAY.saturating_sub(since.elapsed());
                if left.is_zero() {
                    break;
                }
                let _ = shared.work.wait_for(&mut st, left);
            }
            // Linger for the rest of the recent groups (see the module docs).
            let target = st.recent_groups.iter().copied().max().unwrap_or(0);
            if st.waiting > 0 && st.waiting < target && !st.shutdown {
                let linger = (st.last_commit / 2).min(MAX_LINGER);
                let start = Instant::now();
                while st.waiting < target && !st.shutdown {
                    let left = linger.saturating_sub(start.elapsed());
                    if left.is_zero() {
                        break;
                    }
                    let _ = shared.work.wait_for(&mut st, left);
                }
            }
            if st.waiting > 0 {
                let at = st.grouped_commits % GROUPS;
                st.recent_groups[at] = st.waiting;
                st.grouped_commits = st.grouped_commits.wrapping_add(1);
            }
            st.waiting = 0;
            st.taken = st.appended;
            let ops = std::mem::take(&mut st.batch);
            for op in &ops {
                if let StoreOp::Put(r) = op {
                    st.next_id = st.next_id.max(r.id.0.saturating_add(1));
                }
            }
            (
                ops,
                st.settled + 1,
                st.appended,
                st.next_id,
                st.failed.is_some(),
            )
        };
        let started = Instant::now();
        let result = if ops.is_empty() || failed {
            // After a failure nothing more is written (see the module docs);
            // the tickets settle with the failure.
            Ok(())
        } else {
            guarded("committing", || {
                write_batch(shared.db(), shared.durability, &ops, next_id)
            })
        };
        let took = started.elapsed();
        let mut st = shared.state.lock();
        st.settled = last;
        if !ops.is_empty() {
            st.last_commit = took;
        }
        match result {
            Ok(()) => {
                if !ops.is_empty() && !failed {
                    st.commits += 1;
                }
            }
            Err(e) => {
                if st.failed.is_none() {
                    st.failed = Some((first, e));
                }
            }
        }
        drop(st);
        shared.done.notify_all();
    }
}

fn write_batch(
    db: &Database,
    durability: Durability,
    ops: &[StoreOp],
    next_id: u64,
) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(redb_error)?;
    txn.set_durability(durability).map_err(super::db_error)?;
    txn.set_two_phase_commit(true);
    {
        let mut tasks = txn.open_table(TASKS).map_err(redb_error)?;
        for op in ops {
            match op {
                StoreOp::Put(rec) => {
                    tasks
                        .insert(rec.id.0, rec.encode().as_slice())
                        .map_err(redb_error)?;
                }
                StoreOp::Delete(id) => {
                    tasks.remove(id.0).map_err(redb_error)?;
                }
            }
        }
        let mut meta = txn.open_table(META).map_err(redb_error)?;
        let stored = match meta.get(NEXT_ID_KEY).map_err(redb_error)? {
            Some(v) => decode_next_id(v.value())?,
            None => 0,
        };
        if next_id > stored {
            meta.insert(NEXT_ID_KEY, &encode_next_id(next_id)[..])
                .map_err(redb_error)?;
        }
    }
    txn.commit().map_err(redb_error)
}
