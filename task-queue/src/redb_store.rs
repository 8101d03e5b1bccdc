//! `RedbStore`: the durable store, on the redb embedded database, with
//! group commit.
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

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use redb::{
    Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable, TableDefinition, TableError,
};

use crate::error::StoreError;
use crate::record::TaskRecord;
use crate::store::{Recovered, Store, StoreOp, Ticket};
use crate::sync::{thread, Arc, Condvar, Mutex};

const TASKS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("task_queue.tasks");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("task_queue.meta");
const FORMAT_KEY: &str = "format";
const FORMAT: &[u8] = b"sysblocks-task-queue/1";
const NEXT_ID_KEY: &str = "next_id";

/// The longest appends that nobody waits for stay uncommitted.
const LAZY_DELAY: Duration = Duration::from_millis(10);
/// Unwaited appends (ops) that start a commit without waiting for
/// [`LAZY_DELAY`].
const LAZY_OPS: usize = 4096;
/// The longest the committer waits for the last groups' waiters to return.
const MAX_LINGER: Duration = Duration::from_micros(500);
/// How many recent group sizes the linger target remembers.
const GROUPS: usize = 8;

fn db_error(e: impl fmt::Display) -> StoreError {
    StoreError::Database {
        detail: e.to_string(),
    }
}

struct CommitState {
    batch: Vec<StoreOp>,
    /// Tickets handed out so far (ticket n is the n-th append).
    appended: u64,
    /// Every ticket up to this one has been committed, or has failed.
    settled: u64,
    /// The first ticket of the first failed commit, and why. The store
    /// refuses everything from then on: it never guesses what is on disk.
    failed: Option<(u64, StoreError)>,
    next_id: u64,
    commits: u64,
    shutdown: bool,
    /// The last ticket a commit has taken (it may still be on the disk).
    taken: u64,
    /// `wait` calls for tickets above `taken`.
    waiting: usize,
    /// Waiters of the last few commits (a ring); their maximum is the
    /// linger target, so one short group does not shrink the next ones.
    recent_groups: [usize; GROUPS],
    /// Commits so far that had waiters (the ring's write position).
    grouped_commits: usize,
    /// How long the last commit took.
    last_commit: Duration,
}

struct Shared {
    db: Database,
    state: Mutex<CommitState>,
    work: Condvar,
    done: Condvar,
}

/// A durable [`Store`] in one redb database file, with group commit.
///
/// Opening a file that is not a task-queue store (another redb database, or
/// not a database at all) fails with [`StoreError::Foreign`]; the file is
/// never reset.
///
/// # Examples
///
/// ```
/// use sysblocks_task_queue::{RedbStore, Task, TaskQueue};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tasks.redb");
/// {
///     let q = TaskQueue::builder().store(RedbStore::open(&path).unwrap()).build().unwrap();
///     q.submit(Task::new("encode")).unwrap();
/// }
/// // A new process (here: a new queue) finds the task again.
/// let q = TaskQueue::builder().store(RedbStore::open(&path).unwrap()).build().unwrap();
/// assert_eq!(q.lease().unwrap().payload(), b"encode");
/// ```
///
/// Clones share the database and its committer thread, which stops (after
/// committing what is pending) when the last clone is dropped.
#[derive(Clone)]
pub struct RedbStore {
    shared: Arc<Shared>,
    _committer: Arc<Committer>,
    path: String,
}

/// Owns the committer thread: dropping it commits what is pending and stops
/// the thread.
struct Committer {
    shared: Arc<Shared>,
    handle: Mutex<Option<thread::JoinHandle<()>>>,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .field("commits", &self.commits())
            .finish()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating it if the file does not exist
    /// (or is empty).
    ///
    /// # Errors
    ///
    /// [`StoreError::Foreign`] if the file is not a task-queue store,
    /// [`StoreError::Database`] if it cannot be opened (for example: it is
    /// open in another process).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let fresh = match std::fs::metadata(path) {
            Ok(m) => m.len() == 0,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(db_error(e)),
        };
        let foreign = |detail: String| StoreError::Foreign {
            path: shown.clone(),
            detail,
        };
        let db = if fresh {
            let db = Database::create(path).map_err(db_error)?;
            let txn = db.begin_write().map_err(db_error)?;
            {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                meta.insert(FORMAT_KEY, FORMAT).map_err(db_error)?;
                meta.insert(NEXT_ID_KEY, &0u64.to_le_bytes()[..])
                    .map_err(db_error)?;
                txn.open_table(TASKS).map_err(db_error)?;
            }
            txn.commit().map_err(db_error)?;
            db
        } else {
            // Look before touching: a read-only open writes nothing, so a
            // foreign file is refused unchanged. A file that needs repair
            // (its last writer was killed) cannot be opened read-only; it
            // is opened for writing (redb repairs it) and checked then.
            let not_redb = |e: redb::DatabaseError| match e {
                redb::DatabaseError::Storage(s) => foreign(format!("not a redb database ({s})")),
                other => db_error(other),
            };
            match ReadOnlyDatabase::open(path) {
                Ok(ro) => {
                    check_format(&ro, &foreign)?;
                    ro.close().map_err(db_error)?;
                    Database::open(path).map_err(not_redb)?
                }
                Err(redb::DatabaseError::RepairAborted) => {
                    let db = Database::open(path).map_err(not_redb)?;
                    check_format(&db, &foreign)?;
                    db
                }
                Err(e) => return Err(not_redb(e)),
            }
        };
        let shared = Arc::new(Shared {
            db,
            state: Mutex::new(CommitState {
                batch: Vec::new(),
                appended: 0,
                settled: 0,
                failed: None,
                next_id: 0,
                commits: 0,
                shutdown: false,
                taken: 0,
                waiting: 0,
                recent_groups: [0; GROUPS],
                grouped_commits: 0,
                last_commit: Duration::ZERO,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let handle = thread::spawn(move || committer_loop(&worker));
        Ok(Self {
            _committer: Arc::new(Committer {
                shared: Arc::clone(&shared),
                handle: Mutex::new(Some(handle)),
            }),
            shared,
            path: shown,
        })
    }

    /// How many write transactions (each one fsync'd commit) the store has
    /// made. With group commit this is below the number of appends.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.shared.state.lock().commits
    }

    /// How many appends (tickets) the store has taken.
    #[must_use]
    pub fn appends(&self) -> u64 {
        self.shared.state.lock().appended
    }
}

/// Checks that `db` holds the task-queue tables and format marker.
fn check_format(
    db: &impl ReadableDatabase,
    foreign: &dyn Fn(String) -> StoreError,
) -> Result<(), StoreError> {
    let txn = db.begin_read().map_err(db_error)?;
    let meta = txn.open_table(META).map_err(|e| match e {
        TableError::TableDoesNotExist(_) => {
            foreign("a redb database without task-queue tables".into())
        }
        TableError::TableTypeMismatch { .. } => {
            foreign("a redb database with other tables of the same name".into())
        }
        other => db_error(other),
    })?;
    match meta.get(FORMAT_KEY).map_err(db_error)? {
        Some(f) if f.value() == FORMAT => Ok(()),
        Some(f) => Err(foreign(format!(
            "unknown format {:?}",
            String::from_utf8_lossy(f.value())
        ))),
        None => Err(foreign("no format marker".into())),
    }
}

fn committer_loop(shared: &Shared) {
    loop {
        let (ops, first, last, next_id) = {
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
            (ops, st.settled + 1, st.appended, st.next_id)
        };
        let started = Instant::now();
        let result = if ops.is_empty() {
            Ok(())
        } else {
            write_batch(&shared.db, &ops, next_id)
        };
        let took = started.elapsed();
        let mut st = shared.state.lock();
        st.settled = last;
        if !ops.is_empty() {
            st.last_commit = took;
        }
        match result {
            Ok(()) => {
                if !ops.is_empty() {
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

fn write_batch(db: &Database, ops: &[StoreOp], next_id: u64) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(db_error)?;
    {
        let mut tasks = txn.open_table(TASKS).map_err(db_error)?;
        for op in ops {
            match op {
                StoreOp::Put(rec) => {
                    tasks
                        .insert(rec.id.0, rec.encode().as_slice())
                        .map_err(db_error)?;
                }
                StoreOp::Delete(id) => {
                    tasks.remove(id.0).map_err(db_error)?;
                }
            }
        }
        let mut meta = txn.open_table(META).map_err(db_error)?;
        let stored = meta
            .get(NEXT_ID_KEY)
            .map_err(db_error)?
            .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0);
        if next_id > stored {
            meta.insert(NEXT_ID_KEY, &next_id.to_le_bytes()[..])
                .map_err(db_error)?;
        }
    }
    txn.commit().map_err(db_error)
}

impl Store for RedbStore {
    fn load(&self) -> Result<Recovered, StoreError> {
        let txn = self.shared.db.begin_read().map_err(db_error)?;
        let tasks = txn.open_table(TASKS).map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let mut next_id = match meta.get(NEXT_ID_KEY).map_err(db_error)? {
            Some(v) => {
                let bytes: [u8; 8] = v.value().try_into().map_err(|_| StoreError::Corrupt {
                    detail: "next_id is not 8 bytes".into(),
                })?;
                u64::from_le_bytes(bytes)
            }
            None => 0,
        };
        let mut records = Vec::new();
        for item in tasks.iter().map_err(db_error)? {
            let (k, v) = item.map_err(db_error)?;
            let rec = TaskRecord::decode(v.value())?;
            if rec.id.0 != k.value() {
                return Err(StoreError::Corrupt {
                    detail: format!("record under key {} says id {}", k.value(), rec.id.0),
                });
            }
            next_id = next_id.max(rec.id.0.saturating_add(1));
            records.push(rec);
        }
        self.shared.state.lock().next_id = next_id;
        Ok(Recovered { records, next_id })
    }

    fn append(&self, ops: Vec<StoreOp>) -> Result<Ticket, StoreError> {
        let mut st = self.shared.state.lock();
        if let Some((_, e)) = &st.failed {
            return Err(e.clone());
        }
        if st.shutdown {
            return Err(StoreError::Closed);
        }
        // The committer needs a nudge for the first unwaited op (to start
        // its lazy timer) and at the lazy limit; waiters nudge it themselves.
        let nudge = st.batch.is_empty() || st.batch.len() + ops.len() >= LAZY_OPS;
        st.batch.extend(ops);
        st.appended += 1;
        let ticket = Ticket(st.appended);
        drop(st);
        if nudge {
            self.shared.work.notify_one();
        }
        Ok(ticket)
    }

    fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut st = self.shared.state.lock();
        if st.taken < ticket.0 {
            // Wanted by the next commit, and one more of its group.
            st.waiting += 1;
            self.shared.work.notify_one();
        }
        while st.settled < ticket.0 {
            self.shared.done.wait(&mut st);
        }
        match &st.failed {
            Some((first, e)) if ticket.0 >= *first => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

impl Drop for Committer {
    /// Commits what is pending, then stops the committer.
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_all();
        if let Some(h) = self.handle.lock().take() {
            let _ = h.join();
        }
    }
}
