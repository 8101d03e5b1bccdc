//! `RedisQueue` (feature `redis`): a task queue that many processes share,
//! on Redis Streams.
//!
//! - submit: one script per call (a batch is one call) that takes ids with
//!   `INCRBY` and `XADD`s the tasks to their priority stream, or `ZADD`s
//!   delayed ones; a batch is stored whole or not at all;
//! - lease: `XREADGROUP` on the three priority streams, one consumer per
//!   worker, high priority first;
//! - complete: `XACK` then `XDEL` (in `MULTI`/`EXEC`), batched: a
//!   worker's completions go as one `XACK` per stream in the same round
//!   trip as its next `XREADGROUP` (or once a fetch's worth is queued, and
//!   when the worker stops). A worker killed before that runs those tasks
//!   again: delivery is at least once, and what an acknowledged *submit*
//!   survives (`durability.rs`) is unchanged;
//! - lease expiry: `XAUTOCLAIM` with min-idle equal to the lease, so a
//!   crashed worker's tasks go to a live one; a running handler's lease is
//!   kept by a heartbeat (`XCLAIM ... JUSTID`, which resets the idle time
//!   without counting a delivery);
//! - attempts: the failures carried in the entry plus the entry's delivery
//!   count (from `XPENDING` for reclaimed entries);
//! - retries: a failed delivery is acknowledged and re-queued in one
//!   script, at once or through the delayed ZSET, which another script
//!   promotes atomically when due; after the last attempt the task goes to
//!   the dead-letter stream, which can be listed, requeued and purged.
//!
//! The settings and connecting are in `builder.rs`, what an
//! acknowledged submit survives in `durability.rs`, the scripts and key
//! layout in `scripts.rs`, the reply parsing in `reply.rs`, a worker's
//! side in `session.rs`.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use sysblocks_clock::SharedClock;

use crate::backend::{Backend, Session};
use crate::backoff::{Backoff, SplitMix64};
use crate::error::{BuildError, RedisQueueError};
use crate::sync::{AtomicBool, Mutex, Ordering, StdArc};
use crate::task::{Priority, Task, TaskId};

mod builder;
mod durability;
mod reply;
mod scripts;
mod session;

pub use builder::RedisQueueBuilder;
pub use durability::Durability;

use scripts::Scripts;
use session::RedisSession;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reply may take (above the longest `BLOCK`).
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's counters for a [`RedisQueue`] and its workers, and the
/// server's durability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisStats {
    /// Tasks submitted through this handle.
    pub submitted: u64,
    /// Deliveries handed to this process's workers.
    pub delivered: u64,
    /// Deliveries completed successfully.
    pub completed: u64,
    /// Failed attempts: handler errors, panics, timeouts and expired
    /// leases this process reclaimed.
    pub failed_attempts: u64,
    /// Entries reclaimed with `XAUTOCLAIM` after their lease ran out.
    pub expired_leases: u64,
    /// Successful completions of a delivery that was no longer pending
    /// (another worker had it, or it was done): duplicates.
    pub duplicate_completions: u64,
    /// Tasks this process moved to the dead letters.
    pub dead_lettered: u64,
    /// Leased but unstarted deliveries handed back at shutdown.
    pub released: u64,
    /// Errors from the server or the connection (each was retried or
    /// returned).
    pub errors: u64,
    /// Consumers this process removed from the group: its own workers'
    /// at shutdown, and those of dead workers (any process's) once they
    /// held no pending entry.
    pub consumers_removed: u64,
    /// Whether the server can lose acknowledged tasks (see
    /// [`Durability`]): the warning to log at start.
    pub may_lose_acknowledged: bool,
}

/// A dead letter of a [`RedisQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisDeadLetter {
    /// Its entry in the dead-letter stream: what
    /// [`RedisQueue::requeue_dead`] takes.
    pub stream_id: String,
    /// The task's id.
    pub id: TaskId,
    /// The task.
    pub task: Task,
    /// Failed attempts.
    pub attempts: u32,
    /// The last failure.
    pub error: String,
}

/// The names of a queue's keys (see `scripts.rs`).
#[derive(Debug)]
struct Keys {
    streams: [String; 3],
    delayed: String,
    dead: String,
    ids: String,
}

struct Inner {
    /// This handle's identity, which its deliveries carry.
    id: u64,
    client: redis::Client,
    keys: Keys,
    group: String,
    /// Consumer names are `<prefix>-<worker>`: unique per handle.
    consumer_prefix: String,
    lease: Duration,
    max_attempts: u32,
    backoff: Backoff,
    max_payload: usize,
    prefetch: usize,
    block: Duration,
    clock: SharedClock,
    scripts: Scripts,
    /// Idle connections for submits and admin calls.
    links: Mutex<Vec<redis::Connection>>,
    stats: Mutex<RedisStats>,
    durability: Durability,
    closed: AtomicBool,
    rng: Mutex<SplitMix64>,
}

/// A task queue on Redis Streams that producers and workers in many
/// processes share. A cheap `Clone` handle; a
/// [`WorkerPool`](crate::WorkerPool) runs the same handlers on it as on a
/// [`TaskQueue`](crate::TaskQueue).
///
/// Delivery is at least once: a worker that dies holding a task gives it
/// up after one lease, and another worker runs it again.
#[derive(Clone)]
pub struct RedisQueue {
    inner: StdArc<Inner>,
}

impl fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisQueue")
            .field("keys", &self.inner.keys)
            .field("group", &self.inner.group)
            .field("lease", &self.inner.lease)
            .field("durability", &self.inner.durability)
            .finish()
    }
}

impl Inner {
    fn connect(&self, command: &'static str) -> Result<redis::Connection, RedisQueueError> {
        let conn = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| reply::error(command, &e))?;
        conn.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| reply::error(command, &e))?;
        Ok(conn)
    }

    /// Creates the consumer group on each priority stream where it is
    /// missing (new queue, or the keys were flushed).
    fn ensure_groups(&self, conn: &mut redis::Connection) -> Result<(), RedisQueueError> {
        for key in &self.keys.streams {
            let r: redis::RedisResult<redis::Value> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(&self.group)
                .arg("0")
                .arg("MKSTREAM")
                .query(conn);
            match r {
                Ok(_) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(reply::error("XGROUP CREATE", &e)),
            }
        }
        Ok(())
    }

    /// Runs `f` on an idle connection (opening one if none is idle). A
    /// connection that failed is dropped; on `NOGROUP` the groups are
    /// created again and `f` runs once more.
    fn with_conn<T>(
        &self,
        command: &'static str,
        mut f: impl FnMut(&mut redis::Connection, &Inner) -> Result<T, RedisQueueError>,
    ) -> Result<T, RedisQueueError> {
        let pooled = self.links.lock().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect(command)?,
        };
        let mut result = f(&mut conn, self);
        if let Err(e) = &result {
            if reply::is_no_group(e) && self.ensure_groups(&mut conn).is_ok() {
                result = f(&mut conn, self);
            }
        }
        match &result {
            Err(RedisQueueError::Connection { .. }) => self.stats.lock().errors += 1,
            Err(_) => {
                self.stats.lock().errors += 1;
                self.links.lock().push(conn);
            }
            Ok(_) => self.links.lock().push(conn),
        }
        result
    }

    fn check_task(&self, task: &Task) -> Result<(), RedisQueueError> {
        if task.payload().len() > self.max_payload {
            return Err(RedisQueueError::PayloadTooLarge {
                len: task.payload().len(),
                max: self.max_payload,
            });
        }
        Ok(())
    }

    /// The backoff delay before retry number `retry` (0 for the first), in
    /// whole milliseconds (rounded up, so a positive delay stays positive).
    fn retry_delay_ms(&self, retry: u32) -> u64 {
        let random = self.rng.lock().next_u64();
        self.backoff.delay_nanos(retry, random).div_ceil(1_000_000)
    }
}

impl RedisQueue {
    fn inner(&self) -> &Inner {
        &self.inner
    }

    /// What the server promises for an acknowledged submit (read when the
    /// queue was built).
    #[must_use]
    pub fn durability(&self) -> Durability {
        self.inner.durability
    }

    /// This process's counters.
    #[must_use]
    pub fn stats(&self) -> RedisStats {
        *self.inner.stats.lock()
    }

    /// Submits a task. `Ok` means the server stored it (what that
    /// survives: [`Durability`]).
    ///
    /// # Errors
    ///
    /// [`RedisQueueError::PayloadTooLarge`], [`RedisQueueError::Closed`],
    /// or the server's or connection's error (the task may then have been
    /// stored or not).
    pub fn submit(&self, task: Task) -> Result<TaskId, RedisQueueError> {
        self.submit_inner(&[(task, Duration::ZERO)]).map(TaskId)
    }

    /// Submits a task that becomes ready after `delay` (server time).
    ///
    /// # Errors
    ///
    /// As [`RedisQueue::submit`].
    pub fn submit_after(&self, task: Task, delay: Duration) -> Result<TaskId, RedisQueueError> {
        self.submit_inner(&[(task, delay)]).map(TaskId)
    }

    /// Submits many tasks in one round trip, stored all together or not at
    /// all. Their ids are consecutive, in order.
    ///
    /// # Errors
    ///
    /// As [`RedisQueue::submit`]; no task is stored when a payload is too
    /// large.
    pub fn submit_batch(&self, tasks: Vec<Task>) -> Result<Vec<TaskId>, RedisQueueError> {
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let n = tasks.len() as u64;
        let batch: Vec<(Task, Duration)> = tasks.into_iter().map(|t| (t, Duration::ZERO)).collect();
        let first = self.submit_inner(&batch)?;
        Ok((first..first + n).map(TaskId).collect())
    }

    fn submit_inner(&self, tasks: &[(Task, Duration)]) -> Result<u64, RedisQueueError> {
        let inner = self.inner();
        if inner.closed.load(Ordering::Acquire) {
            return Err(RedisQueueError::Closed);
        }
        for (t, _) in tasks {
            inner.check_task(t)?;
        }
        let first = inner.with_conn("SUBMIT", |conn, inner| {
            let k = &inner.keys;
            let mut inv = inner.scripts.submit.prepare_invoke();
            inv.key(&k.ids)
                .key(&k.streams[0])
                .key(&k.streams[1])
                .key(&k.streams[2])
                .key(&k.delayed)
                .arg(tasks.len());
            for (t, delay) in tasks {
                let ms = delay.as_millis().min(u128::from(u64::MAX >> 11)) as u64;
                // A positive delay under 1 ms still waits.
                let ms = if delay.is_zero() { 0 } else { ms.max(1) };
                inv.arg(t.priority().level()).arg(ms).arg(t.payload());
            }
            let v: redis::Value = inv.invoke(conn).map_err(|e| reply::error("SUBMIT", &e))?;
            reply::int("SUBMIT", &v)
        })?;
        let first = u64::try_from(first).map_err(|_| RedisQueueError::UnexpectedReply {
            command: "SUBMIT",
            detail: format!("a negative first id {first}"),
        })?;
        inner.stats.lock().submitted += tasks.len() as u64;
        Ok(first)
    }

    /// Stops submits through this handle (and its clones):
    /// [`RedisQueueError::Closed`] from now on. Other processes are not
    /// affected; workers keep running.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// The dead letters, oldest first, at most `count`.
    ///
    /// # Errors
    ///
    /// The server's or connection's error.
    pub fn dead_letters(&self, count: usize) -> Result<Vec<RedisDeadLetter>, RedisQueueError> {
        self.inner().with_conn("XRANGE", |conn, inner| {
            let v: redis::Value = redis::cmd("XRANGE")
                .arg(&inner.keys.dead)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query(conn)
                .map_err(|e| reply::error("XRANGE", &e))?;
            Ok(reply::entries("XRANGE", v)?
                .into_iter()
                .map(|e| {
                    let level = e.number::<u8>(b"level").unwrap_or(1);
                    let priority = Priority::from_level(level).unwrap_or_default();
                    RedisDeadLetter {
                        id: TaskId(e.number(b"id").unwrap_or(0)),
                        task: Task::new(e.field(b"p").unwrap_or_default()).with_priority(priority),
                        attempts: e.number(b"a").unwrap_or(0),
                        error: String::from_utf8_lossy(e.field(b"err").unwrap_or_default())
                            .into_owned(),
                        stream_id: e.stream_id,
                    }
                })
                .collect())
        })
    }

    /// Moves the dead letter at `stream_id` (see
    /// [`RedisDeadLetter::stream_id`]) back to its priority stream with no
    /// failures. `Ok(false)` if there is no such dead letter.
    ///
    /// # Errors
    ///
    /// [`RedisQueueError::BadStreamId`] if `stream_id` is not a stream id;
    /// the server's or connection's error.
    pub fn requeue_dead(&self, stream_id: &str) -> Result<bool, RedisQueueError> {
        reply::check_stream_id(stream_id)?;
        self.inner().with_conn("REQUEUE", |conn, inner| {
            let k = &inner.keys;
            let v: redis::Value = inner
                .scripts
                .requeue
                .key(&k.dead)
                .key(&k.streams[0])
                .key(&k.streams[1])
                .key(&k.streams[2])
                .arg(stream_id)
                .invoke(conn)
                .map_err(|e| reply::error("REQUEUE", &e))?;
            Ok(reply::int("REQUEUE", &v)? == 1)
        })
    }

    /// Deletes every dead letter; returns how many there were.
    ///
    /// # Errors
    ///
    /// The server's or connection's error.
    pub fn purge_dead(&self) -> Result<usize, RedisQueueError> {
        self.inner().with_conn("PURGE", |conn, inner| {
            let v: redis::Value = inner
                .scripts
                .purge
                .key(&inner.keys.dead)
                .invoke(conn)
                .map_err(|e| reply::error("PURGE", &e))?;
            Ok(usize::try_from(reply::int("PURGE", &v)?).unwrap_or(0))
        })
    }

    /// Tasks in the priority streams (ready or leased, by any process)
    /// plus delayed ones.
    ///
    /// # Errors
    ///
    /// The server's or connection's error.
    pub fn pending(&self) -> Result<usize, RedisQueueError> {
        self.inner().with_conn("XLEN", |conn, inner| {
            let k = &inner.keys;
            let mut pipe = redis::pipe();
            for s in &k.streams {
                pipe.cmd("XLEN").arg(s);
            }
            pipe.cmd("ZCARD").arg(&k.delayed);
            let v: Vec<redis::Value> = pipe.query(conn).map_err(|e| reply::error("XLEN", &e))?;
            let mut n = 0usize;
            for x in &v {
                n = n.saturating_add(usize::try_from(reply::int("XLEN", x)?).unwrap_or(0));
            }
            Ok(n)
        })
    }

    /// A worker session with consumer name `<prefix>-<worker>` (what a
    /// [`WorkerPool`](crate::WorkerPool) opens for each worker).
    fn open_session(&self, worker: usize) -> RedisSession {
        RedisSession {
            consumer: format!("{}-{worker}", self.inner.consumer_prefix),
            inner: StdArc::clone(&self.inner),
            conn: None,
            buffer: VecDeque::new(),
            last_promote: None,
            last_reclaim: None,
            last_cleanup: None,
            acks: Vec::new(),
        }
    }
}

impl Backend for RedisQueue {
    fn session(&self, worker: usize) -> Result<Box<dyn Session>, BuildError> {
        Ok(Box::new(self.open_session(worker)))
    }

    fn lease(&self) -> Duration {
        self.inner.lease
    }

    // `clock` stays the default, real time: the server measures a lease
    // (the idle time XAUTOCLAIM compares) in real time, so the heartbeat
    // must beat in real time whatever clock paces this handle's sessions.

    fn close(&self) {
        RedisQueue::close(self);
    }

    fn wake_workers(&self) {
        // Workers block at most `block` in XREADGROUP, then look at the
        // stop flag.
    }

    fn pending(&self) -> usize {
        RedisQueue::pending(self).unwrap_or(0)
    }

    fn dead_letters(&self) -> usize {
        self.inner()
            .with_conn("XLEN", |conn, inner| {
                let v: redis::Value = redis::cmd("XLEN")
                    .arg(&inner.keys.dead)
                    .query(conn)
                    .map_err(|e| reply::error("XLEN", &e))?;
                reply::int("XLEN", &v)
            })
            .map_or(0, |n| usize::try_from(n).unwrap_or(0))
    }
}
