//! The redb store: recovery after reopening, group commit, and refusal of
//! foreign or damaged files.
#![cfg(not(sysblocks_loom))]

use std::path::PathBuf;
use std::time::Duration;

use redb::ReadableTable;
use sysblocks_task_queue::{
    Backoff, BuildError, Outcome, RecordState, RedbStore, Store, StoreError, StoreOp, Task, TaskId,
    TaskQueue, TaskRecord, Ticket,
};

/// A fresh directory (removed when the guard drops, also when a test
/// panics) and the store's path in it.
fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("tq-durable-{name}-"))
        .tempdir()
        .unwrap();
    let path = dir.path().join("tasks.redb");
    (dir, path)
}

fn queue(path: &PathBuf) -> TaskQueue {
    TaskQueue::builder()
        .store(RedbStore::open(path).unwrap())
        .backoff(Backoff::Fixed(Duration::ZERO))
        .max_attempts(2)
        .build()
        .unwrap()
}

#[test]
fn reopened_store_redelivers_pending_and_leased_tasks() {
    let (_dir, path) = temp("reopen");
    let (done, leased, pending, dead) = {
        let q = queue(&path);
        let done = q.submit(Task::new("done")).unwrap();
        let leased = q.submit(Task::new("leased")).unwrap();
        let pending = q.submit(Task::new("pending")).unwrap();
        let dead = q.submit(Task::new("dead")).unwrap();
        let d = q.lease().unwrap();
        assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
        let l = q.lease().unwrap();
        assert_eq!(l.id(), leased);
        let _ = q.lease().unwrap(); // pending, fails once below
        let x = q.lease().unwrap();
        assert_eq!(x.id(), dead);
        let _ = q.complete(&x, Err("1".into()));
        let x = q.lease().unwrap();
        assert_eq!(x.id(), dead);
        assert_eq!(q.complete(&x, Err("2".into())), Outcome::Dead);
        q.flush().unwrap();
        // Dropped without completing `leased` and the pending one: as if
        // the process had died with two deliveries running.
        (done, leased, pending, dead)
    };
    let q = queue(&path);
    assert_eq!(q.stats().recovered_leases, 2);
    assert_eq!(
        q.dead_letters().iter().map(|d| d.id).collect::<Vec<_>>(),
        [dead]
    );
    let mut ids: Vec<TaskId> = std::iter::from_fn(|| q.lease())
        .map(|d| {
            assert_eq!(d.attempt(), 2);
            d.id()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [leased, pending]);
    let fresh = q.submit(Task::new("new")).unwrap();
    assert!(fresh.0 > dead.0, "ids are never reused");
    assert!(!ids.contains(&done));
}

#[test]
fn concurrent_submits_share_commits() {
    let (_dir, path) = temp("group");
    let store = RedbStore::open(&path).unwrap();
    let q = TaskQueue::builder().store(store.clone()).build().unwrap();
    let before = store.commits();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..40 {
                    q.submit(Task::new("x")).unwrap();
                }
            });
        }
    });
    let commits = store.commits() - before;
    println!("320 concurrent submits took {commits} commits");
    assert!(commits < 320, "no grouping: {commits} commits");
    drop(q);
    drop(store);
    let q = queue(&path);
    assert_eq!(q.len(), 320);
}

/// One thread with many pending submits shares commits among them; every
/// task waited for (or dropped unwaited) is in the store after reopening.
#[test]
fn pending_submits_from_one_thread_share_commits() {
    let (_dir, path) = temp("pending");
    let store = RedbStore::open(&path).unwrap();
    let q = TaskQueue::builder().store(store.clone()).build().unwrap();
    let before = store.commits();
    let pending: Vec<_> = (0..64)
        .map(|i| q.submit_pending(Task::new(format!("t{i}"))).unwrap())
        .collect();
    let mut ids = Vec::new();
    for (i, p) in pending.into_iter().enumerate() {
        if i % 8 == 7 {
            drop(p); // waits all the same
        } else {
            let id = p.id();
            assert_eq!(p.wait().unwrap(), id);
            ids.push(id);
        }
    }
    let commits = store.commits() - before;
    println!("64 pending submits from one thread took {commits} commits");
    assert!(commits < 64, "no grouping: {commits} commits");
    assert_eq!(q.len(), 64);
    drop(q);
    drop(store);
    let q = queue(&path);
    assert_eq!(q.len(), 64);
}

/// Leases and completions nobody waits for are still committed on their
/// own after a while (the committer's lazy timer), not only by the next
/// submit or at shutdown.
#[test]
fn unwaited_completions_get_committed_without_a_waiter() {
    let (_dir, path) = temp("lazy");
    let store = RedbStore::open(&path).unwrap();
    let q = TaskQueue::builder().store(store.clone()).build().unwrap();
    q.submit(Task::new("x")).unwrap();
    let after_submit = store.commits();
    let d = q.lease().unwrap();
    assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while store.commits() == after_submit && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        store.commits() > after_submit,
        "the completion was never committed"
    );
    drop(q);
}

#[test]
fn foreign_files_are_refused_and_left_alone() {
    // Not a database at all.
    let (_dir, path) = temp("garbage");
    let junk: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(err.to_string().contains("not a task-queue store"), "{err}");
    assert!(std::fs::read(&path).unwrap() == junk, "file changed");

    // A redb database that belongs to someone else.
    let (_dir, path) = temp("other");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, &str, u64> = redb::TableDefinition::new("users");
            let mut t = txn.open_table(def).unwrap();
            t.insert("alice", &1).unwrap();
        }
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
    assert!(std::fs::read(&path).unwrap() == before, "file changed");
}

#[test]
fn a_damaged_record_is_a_clear_error() {
    let (_dir, path) = temp("damaged");
    {
        let q = queue(&path);
        q.submit(Task::new("fine")).unwrap();
    }
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, u64, &[u8]> =
                redb::TableDefinition::new("task_queue.tasks");
            let mut t = txn.open_table(def).unwrap();
            let mut bytes = TaskRecord::decode(t.get(0).unwrap().unwrap().value())
                .unwrap()
                .encode();
            bytes.truncate(bytes.len() - 2);
            t.insert(0, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let err = TaskQueue::builder()
        .store(RedbStore::open(&path).unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
}

/// Two queues over clones of one redb store both handed out task-0 and
/// the second overwrote the first: the second is now refused, and so is a
/// second open of the same file.
#[test]
fn a_redb_store_serves_one_queue_at_a_time() {
    let (_dir, path) = temp("owner");
    let store = RedbStore::open(&path).unwrap();
    let a = TaskQueue::builder().store(store.clone()).build().unwrap();
    let err = TaskQueue::builder()
        .store(store.clone())
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::Store(StoreError::InUse));
    assert_eq!(RedbStore::open(&path).unwrap_err(), StoreError::InUse);
    a.submit(Task::new("a")).unwrap();
    drop(a);
    let b = TaskQueue::builder().store(store.clone()).build().unwrap();
    b.submit(Task::new("b")).unwrap();
    drop(b);
    drop(store);
    let q = queue(&path);
    let mut payloads: Vec<Vec<u8>> = std::iter::from_fn(|| q.lease())
        .map(|d| d.payload().to_vec())
        .collect();
    payloads.sort();
    assert_eq!(payloads, [b"a".to_vec(), b"b".to_vec()]);
}

/// `wait` for a ticket the store never handed out used to block forever.
#[test]
fn a_ticket_never_issued_returns_at_once() {
    let (_dir, path) = temp("ticket");
    let store = RedbStore::open(&path).unwrap();
    let t = store.append(Vec::new()).unwrap();
    store.wait(t).unwrap();
    assert_eq!(
        store.wait(Ticket(1_000_000)),
        Err(StoreError::UnknownTicket { ticket: 1_000_000 })
    );
}

/// A store with ten tasks, closed cleanly; returns its path.
fn ten_tasks(name: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp(name);
    let q = queue(&path);
    for i in 0..10 {
        q.submit(Task::new(format!("payload-{i}-payload"))).unwrap();
    }
    (dir, path)
}

/// One flipped byte of a payload used to be delivered as it was. It is
/// now caught when the store opens (redb's page checksums, verified on
/// every open) and would be caught at load by the record's own checksum.
#[test]
fn a_flipped_payload_byte_is_corrupt_and_never_delivered() {
    let (_dir, path) = ten_tasks("flip-payload");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"payload-3")
        .expect("the payload is in the file");
    bytes[at] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// The ten tasks of `ten_tasks`, and one more submitted after the open,
/// all there after a reopen: the store works.
fn ten_tasks_intact(path: &PathBuf) {
    let want: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("payload-{i}-payload").into_bytes())
        .chain([b"one more".to_vec()])
        .collect();
    queue(path).submit(Task::new("one more")).unwrap();
    let q = queue(path);
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| q.lease())
        .map(|d| d.payload().to_vec())
        .collect();
    assert_eq!(got, want);
}

/// One flipped byte in redb's region header (byte 4103 of the file) used
/// to pass open and load; the first commit then panicked on the committer
/// thread, and a second panic in a destructor aborted the process (byte
/// 4096 instead left `submit` waiting forever for the dead committer).
/// Now every open verifies the file and rebuilds what redb does not
/// checksum (the region headers): the open either refuses the file or
/// repairs it, and a repaired store holds every task and keeps working.
#[test]
fn a_flipped_header_byte_is_an_error_not_a_panic() {
    let (_dir, path) = ten_tasks("flip-header");
    let clean = std::fs::read(&path).unwrap();
    for at in [4096, 4103] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        match RedbStore::open(&path) {
            Ok(store) => {
                drop(store);
                ten_tasks_intact(&path);
            }
            Err(e) => assert!(matches!(e, StoreError::Corrupt { .. }), "byte {at}: {e}"),
        }
    }
}

/// An empty file used to open as a new, empty store. A store's file is
/// created whole, so an empty one is a truncated store: refused, and left
/// as it is.
#[test]
fn an_empty_file_is_a_truncated_store() {
    let (_dir, path) = ten_tasks("truncated");
    std::fs::write(&path, b"").unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// A new store is created whole: no temporary file is left beside it, and
/// what is at the path opens as a store with its tables.
#[test]
fn a_new_store_is_created_whole() {
    let (dir, path) = temp("create");
    drop(RedbStore::open(&path).unwrap());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tasks.redb"]);
    let q = queue(&path);
    assert!(q.is_empty());
}

/// A crash loop on the redb store: each process dies with the task leased;
/// the task stays alive far beyond `max_attempts` (2) and completes.
#[test]
fn a_crash_loop_costs_no_attempts() {
    let (_dir, path) = temp("crash-loop");
    let id = queue(&path).submit(Task::new("healthy")).unwrap();
    for restart in 0..6u32 {
        let q = queue(&path);
        assert!(q.dead_letters().is_empty(), "dead after {restart} restarts");
        let d = q.lease().unwrap();
        assert_eq!((d.id(), d.attempt()), (id, restart + 1));
        q.flush().unwrap();
    }
    let q = queue(&path);
    let d = q.lease().unwrap();
    assert_eq!(d.payload(), b"healthy");
    assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
}

/// A record too large for the store is refused on its own; the store
/// carries on.
#[test]
fn an_oversized_record_is_refused_and_the_store_carries_on() {
    let (_dir, path) = temp("oversized");
    let store = RedbStore::open(&path).unwrap();
    let huge = TaskRecord {
        id: TaskId(7),
        task: Task::new(vec![0u8; (1 << 30) + 1]),
        attempts: 0,
        restarts: 0,
        state: RecordState::Pending { run_at: 0 },
        written_at: 0,
    };
    let bytes = huge.encoded_len() as u64;
    assert_eq!(
        store.append(vec![StoreOp::Put(huge)]),
        Err(StoreError::TooLarge {
            bytes,
            max: 1 << 30
        })
    );
    let q = TaskQueue::builder().store(store).build().unwrap();
    q.submit(Task::new("small")).unwrap();
}
