//! The power-cut test: a storage backend that keeps, besides the file's
//! current bytes, the bytes as of its last `sync_data`, and at a simulated
//! power cut hands back only those. SIGKILL keeps the page cache, so a
//! crash test with real processes passes without a single fsync; this one
//! fails unless every acknowledged task was synced before `submit`
//! returned.
//!
//! The counter-check runs the same workload with `Durability::None` (redb
//! commits without syncing) and requires the model to lose acknowledged
//! tasks: a backend that lost nothing there would prove nothing here.
//! (Seen when it was written: with `Durability::None` every cut after the
//! first submit loses every acknowledged task.)
//!
//! The same backend counts syncs: a group commit is two (the two phases),
//! whatever it holds. With one phase the power-cut test still passes, but
//! `tests/damage.rs` does not (see `redb_store.rs`).

use std::collections::BTreeMap;
use std::io;

use redb::{Durability, StorageBackend};

use super::{check_format, guarded, init, redb_error, RedbStore};
use crate::error::StoreError;
use crate::jobs::TaskQueue;
use crate::sync::{Arc, Mutex};
use crate::task::{Task, TaskId};

#[derive(Debug, Default)]
struct Image {
    /// What a read sees now.
    live: Vec<u8>,
    /// What survives a power cut: `live` as of the last `sync_data`.
    synced: Vec<u8>,
    /// `sync_data` calls so far (each an fsync on a real file).
    syncs: u64,
}

/// A disk: shared by the backend redb writes through and by the test,
/// which takes what a power cut would leave.
#[derive(Debug, Clone, Default)]
struct Disk(Arc<Mutex<Image>>);

impl Disk {
    /// The disk after a power cut now: the last synced bytes, nothing else.
    fn after_power_cut(&self) -> Disk {
        let synced = self.0.lock().synced.clone();
        Disk(Arc::new(Mutex::new(Image {
            live: synced.clone(),
            synced,
            syncs: 0,
        })))
    }

    /// How many times the disk was synced.
    fn syncs(&self) -> u64 {
        self.0.lock().syncs
    }
}

#[derive(Debug)]
struct Backend(Disk);

fn range(offset: u64, len: usize) -> io::Result<std::ops::Range<usize>> {
    let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let end = start.checked_add(len).ok_or(io::ErrorKind::InvalidInput)?;
    Ok(start..end)
}

impl StorageBackend for Backend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0 .0.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let r = range(offset, out.len())?;
        let img = self.0 .0.lock();
        let src = img.live.get(r).ok_or(io::ErrorKind::UnexpectedEof)?;
        out.copy_from_slice(src);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        self.0 .0.lock().live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut img = self.0 .0.lock();
        img.synced = img.live.clone();
        img.syncs += 1;
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let r = range(offset, data.len())?;
        let mut img = self.0 .0.lock();
        if img.live.len() < r.end {
            img.live.resize(r.end, 0);
        }
        img.live[r].copy_from_slice(data);
        Ok(())
    }
}

impl RedbStore {
    /// A store on `disk` (created if the disk is empty) whose commits use
    /// `durability`: the test-only way to run the store without fsync.
    fn with_backend(disk: &Disk, durability: Durability) -> Result<Self, StoreError> {
        let fresh = disk.0.lock().live.is_empty();
        let db = guarded("opening the store", || {
            redb::Builder::new()
                .set_check_integrity_on_open(true)
                .create_with_backend(Backend(disk.clone()))
                .map_err(redb_error)
        })?;
        if fresh {
            init(&db)?;
        } else {
            check_format(&db, &|detail| StoreError::Foreign {
                path: "<disk image>".into(),
                detail,
            })?;
        }
        Self::start(db, durability, "<disk image>".into())
    }
}

/// A power cut right after a step of the workload: what the disk kept, and
/// what the workload knew at that moment.
struct Cut {
    step: usize,
    disk: Disk,
    /// Acknowledged (`submit` returned `Ok`) and not completed: these must
    /// all be there after the cut, with these payloads.
    live: BTreeMap<TaskId, Vec<u8>>,
    /// Completed: they may come back (a completion is not waited for).
    completed: BTreeMap<TaskId, Vec<u8>>,
}

fn payload(i: usize) -> Vec<u8> {
    format!("task {i}: ").repeat(i % 5 + 1).into_bytes()
}

/// Submits tasks (each acknowledged), and every third step completes one,
/// taking a power cut after each of `cuts`.
fn workload(durability: Durability, cuts: &[usize]) -> Vec<Cut> {
    let disk = Disk::default();
    let store = RedbStore::with_backend(&disk, durability).unwrap();
    let q = TaskQueue::builder().store(store).build().unwrap();
    let mut live = BTreeMap::new();
    let mut completed = BTreeMap::new();
    let mut out = Vec::new();
    for step in 0..=cuts.iter().copied().max().unwrap_or(0) {
        let p = payload(step);
        let id = q.submit(Task::new(p.clone())).unwrap();
        live.insert(id, p);
        if step % 3 == 2 {
            let d = q.lease().unwrap();
            assert_eq!(q.complete(&d, Ok(())), crate::Outcome::Completed);
            let p = live.remove(&d.id()).unwrap();
            completed.insert(d.id(), p);
        }
        if cuts.contains(&step) {
            out.push(Cut {
                step,
                disk: disk.after_power_cut(),
                live: live.clone(),
                completed: completed.clone(),
            });
        }
    }
    out
}

/// Restarts on the disk a cut left and compares every task with what was
/// acknowledged. Returns what went wrong (empty: nothing).
fn check(cut: &Cut) -> Vec<String> {
    let store = match RedbStore::with_backend(&cut.disk, Durability::Immediate) {
        Ok(s) => s,
        Err(e) => return vec![format!("step {}: the store did not open: {e}", cut.step)],
    };
    let q = TaskQueue::builder().store(store).build().unwrap();
    let mut found = BTreeMap::new();
    while let Some(d) = q.lease() {
        found.insert(d.id(), d.payload().to_vec());
        let _ = q.complete(&d, Ok(()));
    }
    let mut wrong = Vec::new();
    for (id, p) in &cut.live {
        match found.get(id) {
            None => wrong.push(format!("step {}: acknowledged {id} lost", cut.step)),
            Some(f) if f != p => wrong.push(format!("step {}: {id}'s payload differs", cut.step)),
            Some(_) => {}
        }
    }
    for (id, f) in &found {
        let known = cut.live.get(id).or_else(|| cut.completed.get(id));
        if known != Some(f) {
            wrong.push(format!("step {}: {id} unknown or damaged", cut.step));
        }
    }
    wrong
}

const CUTS: [usize; 7] = [0, 1, 2, 5, 8, 13, 21];

#[test]
fn power_cuts_lose_no_acknowledged_task() {
    let cuts = workload(Durability::Immediate, &CUTS);
    assert_eq!(cuts.len(), CUTS.len());
    let wrong: Vec<String> = cuts.iter().flat_map(check).collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The last cut had work to keep.
    let last = cuts.last().unwrap();
    assert!(last.live.len() > 10 && !last.completed.is_empty());
}

/// The counter-check: without fsync, the same workload loses acknowledged
/// tasks at a power cut, and the model sees it.
#[test]
fn without_fsync_power_cuts_lose_acknowledged_tasks() {
    let cuts = workload(Durability::None, &CUTS);
    let wrong: Vec<String> = cuts.iter().flat_map(check).collect();
    let lost = wrong.iter().filter(|w| w.ends_with("lost")).count();
    let acknowledged: usize = cuts.iter().map(|c| c.live.len()).sum();
    assert!(lost > 0, "the power-cut model lost nothing without fsync");
    // Every cut lost every acknowledged task: nothing was ever synced
    // after the store was created.
    assert_eq!(lost, acknowledged, "{wrong:#?}");
}

/// What durability costs: a group commit is two syncs (redb's two phases,
/// see the module docs of `redb_store.rs`), whether it holds one task or a
/// whole batch, and a submit costs no transaction of its own beyond the
/// commit it shares.
#[test]
fn a_group_commit_is_two_syncs() {
    let disk = Disk::default();
    let store = RedbStore::with_backend(&disk, Durability::Immediate).unwrap();
    let q = TaskQueue::builder().store(store.clone()).build().unwrap();
    let (syncs, commits) = (disk.syncs(), store.commits());
    q.submit(Task::new("one")).unwrap();
    assert_eq!((disk.syncs() - syncs, store.commits() - commits), (2, 1));
    let batch = (0..32u8).map(|i| Task::new(vec![i])).collect();
    q.submit_batch(batch).unwrap();
    assert_eq!((disk.syncs() - syncs, store.commits() - commits), (4, 2));
}
