//! The redb store: recovery after reopening, group commit, and refusal of
//! foreign or damaged files.
#![cfg(not(sysblocks_loom))]

use std::path::PathBuf;
use std::time::Duration;

use redb::ReadableTable;
use sysblocks_task_queue::{
    Backoff, Outcome, RedbStore, StoreError, Task, TaskId, TaskQueue, TaskRecord,
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
