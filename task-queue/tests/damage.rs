//! Damaged input: arbitrary bytes into the record decoder, and store files
//! truncated at several points or with flipped bits. Every case ends in
//! `Ok` with every acknowledged task intact (payloads compared) or in a
//! typed error; never a panic, an abort, a hang or a damaged payload.
//!
//! The files come in two kinds: one closed cleanly, and one copied while
//! its store was still open (what a crash leaves, which redb must repair
//! when it opens it).
#![cfg(not(sysblocks_loom))]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use proptest::prelude::*;
use sysblocks_task_queue::{
    Priority, RecordState, RedbStore, StoreError, Task, TaskId, TaskQueue, TaskRecord,
};

// ---- The record decoder -----------------------------------------------

fn record() -> impl Strategy<Value = TaskRecord> {
    let state = prop_oneof![
        any::<u64>().prop_map(|run_at| RecordState::Pending { run_at }),
        any::<u64>().prop_map(|until| RecordState::Leased { until }),
        ".{0,20}".prop_map(|error| RecordState::Dead { error }),
    ];
    (
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        0usize..3,
        any::<u32>(),
        any::<u32>(),
        state,
        any::<u64>(),
    )
        .prop_map(
            |(id, payload, p, attempts, restarts, state, written_at)| TaskRecord {
                id: TaskId(id),
                task: Task::new(payload)
                    .with_priority([Priority::High, Priority::Normal, Priority::Low][p]),
                attempts,
                restarts,
                state,
                written_at,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes: an error or a record that encodes back to exactly
    /// these bytes; never a panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        if let Ok(rec) = TaskRecord::decode(&bytes) {
            prop_assert_eq!(rec.encode(), bytes);
        }
    }

    /// A valid record with one flipped bit, cut short, or with bytes
    /// added is refused as corrupt.
    #[test]
    fn damaged_records_are_refused(
        rec in record(),
        bit in any::<usize>(),
        cut in any::<usize>(),
        extra in proptest::collection::vec(any::<u8>(), 1..8),
    ) {
        let bytes = rec.encode();
        prop_assert_eq!(&TaskRecord::decode(&bytes).unwrap(), &rec);
        let mut flipped = bytes.clone();
        let bit = bit % (bytes.len() * 8);
        flipped[bit / 8] ^= 1 << (bit % 8);
        let corrupt = |r: Result<TaskRecord, StoreError>| matches!(r, Err(StoreError::Corrupt { .. }));
        prop_assert!(corrupt(TaskRecord::decode(&flipped)));
        prop_assert!(corrupt(TaskRecord::decode(&bytes[..cut % bytes.len()])));
        let mut longer = bytes.clone();
        longer.extend_from_slice(&extra);
        prop_assert!(corrupt(TaskRecord::decode(&longer)));
    }
}

/// A length field claiming far more bytes than the record holds is refused
/// without allocating it (the checksum is checked first, and lengths are
/// checked against what is left).
#[test]
fn a_huge_length_field_allocates_nothing() {
    let rec = TaskRecord {
        id: TaskId(1),
        task: Task::new("x"),
        attempts: 0,
        restarts: 0,
        state: RecordState::Pending { run_at: 0 },
        written_at: 0,
    };
    let mut bytes = rec.encode();
    let len_at = bytes.len() - 4 - 1 - 8;
    bytes[len_at..len_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(TaskRecord::decode(&bytes).is_err());
}

// ---- Store files -------------------------------------------------------

const TASKS: usize = 12;

fn payload(i: usize) -> Vec<u8> {
    format!("payload {i} ").repeat(i + 1).into_bytes()
}

/// The two reference files and the tasks they hold.
struct Images {
    clean: Vec<u8>,
    crashed: Vec<u8>,
    want: BTreeMap<TaskId, Vec<u8>>,
    /// The tasks as of the commit before the last one.
    previous: BTreeMap<TaskId, Vec<u8>>,
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.redb");
        let q = TaskQueue::builder()
            .store(RedbStore::open(&path).unwrap())
            .build()
            .unwrap();
        let mut want = BTreeMap::new();
        for i in 0..TASKS {
            want.insert(q.submit(Task::new(payload(i))).unwrap(), payload(i));
        }
        let previous = want.clone();
        // A completed task and a leased one too, so the files hold every
        // state (one commit: the flush below).
        let d = q.lease().unwrap();
        let d2 = q.lease().unwrap();
        assert_eq!(
            q.complete(&d2, Ok(())),
            sysblocks_task_queue::Outcome::Completed
        );
        want.remove(&d2.id());
        q.flush().unwrap();
        // Open, with a delivery in flight: what a crash leaves.
        let crashed = std::fs::read(&path).unwrap();
        drop(d);
        drop(q);
        let clean = std::fs::read(&path).unwrap();
        Images {
            clean,
            crashed,
            want,
            previous,
        }
    })
}

/// Opens `bytes` as a store file: a typed error, or every wanted task with
/// its payload and nothing else.
fn check(bytes: &[u8], want: &BTreeMap<TaskId, Vec<u8>>) -> Result<(), String> {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    static CASE: AtomicUsize = AtomicUsize::new(0);
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    let path = dir.path().join(format!(
        "case-{}.redb",
        CASE.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).unwrap();
    let result = check_path(&path, want);
    let _ = std::fs::remove_file(&path);
    result
}

fn check_path(path: &Path, want: &BTreeMap<TaskId, Vec<u8>>) -> Result<(), String> {
    let store = match RedbStore::open(path) {
        Ok(s) => s,
        Err(StoreError::Corrupt { .. } | StoreError::Foreign { .. }) => return Ok(()),
        Err(e) => return Err(format!("open: unexpected kind of error: {e:?}")),
    };
    let q = match TaskQueue::builder().store(store).build() {
        Ok(q) => q,
        Err(e) => {
            return match e {
                sysblocks_task_queue::BuildError::Store(
                    StoreError::Corrupt { .. } | StoreError::Database { .. },
                ) => Ok(()),
                e => Err(format!("build: unexpected error: {e:?}")),
            }
        }
    };
    let mut got = BTreeMap::new();
    while let Some(d) = q.lease() {
        got.insert(d.id(), d.payload().to_vec());
    }
    // The queue saw its file as intact: it must be, every task of it.
    if &got != want {
        return Err(format!(
            "opened with damaged data: {} tasks instead of {}",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

#[test]
fn the_reference_files_open_intact() {
    let im = images();
    assert_eq!(im.want.len(), TASKS - 1);
    check(&im.clean, &im.want).unwrap();
    check(&im.crashed, &im.want).unwrap();
}

/// Truncated at page boundaries, inside pages and by a byte: an error or
/// intact data (only the file's free tail may go).
#[test]
fn truncated_files_are_errors_or_intact() {
    let im = images();
    for (kind, image) in [("clean", &im.clean), ("crashed", &im.crashed)] {
        let len = image.len();
        let mut cuts = vec![0, 1, 9, 64, 320, 512, 4095, 4096, 4103, 8192, len - 1];
        cuts.extend((1..8).map(|k| len * k / 8));
        cuts.extend([len - 4096, len - 4097]);
        let mut wrong = Vec::new();
        for cut in cuts {
            if let Err(e) = check(&image[..cut], &im.want) {
                wrong.push(format!("{kind} cut at {cut}: {e}"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}

/// The bit of redb's "god byte" (byte 9) that says which of the two commit
/// slots is the newest. Nothing checksums it.
const PRIMARY_SLOT_BIT: usize = 9 * 8;

/// Every bit of the file header (the first 320 bytes: redb's magic number,
/// god byte and both commit slots), flipped one at a time, in both files.
///
/// One bit is beyond any check: flipping the primary-slot bit of a file
/// that a crash left (redb then repairs it) makes redb take the commit
/// before the newest one, which has valid checksums of its own. A commit
/// that a crash interrupted between its two phases looks the same, so no
/// reader can tell them apart. That case opens as the previous commit:
/// consistent, no payload damaged, but the newest commit's changes (here
/// a completion and a lease) are gone. The assertion below pins that down.
#[test]
fn flipped_header_bits_are_errors_or_intact() {
    let im = images();
    let mut wrong = Vec::new();
    for (kind, image) in [("clean", &im.clean), ("crashed", &im.crashed)] {
        for bit in 0..320 * 8 {
            let mut bytes = image.clone();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mut result = check(&bytes, &im.want);
            if kind == "crashed" && bit == PRIMARY_SLOT_BIT && result.is_err() {
                result = check(&bytes, &im.previous);
            }
            if let Err(e) = result {
                wrong.push(format!("{kind} bit {bit} (byte {}): {e}", bit / 8));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cases: {wrong:#?}", wrong.len());
}

/// The stored definitions of the store's two tables (their types' widths,
/// alignments and names, in redb's table tree), every byte flipped with a
/// few masks. Found by the `store_file` fuzz target: a clean file with the
/// byte 0x27 XORed into the value alignment of the meta table's definition
/// (1 became 9985) opened as `StoreError::Database` ("Current definition of
/// &[u8] does not match stored definition"), not `Corrupt`: the read-only
/// look at the format, made before the open that verifies checksums, trusts
/// the table tree as it is.
#[test]
fn flipped_table_definitions_are_errors_or_intact() {
    let im = images();
    let mut wrong = Vec::new();
    for (kind, image) in [("clean", &im.clean), ("crashed", &im.crashed)] {
        // The key and value type names end each definition; the widths and
        // alignments come in the bytes before them.
        for names in [&b"\x01&str\x01&[u8]"[..], &b"\x01u64\x01&[u8]"[..]] {
            let at = image
                .windows(names.len())
                .position(|w| w == names)
                .unwrap_or_else(|| panic!("no table definition {names:?} in the {kind} file"));
            for byte in at - 24..at + names.len() {
                for mask in [0x01u8, 0x27, 0x80, 0xff] {
                    let mut bytes = image.clone();
                    bytes[byte] ^= mask;
                    if let Err(e) = check(&bytes, &im.want) {
                        wrong.push(format!("{kind} byte {byte} ^ {mask:#x}: {e}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} cases: {wrong:#?}", wrong.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// A flipped byte anywhere in either file.
    #[test]
    fn flipped_bytes_are_errors_or_intact(
        at in any::<prop::sample::Index>(),
        mask in 1u8..=255,
        crashed in any::<bool>(),
    ) {
        let im = images();
        let image = if crashed { &im.crashed } else { &im.clean };
        let mut bytes = image.clone();
        let at = at.index(bytes.len());
        bytes[at] ^= mask;
        let mut result = check(&bytes, &im.want);
        if crashed && at * 8 == PRIMARY_SLOT_BIT && mask & 1 != 0 && result.is_err() {
            // See `flipped_header_bits_are_errors_or_intact`.
            result = check(&bytes, &im.previous);
        }
        if let Err(e) = result {
            prop_assert!(false, "byte {} ^ {:#x} ({}): {}", at, mask, if crashed { "crashed" } else { "clean" }, e);
        }
    }
}
