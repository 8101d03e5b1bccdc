//! `RedbStore`: the durable store, on the redb embedded database, with
//! group commit.
//!
//! This file opens and creates the database file and answers the `Store`
//! calls; the committer thread, which writes what the appends gather, is in
//! `redb_store/committer.rs`, and the power-cut test, over a storage
//! backend that loses every unsynced write, in `redb_store/power_cut.rs`.
//!
//! What is on disk and how it is checked:
//! - the file is created whole: a new store is initialised under a
//!   temporary name, synced, linked into place (never over an existing
//!   file) and its directory synced. So a file at the store's path is never
//!   legitimately empty, and an empty file is refused as a truncated store
//!   rather than taken for a new one;
//! - every commit is `Durability::Immediate` (fsync'd before anyone is told
//!   it is durable), set explicitly, and made in two phases (redb's
//!   `set_two_phase_commit`: the pages, synced, then the commit slot that
//!   names them, synced). A reader then never has to fall back from a
//!   newest commit that does not verify to the one before it, which may
//!   hold fewer acknowledged tasks: after a crash, damage in the newest
//!   commit is an error, not a silent rollback (`tests/damage.rs` saw the
//!   rollback without it). It costs a second fsync per group commit;
//!   see the `tasks per fsync'd commit` cases of `compare --only
//!   task-queue`;
//! - every open verifies the checksums of every page redb wrote
//!   (`set_check_integrity_on_open`): a damaged file is a
//!   [`StoreError::Corrupt`] at open, not a panic inside redb later;
//! - every record and the next-id counter carry a CRC-32C of their own,
//!   checked at load;
//! - redb is never trusted not to panic: each call into it from the
//!   committer runs under `catch_unwind`, and a panic fails the store (every
//!   waiter and every later call gets a typed error) instead of leaving
//!   waiters blocked or the thread dead.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use redb::{
    Database, DatabaseError, Durability, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    TableDefinition, TableError,
};

use crate::crc::crc32c;
use crate::error::StoreError;
use crate::record::TaskRecord;
use crate::store::{Recovered, Store, StoreOp, Ticket};
use crate::sync::{thread, Arc, Condvar, Mutex};

mod committer;
#[cfg(all(test, not(sysblocks_loom)))]
mod power_cut;

use committer::{committer_loop, CommitState};

const TASKS: TableDefinition<'static, u64, &[u8]> = TableDefinition::new("task_queue.tasks");
const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("task_queue.meta");
const FORMAT_KEY: &str = "format";
/// Format 2: records carry a CRC-32C and a restart count, and so does the
/// next id. Files of format 1 are refused as foreign (unknown format).
const FORMAT: &[u8] = b"sysblocks-task-queue/2";
const NEXT_ID_KEY: &str = "next_id";
/// The first bytes of every redb file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// The largest record the store keeps (redb's own limit is 3 GiB per
/// value); a larger one is refused by `append` and the store carries on.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;

fn db_error(e: impl fmt::Display) -> StoreError {
    StoreError::Database {
        detail: e.to_string(),
    }
}

/// Sorts redb's errors into the store's: damage (a file shorter than its
/// own header says, or one claiming another redb format, is damage too: a
/// store is always written whole in redb's current format), a file someone
/// else holds, and the rest.
fn redb_error(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Corrupted(detail) => StoreError::Corrupt { detail },
        redb::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            StoreError::Corrupt {
                detail: format!("the file is shorter than its contents (truncated): {e}"),
            }
        }
        redb::Error::UpgradeRequired(version) => StoreError::Corrupt {
            detail: format!("the header says redb file format {version}, not redb's current one"),
        },
        // A table of ours whose stored key or value type has our type's
        // name but another width or alignment: redb's built-in types have
        // one definition each (alignment is always 1), so the stored one is
        // damaged. The read-only look at the format, made before the open
        // that verifies checksums, meets it unverified.
        e @ redb::Error::TypeDefinitionChanged { .. } => StoreError::Corrupt {
            detail: format!("a stored table definition is damaged: {e}"),
        },
        redb::Error::DatabaseAlreadyOpen => StoreError::InUse,
        other => db_error(other),
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned())
}

/// Runs a call into redb, turning a panic into a typed error.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(StoreError::Corrupt {
            detail: format!("redb panicked while {what}: {}", panic_message(&*panic)),
        })
    })
}

/// The next id as stored: the value and a CRC-32C of it.
fn encode_next_id(next_id: u64) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&next_id.to_le_bytes());
    let crc = crc32c(&out[..8]);
    out[8..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_next_id(bytes: &[u8]) -> Result<u64, StoreError> {
    let corrupt = || StoreError::Corrupt {
        detail: "the stored next id is damaged".into(),
    };
    let bytes: [u8; 12] = bytes.try_into().map_err(|_| corrupt())?;
    let (value, crc) = bytes.split_at(8);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| corrupt())?);
    if crc32c(value) != crc {
        return Err(corrupt());
    }
    Ok(u64::from_le_bytes(value.try_into().map_err(|_| corrupt())?))
}

struct Shared {
    /// `Some` until `Shared` is dropped, which drops it under
    /// `catch_unwind` (see `Drop for Shared`).
    db: Option<Database>,
    /// `Immediate` except in the power-cut test's counter-check.
    durability: Durability,
    state: Mutex<CommitState>,
    work: Condvar,
    done: Condvar,
}

impl Shared {
    fn db(&self) -> &Database {
        self.db
            .as_ref()
            .expect("the database lives as long as `Shared`")
    }
}

impl Drop for Shared {
    /// Closes the database. redb's close only logs its errors, but after a
    /// panic inside redb its state is not to be trusted: a second panic
    /// here must not escape a destructor.
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(db)));
        }
    }
}

/// A durable [`Store`] in one redb database file, with group commit.
///
/// Opening a file that is not a task-queue store (another redb database, or
/// not a database at all) fails with [`StoreError::Foreign`]; a damaged one
/// (a flipped byte anywhere redb or the store wrote, an empty or truncated
/// file) with [`StoreError::Corrupt`]. The file is never reset.
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
/// committing what is pending) when the last clone is dropped. They also
/// share the store's one queue: a second queue over a clone is refused
/// ([`StoreError::InUse`]), and so is a second `open` of a file that is
/// open already.
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
    /// Opens the store at `path`, creating it if no file exists there.
    ///
    /// A new store is created whole: initialised under a temporary name in
    /// the same directory, synced, linked to `path` (never over a file that
    /// appeared meanwhile), and the directory synced, so that the file
    /// survives a power cut once `open` returns. An existing file is
    /// checked before use: every page checksum redb keeps is verified,
    /// which reads the whole file once.
    ///
    /// # Errors
    ///
    /// [`StoreError::Foreign`] if the file is not a task-queue store (or
    /// one of another format version); [`StoreError::Corrupt`] if it is
    /// damaged, and also if it is empty: a store's file is never empty, so
    /// an empty one was truncated; [`StoreError::InUse`] if it is open
    /// already (in this process or another); [`StoreError::Database`] if
    /// it cannot be read or created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => {
                return Err(StoreError::Corrupt {
                    detail: format!(
                        "{shown} is empty: a store is created whole, so this one was \
                         truncated (remove the file to start a new store)"
                    ),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path)?,
            Err(e) => return Err(db_error(e)),
        }
        let db = open_existing(path, &shown)?;
        Self::start(db, Durability::Immediate, shown)
    }

    /// Starts the committer over an open, checked database.
    fn start(db: Database, durability: Durability, path: String) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            db: Some(db),
            durability,
            state: Mutex::new(CommitState::default()),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name("task-queue-committer".into())
            .spawn(move || committer_loop(&worker))
            .map_err(|e| db_error(format!("cannot start the committer thread: {e}")))?;
        Ok(Self {
            _committer: Arc::new(Committer {
                shared: Arc::clone(&shared),
                handle: Mutex::new(Some(handle)),
            }),
            shared,
            path,
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

/// Creates a new store at `path` (which did not exist): see
/// [`RedbStore::open`].
fn create(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.new-{}-{}",
        std::process::id(),
        crate::sync::unique_id()
    ));
    let result = (|| {
        let db = guarded("creating the store", || {
            Database::builder().create(&tmp).map_err(redb_error)
        })?;
        guarded("initialising the store", || init(&db))?;
        guarded("closing the new store", || db.close().map_err(redb_error))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(db_error)?;
        match std::fs::hard_link(&tmp, path) {
            // Someone created the store meanwhile: theirs stands.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(db_error(format!(
                "cannot link the new store into place: {e}"
            ))),
            Ok(()) => File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| db_error(format!("cannot sync the store's directory: {e}"))),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Writes the tables and the format marker of a new store.
fn init(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(redb_error)?;
    txn.set_durability(Durability::Immediate)
        .map_err(db_error)?;
    txn.set_two_phase_commit(true);
    {
        let mut meta = txn.open_table(META).map_err(redb_error)?;
        meta.insert(FORMAT_KEY, FORMAT).map_err(redb_error)?;
        meta.insert(NEXT_ID_KEY, &encode_next_id(0)[..])
            .map_err(redb_error)?;
        txn.open_table(TASKS).map_err(redb_error)?;
    }
    txn.commit().map_err(redb_error)
}

/// Opens an existing store file, refusing foreign and damaged ones.
fn open_existing(path: &Path, shown: &str) -> Result<Database, StoreError> {
    let foreign = |detail: String| StoreError::Foreign {
        path: shown.to_owned(),
        detail,
    };
    // Not even redb's magic number: nothing of ours, and redb need not look.
    let mut magic = [0u8; REDB_MAGIC.len()];
    let read = File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map(|()| magic == REDB_MAGIC);
    match read {
        Ok(true) => {}
        Ok(false) => return Err(foreign("not a redb database".into())),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(foreign("not a redb database (too short)".into()))
        }
        Err(e) => return Err(db_error(e)),
    }
    // Look before touching: a read-only open writes nothing, so a foreign
    // file is refused unchanged. A file that needs repair (its last writer
    // was killed) cannot be opened read-only; it is opened for writing
    // (redb repairs it) and checked then.
    let looked = guarded("reading the store", || match ReadOnlyDatabase::open(path) {
        Ok(ro) => {
            check_format(&ro, &foreign)?;
            ro.close().map_err(redb_error)?;
            Ok(true)
        }
        Err(DatabaseError::RepairAborted) => Ok(false),
        Err(e) => Err(redb_error(e)),
    })?;
    let db = guarded("opening the store", || {
        redb::Builder::new()
            .set_check_integrity_on_open(true)
            .open(path)
            .map_err(redb_error)
    })?;
    if !looked {
        guarded("reading the store", || check_format(&db, &foreign))?;
    }
    Ok(db)
}

/// Checks that `db` holds the task-queue tables and format marker.
fn check_format(
    db: &impl ReadableDatabase,
    foreign: &dyn Fn(String) -> StoreError,
) -> Result<(), StoreError> {
    let txn = db.begin_read().map_err(redb_error)?;
    let meta = txn.open_table(META).map_err(|e| match e {
        TableError::TableDoesNotExist(_) => {
            foreign("a redb database without task-queue tables".into())
        }
        TableError::TableTypeMismatch { .. } => {
            foreign("a redb database with other tables of the same name".into())
        }
        other => redb_error(other),
    })?;
    match meta.get(FORMAT_KEY).map_err(redb_error)? {
        Some(f) if f.value() == FORMAT => Ok(()),
        Some(f) => Err(foreign(format!(
            "unknown format {:?}",
            String::from_utf8_lossy(f.value())
        ))),
        None => Err(foreign("no format marker".into())),
    }
}

impl RedbStore {
    /// The store's failure, if it has failed.
    fn failure(&self) -> Option<StoreError> {
        self.shared
            .state
            .lock()
            .failed
            .as_ref()
            .map(|(_, e)| e.clone())
    }

    fn load_inner(&self) -> Result<Recovered, StoreError> {
        let txn = self.shared.db().begin_read().map_err(redb_error)?;
        let tasks = txn.open_table(TASKS).map_err(redb_error)?;
        let meta = txn.open_table(META).map_err(redb_error)?;
        let mut next_id = match meta.get(NEXT_ID_KEY).map_err(redb_error)? {
            Some(v) => decode_next_id(v.value())?,
            None => {
                return Err(StoreError::Corrupt {
                    detail: "the next id is missing".into(),
                })
            }
        };
        let mut records = Vec::new();
        for item in tasks.iter().map_err(redb_error)? {
            let (k, v) = item.map_err(redb_error)?;
            let rec = TaskRecord::decode(v.value())?;
            if rec.id.0 != k.value() {
                return Err(StoreError::Corrupt {
                    detail: format!("record under key {} says id {}", k.value(), rec.id.0),
                });
            }
            next_id = next_id.max(rec.id.0.saturating_add(1));
            records.push(rec);
        }
        Ok(Recovered { records, next_id })
    }
}

impl Store for RedbStore {
    fn claim(&self) -> Result<(), StoreError> {
        let mut st = self.shared.state.lock();
        if let Some((_, e)) = &st.failed {
            return Err(e.clone());
        }
        if st.claimed {
            return Err(StoreError::InUse);
        }
        st.claimed = true;
        Ok(())
    }

    fn release(&self) {
        self.shared.state.lock().claimed = false;
    }

    fn load(&self) -> Result<Recovered, StoreError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let recovered = guarded("loading the store", || self.load_inner())?;
        let mut st = self.shared.state.lock();
        st.next_id = st.next_id.max(recovered.next_id);
        Ok(recovered)
    }

    fn append(&self, ops: Vec<StoreOp>) -> Result<Ticket, StoreError> {
        for op in &ops {
            if let StoreOp::Put(rec) = op {
                let bytes = rec.encoded_len();
                if bytes > MAX_RECORD_BYTES {
                    return Err(StoreError::TooLarge {
                        bytes: bytes as u64,
                        max: MAX_RECORD_BYTES as u64,
                    });
                }
            }
        }
        let mut st = self.shared.state.lock();
        if let Some((_, e)) = &st.failed {
            return Err(e.clone());
        }
        if st.shutdown {
            return Err(StoreError::Closed);
        }
        // The committer needs a nudge for the first unwaited op (to start
        // its lazy timer) and at the lazy limit; waiters nudge it themselves.
        let nudge = st.batch.is_empty() || st.batch.len() + ops.len() >= committer::LAZY_OPS;
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
        if ticket.0 > st.appended {
            return Err(StoreError::UnknownTicket { ticket: ticket.0 });
        }
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
    /// Commits what is pending, then stops the committer. Never panics:
    /// the committer's own panics are caught inside it.
    fn drop(&mut self) {
        self.shared.state.lock().shutdown = true;
        self.shared.work.notify_all();
        if let Some(h) = self.handle.lock().take() {
            let _ = h.join();
        }
    }
}
