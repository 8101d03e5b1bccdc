//! `RedisQueue` (feature `redis`) against a private redis-server: the same
//! handler and pool as the embedded queue, priorities, delays, retries and
//! dead letters, lease expiry and the heartbeat, graceful shutdown,
//! consumer clean-up, typed payloads, and bad input (typed errors, and the
//! queue keeps working: oversized payloads, unknown priority levels, bad
//! stream ids, `WRONGTYPE`, `FLUSHDB` and `FLUSHALL`). One server for the
//! binary, owned by its one test function (a server in a `static` would
//! outlive the process: statics are never dropped); each scenario uses its
//! own queue name.
#![cfg(all(feature = "redis", not(sysblocks_loom)))]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sysblocks_task_queue::{
    Backend, Backoff, Delivery, Durability, Outcome, Priority, RedisQueue, RedisQueueBuilder,
    RedisQueueError, Task, TaskError, TaskQueue, UnknownPriority, WorkerPool,
};
use sysblocks_testkit::redis::RedisServer;

/// The URL of the binary's server, set by [`redis_backend`] while it runs.
static URL: OnceLock<String> = OnceLock::new();

fn url() -> Option<String> {
    URL.get().cloned()
}

/// Runs every scenario against one private server (persistence off),
/// stopped when this function returns or panics.
#[test]
fn redis_backend() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    URL.set(server.url()).unwrap();
    let scenarios: &[(&str, fn())] = &[
        ("same code", the_same_handler_and_pool_run_on_both_backends),
        ("batches", batches_are_stored_whole_with_consecutive_ids),
        ("priorities", higher_priorities_are_drained_first),
        ("delays", delayed_tasks_wait_for_their_time),
        (
            "dead letters",
            failures_retry_then_dead_letter_which_can_be_requeued_and_purged,
        ),
        (
            "lease expiry",
            an_expired_lease_is_reclaimed_with_its_attempt_counted,
        ),
        ("heartbeat", the_heartbeat_keeps_a_long_handler_leased),
        ("handler timeout", a_handler_timeout_fails_the_attempt),
        ("shutdown", shutdown_hands_back_what_was_read_ahead),
        (
            "batched acks",
            completions_are_batched_and_flushed_when_the_session_ends,
        ),
        ("acks at shutdown", a_pool_shutdown_leaves_no_pending_entry),
        (
            "wrong type",
            a_key_of_the_wrong_type_is_a_typed_error_and_the_queue_recovers,
        ),
        (
            "flushed",
            a_flushed_database_loses_the_group_and_the_queue_recreates_it,
        ),
        (
            "consumers",
            consumers_of_stopped_and_dead_workers_leave_the_group,
        ),
        ("typed", typed_payloads_go_through_redis),
        (
            "unknown priority",
            unknown_priority_levels_in_stored_data_are_contained,
        ),
        ("durability", the_durability_setting_is_read_at_start),
        ("settings", bad_settings_are_refused),
    ];
    // In parallel, as separate tests would run; a panic names its scenario.
    std::thread::scope(|s| {
        let runs: Vec<_> = scenarios
            .iter()
            .map(|&(name, f)| (name, s.spawn(f)))
            .collect();
        let failed: Vec<&str> = runs
            .into_iter()
            .filter_map(|(name, h)| h.join().is_err().then_some(name))
            .collect();
        assert!(failed.is_empty(), "failed: {failed:?}");
    });
    // Last and alone: it empties every database.
    a_flushall_loses_the_groups_and_a_running_pool_carries_on();
    drop(server);
}

fn builder(name: &str) -> Option<RedisQueueBuilder> {
    Some(
        RedisQueue::builder(url()?)
            .name(name)
            .backoff(Backoff::Fixed(Duration::ZERO))
            .block(Duration::from_millis(20)),
    )
}

fn cmd(url: &str, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_connection().unwrap();
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(&mut c).unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The one handler both backends run: it records payloads, fails those
/// starting with "fail".
fn handler(seen: Arc<Mutex<Vec<Vec<u8>>>>) -> impl Fn(&Delivery) -> Result<(), TaskError> {
    move |d: &Delivery| {
        seen.lock().unwrap().push(d.payload().to_vec());
        if d.payload().starts_with(b"fail") {
            Err(TaskError::new("asked to fail"))
        } else {
            Ok(())
        }
    }
}

/// Runs 100 tasks through a pool of 4 on any backend.
fn run_pool<B: Backend + Clone>(backend: &B, submit: impl Fn(Task)) -> Vec<Vec<u8>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::start(backend, 4, handler(Arc::clone(&seen))).unwrap();
    for i in 0..100u32 {
        submit(Task::new(format!("video-{i}")));
    }
    wait_until("100 tasks ran", || seen.lock().unwrap().len() >= 100);
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!(report.busy_workers, 0);
    let mut got = seen.lock().unwrap().clone();
    got.sort();
    got
}

fn the_same_handler_and_pool_run_on_both_backends() {
    let Some(b) = builder("same-code") else {
        return;
    };
    let redis = b.build().unwrap();
    let local = TaskQueue::builder().build().unwrap();
    let on_redis = run_pool(&redis, |t| {
        redis.submit(t).unwrap();
    });
    let on_local = run_pool(&local, |t| {
        local.submit(t).unwrap();
    });
    assert_eq!(on_redis, on_local);
    assert_eq!(on_redis.len(), 100);
    let s = redis.stats();
    assert_eq!((s.submitted, s.completed, s.delivered), (100, 100, 100));
    assert_eq!(redis.pending().unwrap(), 0, "completed entries are deleted");
}

fn batches_are_stored_whole_with_consecutive_ids() {
    let Some(b) = builder("batch") else { return };
    let q = b.build().unwrap();
    let ids = q
        .submit_batch((0..50).map(|i| Task::new(vec![i as u8])).collect())
        .unwrap();
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    assert_eq!(q.pending().unwrap(), 50);
    // One payload too large: nothing of the batch is stored.
    let q2 = builder("batch2").unwrap().max_payload(4).build().unwrap();
    let err = q2
        .submit_batch(vec![Task::new("ok"), Task::new("too large")])
        .unwrap_err();
    assert_eq!(err, RedisQueueError::PayloadTooLarge { len: 9, max: 4 });
    assert_eq!(q2.pending().unwrap(), 0);
    // Alone, too; the queue takes the next task.
    assert_eq!(
        q2.submit(Task::new("12345")),
        Err(RedisQueueError::PayloadTooLarge { len: 5, max: 4 })
    );
    q2.submit(Task::new("1234")).unwrap();
    assert_eq!(q2.pending().unwrap(), 1);
}

fn higher_priorities_are_drained_first() {
    let Some(b) = builder("prio") else { return };
    let q = b.build().unwrap();
    q.submit(Task::new("low").with_priority(Priority::Low))
        .unwrap();
    q.submit(Task::new("normal")).unwrap();
    q.submit(Task::new("high").with_priority(Priority::High))
        .unwrap();
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    let mut order = Vec::new();
    for _ in 0..3 {
        let d = s.lease(Duration::from_secs(2), &stop).unwrap();
        order.push(String::from_utf8(d.payload().to_vec()).unwrap());
        assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
    }
    assert_eq!(order, ["high", "normal", "low"]);
}

fn delayed_tasks_wait_for_their_time() {
    let Some(b) = builder("delay") else { return };
    let q = b.build().unwrap();
    let start = Instant::now();
    q.submit_after(Task::new("later"), Duration::from_millis(300))
        .unwrap();
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    assert!(s.lease(Duration::from_millis(100), &stop).is_none());
    let d = s.lease(Duration::from_secs(5), &stop).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(290));
    assert_eq!(d.payload(), b"later");
}

fn failures_retry_then_dead_letter_which_can_be_requeued_and_purged() {
    let Some(b) = builder("dead") else { return };
    let q = b
        .max_attempts(3)
        .backoff(Backoff::Fixed(Duration::from_millis(20)))
        .build()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::start(&q, 2, handler(Arc::clone(&seen))).unwrap();
    let id = q.submit(Task::new("fail-me")).unwrap();
    wait_until("dead letter", || {
        q.dead_letters(10).is_ok_and(|d| !d.is_empty())
    });
    let _ = pool.shutdown(Duration::from_secs(5));
    assert_eq!(seen.lock().unwrap().len(), 3, "three attempts");
    let dead = q.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 3));
    assert_eq!(dead[0].task.payload(), b"fail-me");
    assert_eq!(dead[0].error, "asked to fail");
    assert_eq!(q.stats().failed_attempts, 3);

    // Requeue: delivered again with a fresh count.
    assert_eq!(
        q.requeue_dead("not-an-id"),
        Err(RedisQueueError::BadStreamId("not-an-id".into()))
    );
    assert!(q.requeue_dead(&dead[0].stream_id).unwrap());
    assert!(!q.requeue_dead(&dead[0].stream_id).unwrap());
    let mut s = q.session(9).unwrap();
    let stop = AtomicBool::new(false);
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!((d.id(), d.attempt()), (id, 1));
    assert!(matches!(
        s.complete(&d, Err(TaskError::new("again"))),
        Outcome::Retry { .. }
    ));
    // Stale: the entry is no longer pending.
    assert_eq!(s.complete(&d, Ok(())), Outcome::Stale);
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!((d.id(), d.attempt()), (id, 2));
    assert!(matches!(
        s.complete(&d, Err(TaskError::new("again"))),
        Outcome::Retry { .. }
    ));
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(d.attempt(), 3);
    assert_eq!(s.complete(&d, Err(TaskError::new("last"))), Outcome::Dead);
    assert_eq!(q.purge_dead().unwrap(), 1);
    assert!(q.dead_letters(10).unwrap().is_empty());
}

fn an_expired_lease_is_reclaimed_with_its_attempt_counted() {
    let Some(b) = builder("expiry") else { return };
    let q = b
        .lease(Duration::from_millis(100))
        .max_attempts(2)
        .build()
        .unwrap();
    q.submit(Task::new("crashy")).unwrap();
    let stop = AtomicBool::new(false);
    let mut a = q.session(0).unwrap();
    let first = a.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(first.attempt(), 1);
    // `a` dies holding it. `b` gets it after the lease, as attempt 2.
    let mut b = q.session(1).unwrap();
    let start = Instant::now();
    let second = b.lease(Duration::from_secs(5), &stop).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!((second.id(), second.attempt()), (first.id(), 2));
    // A late success of the first delivery still completes the task (as
    // on the embedded queue); the second delivery's is then a duplicate.
    assert_eq!(a.complete(&first, Ok(())), Outcome::Completed);
    assert_eq!(b.complete(&second, Ok(())), Outcome::Stale);
    assert!(q.stats().expired_leases >= 1);
    assert_eq!(q.stats().duplicate_completions, 1);

    // With max_attempts 2, a second expiry dead-letters the task.
    q.submit(Task::new("crashy-2")).unwrap();
    let _held = a.lease(Duration::from_secs(2), &stop).unwrap();
    let _held2 = loop {
        // b reclaims it once (attempt 2) and "dies" too.
        if let Some(d) = b.lease(Duration::from_secs(5), &stop) {
            break d;
        }
    };
    let mut c = q.session(2).unwrap();
    assert!(c.lease(Duration::from_millis(400), &stop).is_none());
    let dead = q.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "lease expired");
}

fn the_heartbeat_keeps_a_long_handler_leased() {
    let Some(b) = builder("heartbeat") else {
        return;
    };
    let q = b.lease(Duration::from_millis(90)).build().unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&runs);
    let pool = WorkerPool::start(&q, 3, move |_: &Delivery| -> Result<(), TaskError> {
        r.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        Ok(())
    })
    .unwrap();
    q.submit(Task::new("long")).unwrap();
    wait_until("completed", || q.stats().completed == 1);
    let _ = pool.shutdown(Duration::from_secs(5));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "reclaimed while running");
    assert_eq!(q.stats().expired_leases, 0);
}

fn a_handler_timeout_fails_the_attempt() {
    let Some(b) = builder("timeout") else { return };
    let q = b.max_attempts(2).build().unwrap();
    let pool = WorkerPool::start_with_timeout(
        &q,
        1,
        Duration::from_millis(50),
        |_: &Delivery| -> Result<(), TaskError> {
            std::thread::sleep(Duration::from_millis(150));
            Ok(())
        },
    )
    .unwrap();
    q.submit(Task::new("slow")).unwrap();
    wait_until("dead letter", || {
        q.dead_letters(10).is_ok_and(|d| !d.is_empty())
    });
    let _ = pool.shutdown(Duration::from_secs(5));
    assert_eq!(q.dead_letters(10).unwrap()[0].error, "handler timed out");
}

fn shutdown_hands_back_what_was_read_ahead() {
    let Some(b) = builder("shutdown") else { return };
    let q = b.prefetch(4).build().unwrap();
    q.submit_batch((0..8).map(|i| Task::new(vec![i])).collect())
        .unwrap();
    let started = Arc::new(AtomicU32::new(0));
    let st = Arc::clone(&started);
    let pool = WorkerPool::start(&q, 1, move |_: &Delivery| -> Result<(), TaskError> {
        st.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    })
    .unwrap();
    wait_until("one started", || started.load(Ordering::SeqCst) == 1);
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!(report.busy_workers, 0);
    assert_eq!(report.released.len(), 3, "the three read ahead");
    assert_eq!(q.stats().completed, 1);
    // Everything else is still there, free for any worker at once.
    assert_eq!(q.pending().unwrap(), 7);
    let mut s = q.session(5).unwrap();
    let stop = AtomicBool::new(false);
    for _ in 0..7 {
        let d = s.lease(Duration::from_secs(2), &stop).unwrap();
        assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
    }
}

/// The group's pending entries (`XPENDING` summary) on each stream.
fn pending_entries(name: &str) -> Vec<i64> {
    let url = url().unwrap();
    (0..3)
        .map(|l| {
            match cmd(
                &url,
                &["XPENDING", &format!("tq:{{{name}}}:s:{l}"), "workers"],
            ) {
                redis::Value::Array(a) => match a.first() {
                    Some(redis::Value::Int(n)) => *n,
                    other => panic!("XPENDING count: {other:?}"),
                },
                other => panic!("XPENDING: {other:?}"),
            }
        })
        .collect()
}

fn completions_are_batched_and_flushed_when_the_session_ends() {
    let Some(b) = builder("batched-acks") else {
        return;
    };
    let q = b.prefetch(8).build().unwrap();
    q.submit_batch((0..4).map(|i| Task::new(vec![i])).collect())
        .unwrap();
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    for _ in 0..3 {
        let d = s.lease(Duration::from_secs(2), &stop).unwrap();
        assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
    }
    // Three completions queued, not sent yet: all four entries pending.
    assert_eq!(pending_entries("batched-acks"), [0, 4, 0]);
    assert_eq!(q.stats().completed, 0);
    let _last = s.lease(Duration::from_secs(2), &stop).unwrap();
    drop(s);
    // The session's end sent them; the unfinished one stays pending.
    assert_eq!(pending_entries("batched-acks"), [0, 1, 0]);
    assert_eq!(q.stats().completed, 3);
    assert_eq!(q.pending().unwrap(), 1, "completed entries are deleted");
}

fn a_pool_shutdown_leaves_no_pending_entry() {
    let Some(b) = builder("acks-at-shutdown") else {
        return;
    };
    let q = b.prefetch(64).build().unwrap();
    let ran = Arc::new(AtomicU32::new(0));
    let r = Arc::clone(&ran);
    let pool = WorkerPool::start(&q, 4, move |_: &Delivery| -> Result<(), TaskError> {
        r.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    q.submit_batch(
        (0..500u32)
            .map(|i| Task::new(i.to_le_bytes().to_vec()))
            .collect(),
    )
    .unwrap();
    wait_until("500 ran", || ran.load(Ordering::SeqCst) >= 500);
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!(report.busy_workers, 0);
    assert_eq!(pending_entries("acks-at-shutdown"), [0, 0, 0]);
    assert_eq!(q.stats().completed, 500);
    assert_eq!(q.pending().unwrap(), 0);
}

fn a_key_of_the_wrong_type_is_a_typed_error_and_the_queue_recovers() {
    let Some(b) = builder("wrongtype") else {
        return;
    };
    let url = url().unwrap();
    let q = b.build().unwrap();
    let key = "tq:{wrongtype}:s:1";
    cmd(&url, &["DEL", key]);
    cmd(&url, &["SET", key, "not a stream"]);
    match q.submit(Task::new("x")) {
        Err(RedisQueueError::WrongType { .. }) => {}
        other => panic!("expected WrongType, got {other:?}"),
    }
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    assert!(s.lease(Duration::from_millis(50), &stop).is_none());
    cmd(&url, &["DEL", key]);
    q.submit(Task::new("after")).unwrap();
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(d.payload(), b"after");
    assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
}

fn a_flushed_database_loses_the_group_and_the_queue_recreates_it() {
    let Some(url) = url() else { return };
    // Database 1, so that other tests' queues (database 0) are untouched.
    let db1 = format!("{url}1");
    let q = RedisQueue::builder(&db1)
        .name("flushed")
        .block(Duration::from_millis(20))
        .build()
        .unwrap();
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    q.submit(Task::new("before")).unwrap();
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    cmd(&db1, &["FLUSHDB"]);
    // The delivery's entry is gone: completing it is stale, not a panic.
    assert_eq!(s.complete(&d, Ok(())), Outcome::Stale);
    assert!(s.lease(Duration::from_millis(50), &stop).is_none());
    q.submit(Task::new("after")).unwrap();
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(d.payload(), b"after");
    assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
}

/// Consumers in the group of each priority stream of queue `name`.
fn consumers(name: &str) -> Vec<usize> {
    let url = url().unwrap();
    (0..3)
        .map(|l| {
            match cmd(
                &url,
                &[
                    "XINFO",
                    "CONSUMERS",
                    &format!("tq:{{{name}}}:s:{l}"),
                    "workers",
                ],
            ) {
                redis::Value::Array(a) => a.len(),
                other => panic!("XINFO CONSUMERS: {other:?}"),
            }
        })
        .collect()
}

fn consumers_of_stopped_and_dead_workers_leave_the_group() {
    let Some(b) = builder("consumers") else {
        return;
    };
    let q = b.lease(Duration::from_millis(100)).build().unwrap();
    // A pool shut down takes its consumers out of the group.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::start(&q, 3, handler(Arc::clone(&seen))).unwrap();
    for i in 0..10 {
        q.submit(Task::new(format!("c{i}"))).unwrap();
    }
    wait_until("10 ran", || seen.lock().unwrap().len() >= 10);
    // A consumer is created where it is first handed an entry: on the
    // normal stream, for each worker that ran a task.
    let before = consumers("consumers");
    assert!(
        before[1] >= 1 && before[0] == 0 && before[2] == 0,
        "{before:?}"
    );
    let _ = pool.shutdown(Duration::from_secs(5));
    assert_eq!(consumers("consumers"), [0, 0, 0]);
    assert_eq!(q.stats().consumers_removed, before[1] as u64);

    // A worker that dies holding a task leaves a consumer with a pending
    // entry: it stays until the entry is reclaimed, then a live session
    // removes it. (The shutdown closed the first handle.)
    let q = builder("consumers")
        .unwrap()
        .lease(Duration::from_millis(100))
        .build()
        .unwrap();
    q.submit(Task::new("held")).unwrap();
    let stop = AtomicBool::new(false);
    let mut dead = q.session(0).unwrap();
    let held = dead.lease(Duration::from_secs(2), &stop).unwrap();
    std::mem::forget(dead);
    let mut live = q.session(1).unwrap();
    let again = live.lease(Duration::from_secs(5), &stop).unwrap();
    assert_eq!(again.id(), held.id());
    assert_eq!(live.complete(&again, Ok(())), Outcome::Completed);
    // Both consumers exist now; the dead one's is removed once idle.
    assert_eq!(consumers("consumers")[1], 2);
    wait_until("the dead consumer removed", || {
        let _ = live.lease(Duration::from_millis(50), &stop);
        consumers("consumers")[1] == 1
    });
    // The live consumer is still in the group, and still works.
    q.submit(Task::new("after")).unwrap();
    let d = live.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(live.complete(&d, Ok(())), Outcome::Completed);
    drop(live);
    assert_eq!(consumers("consumers"), [0, 0, 0]);
}

#[cfg(feature = "serde")]
fn typed_payloads_go_through_redis() {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Upload {
        id: u64,
        name: String,
        sizes: Vec<u32>,
    }
    let Some(b) = builder("typed") else { return };
    let q = b.max_attempts(1).build().unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    let pool = WorkerPool::start(&q, 2, move |d: &Delivery| -> Result<(), TaskError> {
        let u: Upload = d.deserialize()?;
        g.lock().unwrap().push(u);
        Ok(())
    })
    .unwrap();
    let uploads: Vec<Upload> = (0..10)
        .map(|i| Upload {
            id: i,
            name: format!("clip-{i}.mov"),
            sizes: vec![1 << i, 7],
        })
        .collect();
    for u in &uploads {
        q.submit(Task::serialize(u).unwrap()).unwrap();
    }
    q.submit(Task::new("[1, 2")).unwrap();
    wait_until("typed tasks ran and the bad one died", || {
        got.lock().unwrap().len() >= 10 && q.dead_letters(10).is_ok_and(|d| !d.is_empty())
    });
    let _ = pool.shutdown(Duration::from_secs(5));
    let mut got = got.lock().unwrap().clone();
    got.sort_by_key(|u| u.id);
    assert_eq!(got, uploads);
    let dead = q.dead_letters(10).unwrap();
    assert!(
        dead[0].error.starts_with("payload does not decode"),
        "{}",
        dead[0].error
    );
    assert!(dead[0].task.deserialize::<Upload>().is_err());
}

#[cfg(not(feature = "serde"))]
fn typed_payloads_go_through_redis() {}

fn unknown_priority_levels_in_stored_data_are_contained() {
    let Some(b) = builder("level") else { return };
    let url = url().unwrap();
    let q = b.build().unwrap();
    assert_eq!(Priority::try_from(3), Err(UnknownPriority(3)));
    // A delayed task written by another client with level 7: promoted to
    // the dead letters, not to a stream that does not exist.
    cmd(
        &url,
        &["ZADD", "tq:{level}:delayed", "0", "7:41:0:from elsewhere"],
    );
    q.submit(Task::new("fine")).unwrap();
    let mut s = q.session(0).unwrap();
    let stop = AtomicBool::new(false);
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!(d.payload(), b"fine");
    assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
    let dead = q.dead_letters(10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].error, "malformed delayed member");
    assert_eq!(dead[0].task.payload(), b"7:41:0:from elsewhere");
    // A dead letter with level 9 lists and requeues as normal.
    q.purge_dead().unwrap();
    cmd(
        &url,
        &[
            "XADD",
            "tq:{level}:dead",
            "*",
            "id",
            "42",
            "a",
            "5",
            "level",
            "9",
            "p",
            "odd",
            "err",
            "x",
        ],
    );
    let dead = q.dead_letters(10).unwrap();
    assert_eq!(dead[0].task.priority(), Priority::Normal);
    assert!(q.requeue_dead(&dead[0].stream_id).unwrap());
    let d = s.lease(Duration::from_secs(2), &stop).unwrap();
    assert_eq!((d.id().0, d.payload()), (42, &b"odd"[..]));
    assert_eq!(d.task().priority(), Priority::Normal);
    assert_eq!(s.complete(&d, Ok(())), Outcome::Completed);
}

/// `FLUSHALL` under a running pool: the in-flight delivery's entry is
/// gone (its completion is stale), the groups are created again on the
/// next command that misses them, and tasks submitted afterwards run.
fn a_flushall_loses_the_groups_and_a_running_pool_carries_on() {
    let Some(b) = builder("flushall") else {
        return;
    };
    let url = url().unwrap();
    let q = b.build().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = WorkerPool::start(&q, 2, handler(Arc::clone(&seen))).unwrap();
    for i in 0..5 {
        q.submit(Task::new(format!("before-{i}"))).unwrap();
    }
    wait_until("before ran", || seen.lock().unwrap().len() >= 5);
    q.submit_after(Task::new("delayed, flushed"), Duration::from_secs(60))
        .unwrap();
    cmd(&url, &["FLUSHALL"]);
    assert_eq!(q.pending().unwrap(), 0);
    for i in 0..5 {
        q.submit(Task::new(format!("after-{i}"))).unwrap();
    }
    wait_until("after ran", || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|p| p.starts_with(b"after"))
            .count()
            >= 5
    });
    let report = pool.shutdown(Duration::from_secs(5));
    assert_eq!((report.busy_workers, report.pending), (0, 0));
}

fn the_durability_setting_is_read_at_start() {
    let Some(b) = builder("durability") else {
        return;
    };
    let q = b.build().unwrap();
    // The binary's server runs without an append-only file.
    assert_eq!(q.durability(), Durability::Off);
    assert!(q.stats().may_lose_acknowledged);
}

fn bad_settings_are_refused() {
    let Some(b) = builder("settings") else { return };
    assert!(matches!(
        b.clone().lease(Duration::ZERO).build(),
        Err(RedisQueueError::Build(_))
    ));
    assert!(matches!(
        b.clone().name("a{b").build(),
        Err(RedisQueueError::Build(_))
    ));
    assert!(matches!(
        RedisQueue::builder("not a url").build(),
        Err(RedisQueueError::Build(_))
    ));
    // Nothing listens on port 1.
    assert!(matches!(
        RedisQueue::builder("redis://127.0.0.1:1/").build(),
        Err(RedisQueueError::Connection { .. })
    ));
}
