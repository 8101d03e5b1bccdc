//! Opens damaged store files. Each input becomes a redb file, written to a
//! temporary path; `RedbStore::open`, building a `TaskQueue` over it (which
//! loads every record), leasing everything, one more submit and a reopen
//! must each end in `Ok` or a typed error: never a panic that escapes the
//! store, an abort, or a hang (run with `-timeout`). A damaged file that
//! opens must deliver exactly the tasks it held, payloads compared.
//!
//! The store runs every call into redb under `catch_unwind`; a panic it
//! catches that way is no failure here (the caller gets
//! `StoreError::Corrupt`), but the target prints each distinct one the first
//! time it sees it, so a run shows which redb panics the store is guarding.
//! A panic anywhere else fails the input.
//!
//! Input: byte 0 holds flags.
//! - bit 1 set: the rest of the input is the whole file (libFuzzer builds
//!   files from scratch; nearly all stop at redb's magic number).
//! - bit 1 clear: the file is one of two valid stores of twelve tasks,
//!   written once per process: bit 0 picks the one closed cleanly or the one
//!   copied while its store was open (what a crash leaves, which redb
//!   repairs on open). The rest of the input edits it: with bit 2 set, a
//!   little-endian `u32` cuts the file to that length (modulo its length
//!   plus one), applied after the edits; then every 5 bytes are a
//!   little-endian `u32` offset (modulo the file's length) and a byte to XOR
//!   there.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once, OnceLock};

use libfuzzer_sys::fuzz_target;
use sysblocks_task_queue::{
    BuildError, RedbStore, StoreError, SubmitError, Task, TaskId, TaskQueue,
};

const TASKS: usize = 12;

fn payload(i: usize) -> Vec<u8> {
    format!("payload {i} ").repeat(i + 1).into_bytes()
}

/// The directory every case is written to, and the two reference files.
struct Images {
    dir: tempfile::TempDir,
    clean: Vec<u8>,
    crashed: Vec<u8>,
    /// The tasks both files hold.
    want: BTreeMap<TaskId, Vec<u8>>,
    /// The tasks as of the commit before the last one.
    previous: BTreeMap<TaskId, Vec<u8>>,
}

/// The same two files as `tests/damage.rs` builds: every record state (a
/// pending, a leased and a completed task).
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        // A RAM-backed directory when there is one: every case is written
        // and fsync'd.
        let dir = tempfile::Builder::new()
            .prefix("task-queue-fuzz-")
            .tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .unwrap();
        let path = dir.path().join("reference.redb");
        let q = TaskQueue::builder()
            .store(RedbStore::open(&path).unwrap())
            .build()
            .unwrap();
        let mut want = BTreeMap::new();
        for i in 0..TASKS {
            want.insert(q.submit(Task::new(payload(i))).unwrap(), payload(i));
        }
        let previous = want.clone();
        let d = q.lease().unwrap();
        let d2 = q.lease().unwrap();
        q.complete(&d2, Ok(()));
        want.remove(&d2.id());
        q.flush().unwrap();
        let crashed = std::fs::read(&path).unwrap();
        drop(d);
        drop(q);
        let clean = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Images {
            dir,
            clean,
            crashed,
            want,
            previous,
        }
    })
}

/// Replaces libfuzzer-sys's panic hook (which aborts at once, even for a
/// panic the store catches) with one that reports the first panic at each
/// source location; the target aborts on a panic that escapes the store.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
            let at = info
                .location()
                .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if SEEN
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(at.clone())
            {
                eprintln!("panic (first at {at}): {message}");
            }
        }));
    });
}

/// What a case must find when the file opens.
enum Expect<'a> {
    /// Nothing known (a file from scratch): only no panic.
    Anything,
    /// These tasks, or (when the edits touched redb's unchecksummed flag
    /// byte, see `tests/damage.rs`) these others.
    Tasks(
        &'a BTreeMap<TaskId, Vec<u8>>,
        Option<&'a BTreeMap<TaskId, Vec<u8>>>,
    ),
}

fn open(path: &Path) -> Result<Option<TaskQueue>, String> {
    let store = match RedbStore::open(path) {
        Ok(s) => s,
        Err(StoreError::Corrupt { .. } | StoreError::Foreign { .. }) => return Ok(None),
        Err(e) => return Err(format!("open: unexpected kind of error: {e:?}")),
    };
    match TaskQueue::builder().store(store).build() {
        Ok(q) => Ok(Some(q)),
        Err(BuildError::Store(StoreError::Corrupt { .. } | StoreError::Database { .. })) => {
            Ok(None)
        }
        Err(e) => Err(format!("build: unexpected error: {e:?}")),
    }
}

fn check(path: &Path, expect: &Expect<'_>) -> Result<(), String> {
    let Some(q) = open(path)? else {
        return Ok(());
    };
    let mut got = BTreeMap::new();
    while let Some(d) = q.lease() {
        got.insert(d.id(), d.payload().to_vec());
    }
    if let Expect::Tasks(want, other) = expect {
        if &got != *want && other.is_none_or(|o| &got != o) {
            return Err(format!(
                "opened with damaged data: {got:?}\ninstead of {want:?}"
            ));
        }
    }
    // The first commit on a damaged file (redb panicked there once).
    let extra = b"after the damage".to_vec();
    let id = match q.submit(Task::new(extra.clone())) {
        Ok(id) => Some(id),
        Err(SubmitError::Store(_)) => None,
        Err(e) => return Err(format!("submit: unexpected error: {e:?}")),
    };
    match q.flush() {
        Ok(()) | Err(_) => {}
    }
    drop(q);
    // What was acknowledged is there after a reopen (or the file is
    // refused as a whole).
    let Some(q) = open(path)? else {
        return Ok(());
    };
    if let Some(id) = id {
        let mut found = false;
        while let Some(d) = q.lease() {
            if d.id() == id {
                if d.payload() != extra {
                    return Err(format!("{id} reopened with payload {:?}", d.payload()));
                }
                found = true;
            }
        }
        if !found {
            return Err(format!("{id} was acknowledged but is gone after a reopen"));
        }
    }
    Ok(())
}

/// The byte of redb's header naming the newest commit slot, which nothing
/// checksums (see `tests/damage.rs`).
const GOD_BYTE: usize = 9;

fn case(data: &[u8]) -> Result<(), String> {
    let im = images();
    let Some((&flags, mut rest)) = data.split_first() else {
        return Ok(());
    };
    let (bytes, expect) = if flags & 2 != 0 {
        (rest.to_vec(), Expect::Anything)
    } else {
        let mut bytes = if flags & 1 != 0 {
            im.crashed.clone()
        } else {
            im.clean.clone()
        };
        let mut cut = None;
        if flags & 4 != 0 {
            let Some((c, r)) = rest.split_first_chunk::<4>() else {
                return Ok(());
            };
            cut = Some(u32::from_le_bytes(*c) as usize % (bytes.len() + 1));
            rest = r;
        }
        let mut god_byte = false;
        for edit in rest.chunks_exact(5) {
            let at =
                u32::from_le_bytes([edit[0], edit[1], edit[2], edit[3]]) as usize % bytes.len();
            bytes[at] ^= edit[4];
            god_byte |= at == GOD_BYTE && edit[4] != 0;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        (
            bytes,
            Expect::Tasks(&im.want, god_byte.then_some(&im.previous)),
        )
    };
    let path: PathBuf = im.dir.path().join("case.redb");
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot write the case: {e}"))?;
    let result = check(&path, &expect);
    let _ = std::fs::remove_file(&path);
    result
}

fuzz_target!(|data: &[u8]| {
    quiet_panics();
    match catch_unwind(AssertUnwindSafe(|| case(data))) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("store_file: {e}");
            std::process::abort();
        }
        Err(_) => {
            eprintln!("store_file: a panic escaped the store (reported above)");
            std::process::abort();
        }
    }
});
