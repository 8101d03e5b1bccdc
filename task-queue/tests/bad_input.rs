//! Bad input, swept at the edges of every setting and argument: 0, 1 and
//! the maximum of each integer, `Duration::ZERO` and `Duration::MAX`, a
//! `ManualClock` at `u64::MAX` nanoseconds and one stepping backwards,
//! empty and large payloads, an unknown priority byte, tickets never
//! issued, huge capacities and worker counts. Each case runs in a child
//! process under an address-space limit and a timeout
//! (`sysblocks_testkit::run_isolated`), so a panic, an abort on a runaway
//! allocation or a hang fails it; each ends in a typed error or in the
//! behaviour the docs state, and asserts which.
#![cfg(not(sysblocks_loom))]

use std::time::Duration;

use sysblocks_task_queue::{
    Backoff, BoundedQueue, BuildError, Delivery, ManualClock, MemoryStore, Outcome, PopError,
    PushError, RecordState, RedbStore, Store, StoreError, StoreOp, SubmitBatchError, SubmitError,
    Task, TaskError, TaskId, TaskQueue, TaskQueueBuilder, TaskRecord, Ticket, WorkerPool,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

const SEC: Duration = Duration::from_secs(1);

fn zero(setting: &'static str) -> BuildError {
    BuildError::Zero { setting }
}

/// A queue on a manual clock whose failures retry at once.
fn on(clock: &ManualClock) -> TaskQueueBuilder {
    TaskQueue::builder()
        .clock(clock.clone())
        .seed(1)
        .backoff(Backoff::Fixed(Duration::ZERO))
}

fn failed(q: &TaskQueue, d: &Delivery) -> Outcome {
    q.complete(d, Err(TaskError::new("x")))
}

#[test]
fn bounded_queue() {
    run_isolated(
        "bounded_queue",
        &[
            Case {
                name: "capacity_0",
                run: || assert_eq!(BoundedQueue::<u64>::new(0).unwrap_err(), zero("capacity")),
            },
            Case {
                name: "capacity_1",
                run: || {
                    let q = BoundedQueue::new(1).unwrap();
                    q.try_push(1u64).unwrap();
                    assert_eq!(q.try_push(2), Err(PushError::Full(2)));
                    assert_eq!(q.try_pop(), Ok(1));
                    assert_eq!(q.try_pop(), Err(PopError::Empty));
                },
            },
            Case {
                // Defect 6: panicked with "capacity overflow".
                name: "capacity_max_div_4",
                run: || {
                    let err = BoundedQueue::<u64>::new(usize::MAX / 4).unwrap_err();
                    assert!(matches!(err, BuildError::TooLarge { .. }), "{err}");
                },
            },
            Case {
                name: "capacity_max",
                run: || {
                    let err = BoundedQueue::<u64>::new(usize::MAX).unwrap_err();
                    assert!(matches!(err, BuildError::TooLarge { .. }), "{err}");
                },
            },
            Case {
                // The largest capacity the slot array can be laid out for
                // is refused by the allocator (the address-space limit).
                name: "capacity_at_max_is_out_of_memory",
                run: || {
                    let cap = BoundedQueue::<u64>::max_capacity();
                    let err = BoundedQueue::<u64>::new(cap).unwrap_err();
                    assert!(matches!(err, BuildError::OutOfMemory { .. }), "{err}");
                },
            },
            Case {
                // 4 GiB of slots under a 2 GiB address-space limit.
                name: "capacity_beyond_memory",
                run: || {
                    let err = BoundedQueue::<u64>::new(1 << 28).unwrap_err();
                    assert_eq!(
                        err,
                        BuildError::OutOfMemory {
                            setting: "capacity",
                            bytes: 16 << 28
                        }
                    );
                },
            },
            Case {
                name: "zero_sized_items",
                run: || {
                    let q = BoundedQueue::new(3).unwrap();
                    for _ in 0..3 {
                        q.try_push(()).unwrap();
                    }
                    assert_eq!(q.try_push(()), Err(PushError::Full(())));
                    assert_eq!(q.len(), 3);
                },
            },
            Case {
                name: "push_timeout_zero_on_full",
                run: || {
                    let q = BoundedQueue::new(1).unwrap();
                    q.try_push(1u8).unwrap();
                    assert_eq!(q.push_timeout(2, Duration::ZERO), Err(PushError::Full(2)));
                },
            },
            Case {
                // A deadline beyond `Instant`'s range waits without one;
                // `close` ends the wait.
                name: "push_timeout_max_on_full_until_closed",
                run: || {
                    let q = BoundedQueue::new(1).unwrap();
                    q.try_push(1u8).unwrap();
                    let q2 = q.clone();
                    let t = std::thread::spawn(move || q2.push_timeout(2, Duration::MAX));
                    std::thread::sleep(Duration::from_millis(20));
                    q.close();
                    assert_eq!(t.join().unwrap(), Err(PushError::Closed(2)));
                },
            },
            Case {
                name: "pop_timeout_zero_on_empty",
                run: || {
                    let q = BoundedQueue::<u8>::new(1).unwrap();
                    assert_eq!(q.pop_timeout(Duration::ZERO), Err(PopError::Empty));
                },
            },
            Case {
                name: "pop_timeout_max_until_pushed",
                run: || {
                    let q = BoundedQueue::new(1).unwrap();
                    let q2 = q.clone();
                    let t = std::thread::spawn(move || q2.pop_timeout(Duration::MAX));
                    std::thread::sleep(Duration::from_millis(20));
                    q.push(9u8).unwrap();
                    assert_eq!(t.join().unwrap(), Ok(9));
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn task_queue_settings() {
    run_isolated(
        "task_queue_settings",
        &[
            Case {
                name: "capacity_0",
                run: || {
                    let err = TaskQueue::builder().capacity(0).build().unwrap_err();
                    assert_eq!(err, zero("capacity"));
                },
            },
            Case {
                name: "capacity_1",
                run: || {
                    let q = TaskQueue::builder().capacity(1).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    assert_eq!(
                        q.submit(Task::new("b")),
                        Err(SubmitError::Full(Task::new("b")))
                    );
                    assert!(matches!(
                        q.submit_batch(vec![Task::new("c"), Task::new("d")]),
                        Err(SubmitBatchError::Full(_))
                    ));
                },
            },
            Case {
                // The capacity is a limit, not an allocation.
                name: "capacity_max",
                run: || {
                    let q = TaskQueue::builder().capacity(usize::MAX).build().unwrap();
                    q.submit_batch(vec![Task::new("a"); 100]).unwrap();
                    assert_eq!(q.len(), 100);
                },
            },
            Case {
                name: "empty_batch",
                run: || {
                    let q = TaskQueue::builder().capacity(1).build().unwrap();
                    assert_eq!(q.submit_batch(Vec::new()), Ok(Vec::new()));
                    assert!(q.is_empty());
                },
            },
            Case {
                name: "max_attempts_0",
                run: || {
                    let err = TaskQueue::builder().max_attempts(0).build().unwrap_err();
                    assert_eq!(err, zero("max_attempts"));
                },
            },
            Case {
                name: "max_attempts_1",
                run: || {
                    let clock = ManualClock::new();
                    let q = on(&clock).max_attempts(1).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    let d = q.lease().unwrap();
                    assert_eq!(failed(&q, &d), Outcome::Dead);
                },
            },
            Case {
                name: "max_attempts_max",
                run: || {
                    let clock = ManualClock::new();
                    let q = on(&clock).max_attempts(u32::MAX).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    for _ in 0..100 {
                        let d = q.lease().unwrap();
                        assert_eq!(failed(&q, &d), Outcome::Retry { at: 0 });
                    }
                },
            },
            Case {
                name: "max_restarts_0",
                run: || {
                    let err = TaskQueue::builder().max_restarts(0).build().unwrap_err();
                    assert_eq!(err, zero("max_restarts"));
                },
            },
            Case {
                name: "max_restarts_1",
                run: || {
                    let store = MemoryStore::new();
                    let b = || TaskQueue::builder().store(store.clone()).max_restarts(1);
                    let q = b().build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    let _leased = q.lease().unwrap();
                    drop(q);
                    let q = b().build().unwrap();
                    assert_eq!(q.dead_letters().len(), 1);
                },
            },
            Case {
                name: "max_restarts_max",
                run: || {
                    let q = TaskQueue::builder().max_restarts(u32::MAX).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                },
            },
            Case {
                name: "lease_zero",
                run: || {
                    let err = TaskQueue::builder()
                        .lease(Duration::ZERO)
                        .build()
                        .unwrap_err();
                    assert_eq!(err, zero("lease"));
                },
            },
            Case {
                name: "lease_1ns",
                run: || {
                    let clock = ManualClock::new();
                    let q = on(&clock).lease(Duration::from_nanos(1)).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    let d = q.lease().unwrap();
                    assert!(q.lease().is_none());
                    clock.advance(Duration::from_nanos(1));
                    let again = q.lease().unwrap();
                    assert_eq!((again.id(), again.attempt()), (d.id(), 2));
                    assert_eq!(q.stats().expired_leases, 1);
                },
            },
            Case {
                // Documented: a lease whose end does not fit the clock
                // never expires.
                name: "lease_max_never_expires",
                run: || {
                    let clock = ManualClock::new();
                    let q = on(&clock).lease(Duration::MAX).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    let d = q.lease().unwrap();
                    assert_eq!(d.lease_until(), u64::MAX);
                    clock.set(Duration::from_nanos(u64::MAX));
                    assert!(q.lease().is_none());
                    assert!(q.lease_timeout(Duration::from_millis(30)).is_none());
                    assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
                },
            },
            Case {
                name: "submit_after_max",
                run: || {
                    let clock = ManualClock::new();
                    let q = on(&clock).build().unwrap();
                    q.submit_after(Task::new("a"), Duration::MAX).unwrap();
                    assert!(q.lease().is_none());
                    clock.advance(Duration::from_secs(1 << 30));
                    assert!(q.lease().is_none());
                    clock.set(Duration::from_nanos(u64::MAX));
                    assert!(q.lease().is_some());
                },
            },
            Case {
                name: "lease_timeout_zero_on_empty",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    assert!(q.lease_timeout(Duration::ZERO).is_none());
                },
            },
            Case {
                name: "lease_timeout_max_with_a_ready_task",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    assert!(q.lease_timeout(Duration::MAX).is_some());
                },
            },
            Case {
                name: "requeue_unknown_dead_letter",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    assert_eq!(q.requeue_dead(TaskId(u64::MAX)), Ok(false));
                    assert_eq!(q.purge_dead(), Ok(0));
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn backoff_settings() {
    run_isolated(
        "backoff_settings",
        &[
            Case {
                name: "exponential_base_zero_built_directly",
                run: || {
                    let b = Backoff::Exponential {
                        base: Duration::ZERO,
                        max: Duration::ZERO,
                    };
                    let err = TaskQueue::builder().backoff(b).build().unwrap_err();
                    assert_eq!(err, zero("backoff base"));
                    assert_eq!(b.check(), Err(zero("backoff base")));
                },
            },
            Case {
                name: "exponential_max_below_base_built_directly",
                run: || {
                    let b = Backoff::Exponential {
                        base: 2 * SEC,
                        max: SEC,
                    };
                    let err = TaskQueue::builder().backoff(b).build().unwrap_err();
                    assert!(matches!(err, BuildError::Invalid { .. }), "{err}");
                },
            },
            Case {
                name: "polynomial_unit_zero_built_directly",
                run: || {
                    let b = Backoff::Polynomial {
                        unit: Duration::ZERO,
                    };
                    let err = TaskQueue::builder().backoff(b).build().unwrap_err();
                    assert_eq!(err, zero("backoff unit"));
                },
            },
            Case {
                // Delays saturate at the end of the clock: the retry is due
                // at `u64::MAX` nanoseconds.
                name: "every_schedule_at_max",
                run: || {
                    let schedules = [
                        Backoff::exponential(Duration::MAX, Duration::MAX).unwrap(),
                        Backoff::polynomial(Duration::MAX).unwrap(),
                        Backoff::Fixed(Duration::MAX),
                    ];
                    for b in schedules {
                        for retry in [0, 1, 63, 64, u32::MAX] {
                            let (lo, hi) = b.bounds_nanos(retry);
                            let d = b.delay_nanos(retry, u64::MAX);
                            assert!(lo <= d && d <= hi, "{b:?}");
                        }
                        let clock = ManualClock::new();
                        let q = on(&clock).backoff(b).max_attempts(3).build().unwrap();
                        q.submit(Task::new("a")).unwrap();
                        let d = q.lease().unwrap();
                        match failed(&q, &d) {
                            Outcome::Retry { at } => assert!(at > 1 << 62, "{b:?}: {at}"),
                            other => panic!("{b:?}: {other:?}"),
                        }
                        assert!(q.lease().is_none());
                    }
                },
            },
            Case {
                name: "every_schedule_at_1ns",
                run: || {
                    let ns = Duration::from_nanos(1);
                    for b in [
                        Backoff::exponential(ns, ns).unwrap(),
                        Backoff::polynomial(ns).unwrap(),
                        Backoff::Fixed(ns),
                    ] {
                        for retry in [0, 1, u32::MAX] {
                            let (lo, hi) = b.bounds_nanos(retry);
                            for random in [0, u64::MAX] {
                                let d = b.delay_nanos(retry, random);
                                assert!(lo <= d && d <= hi, "{b:?}");
                            }
                        }
                    }
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn clock_edges() {
    run_isolated(
        "clock_edges",
        &[
            Case {
                // At the end of the clock every lease ends at u64::MAX and
                // so never expires: nothing is redelivered or dead-lettered
                // for want of time.
                name: "manual_clock_at_u64_max",
                run: || {
                    let clock = ManualClock::starting_at(Duration::from_nanos(u64::MAX));
                    let q = on(&clock).max_attempts(1).build().unwrap();
                    q.submit(Task::new("a")).unwrap();
                    q.submit_after(Task::new("b"), SEC).unwrap();
                    let a = q.lease().unwrap();
                    let b = q.lease().unwrap();
                    assert_eq!(a.lease_until(), u64::MAX);
                    assert!(q.lease().is_none());
                    assert!(q.dead_letters().is_empty());
                    assert_eq!(q.complete(&a, Ok(())), Outcome::Completed);
                    assert_eq!(q.complete(&b, Ok(())), Outcome::Completed);
                    assert!(q.is_empty());
                },
            },
            Case {
                // A clock stepping back delays what is due and keeps leases
                // longer; nothing is lost or redelivered early.
                name: "manual_clock_stepping_back",
                run: || {
                    let clock = ManualClock::starting_at(100 * SEC);
                    let q = on(&clock).lease(10 * SEC).build().unwrap();
                    q.submit_after(Task::new("later"), 5 * SEC).unwrap();
                    q.submit(Task::new("now")).unwrap();
                    let d = q.lease().unwrap();
                    assert_eq!(d.payload(), b"now");
                    clock.set(50 * SEC);
                    assert!(q.lease().is_none());
                    clock.set(105 * SEC);
                    assert_eq!(q.lease().unwrap().payload(), b"later");
                    assert_eq!(q.stats().expired_leases, 0);
                    clock.set(Duration::ZERO);
                    assert_eq!(q.complete(&d, Ok(())), Outcome::Completed);
                },
            },
            Case {
                // A store written by a process whose clock was far ahead.
                name: "recovery_with_a_clock_behind_the_store",
                run: || {
                    let store = MemoryStore::new();
                    let ahead = ManualClock::starting_at(Duration::from_nanos(u64::MAX - 10));
                    let q = on(&ahead).store(store.clone()).build().unwrap();
                    q.submit_after(Task::new("a"), 5 * SEC).unwrap();
                    drop(q);
                    let behind = ManualClock::new();
                    let q = on(&behind).store(store).build().unwrap();
                    assert!(q.lease().is_none());
                    behind.advance(5 * SEC);
                    assert!(q.lease().is_some());
                },
            },
        ],
        Limits::default(),
    );
}

/// CRC-32C, bit by bit (the store's own table-driven one is private): to
/// forge records whose only fault is their content.
fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn record(payload: Vec<u8>) -> TaskRecord {
    TaskRecord {
        id: TaskId(1),
        task: Task::new(payload),
        attempts: 0,
        restarts: 0,
        state: RecordState::Pending { run_at: 0 },
        written_at: 0,
    }
}

fn redb_round_trip(payload: Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.redb");
    {
        let q = TaskQueue::builder()
            .store(RedbStore::open(&path).unwrap())
            .build()
            .unwrap();
        q.submit(Task::new(payload.clone())).unwrap();
    }
    let q = TaskQueue::builder()
        .store(RedbStore::open(&path).unwrap())
        .build()
        .unwrap();
    assert_eq!(q.lease().unwrap().payload(), &payload[..]);
}

#[test]
fn payloads_and_records() {
    run_isolated(
        "payloads_and_records",
        &[
            Case {
                name: "empty_payload",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    q.submit(Task::new(Vec::new())).unwrap();
                    assert!(q.lease().unwrap().payload().is_empty());
                    redb_round_trip(Vec::new());
                },
            },
            Case {
                name: "large_payload",
                run: || redb_round_trip((0..16u32 << 20).map(|i| i as u8).collect()),
            },
            Case {
                // Refused on its own; the store carries on.
                name: "payload_over_the_record_limit",
                run: || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = RedbStore::open(dir.path().join("t.redb")).unwrap();
                    let err = store
                        .append(vec![StoreOp::Put(record(vec![0; (1 << 30) + 1]))])
                        .unwrap_err();
                    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
                    let t = store.append(vec![StoreOp::Put(record(vec![1]))]).unwrap();
                    store.wait(t).unwrap();
                },
            },
            Case {
                name: "unknown_priority",
                run: || {
                    let mut bytes = record(b"x".to_vec()).encode();
                    // version (1) and id (8) come before the priority.
                    bytes[9] = 7;
                    let n = bytes.len() - 4;
                    let crc = crc32c(&bytes[..n]);
                    bytes[n..].copy_from_slice(&crc.to_le_bytes());
                    let err = TaskRecord::decode(&bytes).unwrap_err();
                    assert!(err.to_string().contains("priority"), "{err}");
                },
            },
            Case {
                name: "unknown_state_tag",
                run: || {
                    let mut bytes = record(b"x".to_vec()).encode();
                    // version, id, priority, attempts, restarts, written_at.
                    bytes[1 + 8 + 1 + 4 + 4 + 8] = 9;
                    let n = bytes.len() - 4;
                    let crc = crc32c(&bytes[..n]);
                    bytes[n..].copy_from_slice(&crc.to_le_bytes());
                    let err = TaskRecord::decode(&bytes).unwrap_err();
                    assert!(err.to_string().contains("state"), "{err}");
                },
            },
            Case {
                name: "empty_and_huge_record_bytes",
                run: || {
                    assert!(TaskRecord::decode(&[]).is_err());
                    assert!(TaskRecord::decode(&[0xFF; 3]).is_err());
                    assert!(TaskRecord::decode(&vec![0xFF; 1 << 20]).is_err());
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn stores() {
    run_isolated(
        "stores",
        &[
            Case {
                name: "memory_ticket_0_and_max",
                run: || {
                    let s = MemoryStore::new();
                    assert_eq!(s.wait(Ticket(0)), Ok(()));
                    assert_eq!(
                        s.wait(Ticket(u64::MAX)),
                        Err(StoreError::UnknownTicket { ticket: u64::MAX })
                    );
                },
            },
            Case {
                // Defect 5: blocked forever.
                name: "redb_ticket_0_and_max",
                run: || {
                    let dir = tempfile::tempdir().unwrap();
                    let s = RedbStore::open(dir.path().join("t.redb")).unwrap();
                    assert_eq!(s.wait(Ticket(0)), Ok(()));
                    assert_eq!(
                        s.wait(Ticket(u64::MAX)),
                        Err(StoreError::UnknownTicket { ticket: u64::MAX })
                    );
                },
            },
            Case {
                name: "redb_open_a_directory",
                run: || {
                    let dir = tempfile::tempdir().unwrap();
                    assert!(RedbStore::open(dir.path()).is_err());
                },
            },
            Case {
                name: "redb_open_in_a_missing_directory",
                run: || {
                    let dir = tempfile::tempdir().unwrap();
                    let err = RedbStore::open(dir.path().join("no/such/dir/t.redb")).unwrap_err();
                    assert!(matches!(err, StoreError::Database { .. }), "{err}");
                },
            },
            Case {
                name: "redb_open_an_empty_path",
                run: || assert!(RedbStore::open("").is_err()),
            },
            Case {
                name: "redb_open_a_tiny_file",
                run: || {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("t.redb");
                    std::fs::write(&path, b"r").unwrap();
                    let err = RedbStore::open(&path).unwrap_err();
                    assert!(matches!(err, StoreError::Foreign { .. }), "{err}");
                },
            },
        ],
        Limits::default(),
    );
}

#[test]
fn worker_pool() {
    run_isolated(
        "worker_pool",
        &[
            Case {
                name: "workers_0",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    let err = WorkerPool::start(&q, 0, |_: &Delivery| Ok(())).unwrap_err();
                    assert_eq!(err, zero("workers"));
                },
            },
            Case {
                name: "workers_1",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    let pool = WorkerPool::start(&q, 1, |_: &Delivery| Ok(())).unwrap();
                    q.submit(Task::new("a")).unwrap();
                    while q.stats().completed < 1 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    // A zero deadline may leave the worker detached
                    // (documented), never lost or counted twice.
                    let report = pool.shutdown(Duration::ZERO);
                    assert_eq!(report.stopped_workers + report.busy_workers, 1);
                    assert!(report.in_flight.is_empty());
                },
            },
            Case {
                name: "workers_max",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    let err = WorkerPool::start(&q, usize::MAX, |_: &Delivery| Ok(())).unwrap_err();
                    assert_eq!(
                        err,
                        BuildError::TooLarge {
                            setting: "workers",
                            max: WorkerPool::MAX_WORKERS as u64
                        }
                    );
                },
            },
            Case {
                name: "shutdown_deadline_max",
                run: || {
                    let q = TaskQueue::builder().build().unwrap();
                    let pool = WorkerPool::start(&q, 2, |_: &Delivery| Ok(())).unwrap();
                    let report = pool.shutdown(Duration::MAX);
                    assert_eq!(report.stopped_workers, 2);
                },
            },
        ],
        Limits::default(),
    );
}
