//! One worker's side of a [`RedisQueue`](super::RedisQueue): its own
//! connection and consumer name, the entries it read ahead, and the
//! periodic promotion of due delayed tasks and reclaiming of expired
//! leases.

use std::collections::VecDeque;
use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use super::{reply, Inner};
use crate::backend::Session;
use crate::error::{RedisQueueError, TaskError};
use crate::jobs::{Delivery, EntryRef, Outcome};
use crate::sync::{AtomicBool, Ordering, StdArc};
use crate::task::{Priority, Task, TaskId};

/// How often a session promotes due delayed tasks (clock nanoseconds).
const PROMOTE_EVERY: u64 = 50_000_000;
/// Delayed tasks promoted per script call.
const PROMOTE_LIMIT: usize = 256;
/// How long a report (complete, fail) keeps retrying through a broken
/// connection, e.g. while the server restarts.
const REPORT_PATIENCE: Duration = Duration::from_secs(10);
/// How much longer than the longest `XREADGROUP` block a consumer must be
/// idle before it is removed (see `RedisSession::cleanup_idle`).
const CLEANUP_MARGIN: Duration = Duration::from_secs(1);
/// The pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);

pub(super) struct RedisSession {
    pub(super) inner: StdArc<Inner>,
    pub(super) consumer: String,
    pub(super) conn: Option<redis::Connection>,
    /// Leased entries not handed out yet, most urgent first, with the clock
    /// time they were leased (or last extended).
    pub(super) buffer: VecDeque<(Delivery, u64)>,
    pub(super) last_promote: Option<u64>,
    pub(super) last_reclaim: Option<u64>,
    pub(super) last_cleanup: Option<u64>,
    /// Entries completed successfully but not acknowledged yet, as (level,
    /// stream id): sent as one `XACK` per stream with the next
    /// `XREADGROUP`, when there are `prefetch` of them, or when the session
    /// ends. A crash before then runs those tasks again (delivery is at
    /// least once; an acknowledged submit is never lost).
    pub(super) acks: Vec<(u8, String)>,
}

/// Appends, per priority stream with ids in `acks`, `MULTI`, one `XACK`
/// and one `XDEL` of all its ids, and `EXEC` (a crash between the two
/// would leave an acknowledged entry in the stream for good). Returns the
/// number of ids of each stream, in the order added: four replies each.
fn pipe_acks(pipe: &mut redis::Pipeline, inner: &Inner, acks: &[(u8, String)]) -> Vec<u64> {
    let mut counts = Vec::new();
    for level in 0..3u8 {
        let ids: Vec<&str> = acks
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, id)| id.as_str())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let key = &inner.keys.streams[usize::from(level)];
        pipe.cmd("MULTI")
            .cmd("XACK")
            .arg(key)
            .arg(&inner.group)
            .arg(&ids)
            .cmd("XDEL")
            .arg(key)
            .arg(&ids)
            .cmd("EXEC");
        counts.push(ids.len() as u64);
    }
    counts
}

/// The ids acknowledged, from the replies of [`pipe_acks`]' commands
/// (first in `replies`) for streams of `counts` ids.
fn acked(replies: &[redis::Value], counts: &[u64]) -> Result<u64, RedisQueueError> {
    let mut n = 0u64;
    for i in 0..counts.len() {
        let exec = replies.get(4 * i + 3).cloned().unwrap_or(redis::Value::Nil);
        let first = reply::array("XACK", exec)?.into_iter().next();
        let Some(x) = first else {
            return Err(RedisQueueError::UnexpectedReply {
                command: "XACK",
                detail: "no reply".into(),
            });
        };
        n += u64::try_from(reply::int("XACK", &x)?).unwrap_or(0);
    }
    Ok(n)
}

impl RedisSession {
    fn now(&self) -> u64 {
        self.inner.clock.now_nanos()
    }

    fn lease_nanos(&self) -> u64 {
        saturating_nanos(self.inner.lease)
    }

    /// Runs `f` on this session's connection, opening it if needed; a
    /// broken connection is dropped (reopened next time), a missing group
    /// is created again and `f` retried once.
    fn run<T>(
        &mut self,
        command: &'static str,
        mut f: impl FnMut(&mut redis::Connection, &Inner, &str) -> Result<T, RedisQueueError>,
    ) -> Result<T, RedisQueueError> {
        if self.conn.is_none() {
            self.conn = Some(self.inner.connect(command).inspect_err(|_| {
                self.inner.stats.lock().errors += 1;
            })?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(RedisQueueError::Closed);
        };
        let mut result = f(conn, &self.inner, &self.consumer);
        if let Err(e) = &result {
            if reply::is_no_group(e) && self.inner.ensure_groups(conn).is_ok() {
                result = f(conn, &self.inner, &self.consumer);
            }
        }
        if let Err(e) = &result {
            self.inner.stats.lock().errors += 1;
            if matches!(e, RedisQueueError::Connection { .. }) {
                self.conn = None;
            }
        }
        result
    }

    /// [`RedisSession::run`], retrying through broken connections for up
    /// to [`REPORT_PATIENCE`]: a report lost here means a duplicate later.
    fn run_patiently<T>(
        &mut self,
        command: &'static str,
        mut f: impl FnMut(&mut redis::Connection, &Inner, &str) -> Result<T, RedisQueueError>,
    ) -> Result<T, RedisQueueError> {
        let start = self.now();
        loop {
            match self.run(command, &mut f) {
                Err(RedisQueueError::Connection { .. })
                    if self.now().saturating_sub(start) < saturating_nanos(REPORT_PATIENCE) =>
                {
                    std::thread::sleep(RECONNECT_PAUSE);
                }
                other => return other,
            }
        }
    }

    /// A delivery for a read entry with `deliveries` deliveries so far, or
    /// `None` (and the entry dead-lettered) if it is malformed.
    fn delivery(
        &mut self,
        level: u8,
        entry: &reply::RawEntry,
        deliveries: u32,
    ) -> Option<Delivery> {
        let (Some(id), Some(failures), Some(payload)) = (
            entry.number::<u64>(b"id"),
            entry.number::<u32>(b"a"),
            entry.field(b"p"),
        ) else {
            let max = self.inner.max_attempts;
            let raw = entry
                .fields
                .iter()
                .flat_map(|(k, v)| [k.as_slice(), b"=", v.as_slice(), b" "])
                .flatten()
                .copied()
                .collect::<Vec<u8>>();
            let _ = self.fail_entry(level, &entry.stream_id, 0, max, &raw, 0, "malformed entry");
            return None;
        };
        let priority = Priority::from_level(level).unwrap_or_default();
        let before = failures.saturating_add(deliveries.saturating_sub(1));
        Some(Delivery {
            queue: self.inner.id,
            id: TaskId(id),
            token: 0,
            task: Task::new(payload).with_priority(priority),
            attempt: before.saturating_add(1),
            lease_until: self.now().saturating_add(self.lease_nanos()),
            entry: Some(EntryRef {
                level,
                stream_id: entry.stream_id.clone(),
                failures: before,
                consumer: self.consumer.clone(),
            }),
        })
    }

    fn level_of(&self, stream: &str) -> Option<u8> {
        self.inner
            .keys
            .streams
            .iter()
            .position(|k| k == stream)
            .and_then(|l| u8::try_from(l).ok())
    }

    /// Reads new entries (`XREADGROUP ... >`) into the buffer, blocking up
    /// to `block`.
    fn read(&mut self, block: Duration) -> Result<(), RedisQueueError> {
        let ms = block.as_millis().max(1);
        let acks = std::mem::take(&mut self.acks);
        let r = self.run("XREADGROUP", |conn, inner, consumer| {
            let k = &inner.keys.streams;
            let mut pipe = redis::pipe();
            let counts = pipe_acks(&mut pipe, inner, &acks);
            let mut read = redis::cmd("XREADGROUP");
            read.arg("GROUP")
                .arg(&inner.group)
                .arg(consumer)
                .arg("COUNT")
                .arg(inner.prefetch)
                .arg("BLOCK")
                .arg(ms as u64)
                .arg("STREAMS")
                .arg(&k[0])
                .arg(&k[1])
                .arg(&k[2])
                .arg(">")
                .arg(">")
                .arg(">");
            if acks.is_empty() {
                // Alone, so that its error (`NOGROUP`) comes back as is.
                let v = read
                    .query::<redis::Value>(conn)
                    .map_err(|e| reply::error("XREADGROUP", &e))?;
                return Ok((Ok(0), v));
            }
            pipe.add_command(read);
            let mut replies = pipe
                .query::<Vec<redis::Value>>(conn)
                .map_err(|e| reply::error("XREADGROUP", &e))?;
            let read = replies.pop().unwrap_or(redis::Value::Nil);
            // A bad answer to the acknowledgements does not lose the read.
            Ok((acked(&replies, &counts), read))
        });
        let v = match r {
            Ok((n, v)) => {
                match n {
                    Ok(n) => self.count_acks(acks.len() as u64, n),
                    Err(_) => self.inner.stats.lock().errors += 1,
                }
                v
            }
            Err(e) => {
                // Sent again next time if the connection broke (an `XACK`
                // that arrived then answers 0: a duplicate, harmless);
                // otherwise left to expire and run again.
                if matches!(e, RedisQueueError::Connection { .. }) {
                    self.acks.extend(acks);
                }
                return Err(e);
            }
        };
        let mut got: Vec<(u8, reply::RawEntry)> = Vec::new();
        for (stream, entries) in reply::streams("XREADGROUP", v)? {
            let Some(level) = self.level_of(&stream) else {
                return Err(RedisQueueError::UnexpectedReply {
                    command: "XREADGROUP",
                    detail: format!("entries of a stream not asked for: {stream}"),
                });
            };
            got.extend(entries.into_iter().map(|e| (level, e)));
        }
        got.sort_by_key(|(level, _)| *level);
        let now = self.now();
        for (level, e) in got {
            if let Some(d) = self.delivery(level, &e, 1) {
                self.buffer.push_back((d, now));
            }
        }
        Ok(())
    }

    /// Promotes due delayed tasks and reclaims expired leases, each on its
    /// own schedule.
    fn maintain(&mut self) {
        let now = self.now();
        if self
            .last_promote
            .is_none_or(|t| now.saturating_sub(t) >= PROMOTE_EVERY)
        {
            self.last_promote = Some(now);
            let _ = self.run("PROMOTE", |conn, inner, _| {
                let k = &inner.keys;
                inner
                    .scripts
                    .promote
                    .key(&k.delayed)
                    .key(&k.streams[0])
                    .key(&k.streams[1])
                    .key(&k.streams[2])
                    .key(&k.dead)
                    .arg(PROMOTE_LIMIT)
                    .invoke::<redis::Value>(conn)
                    .map_err(|e| reply::error("PROMOTE", &e))
            });
        }
        let every = (self.lease_nanos() / 4).max(10_000_000);
        if self
            .last_reclaim
            .is_none_or(|t| now.saturating_sub(t) >= every)
        {
            self.last_reclaim = Some(now);
            for level in 0..3u8 {
                if self.reclaim(level).is_err() {
                    break;
                }
            }
        }
        let idle = self.cleanup_idle();
        if self
            .last_cleanup
            .is_none_or(|t| now.saturating_sub(t) >= saturating_nanos(idle))
        {
            self.last_cleanup = Some(now);
            let _ = self.remove_consumers(idle, "");
        }
    }

    /// How long a consumer without pending entries stays idle before any
    /// session removes it from the group: a lease, and more than a live
    /// worker's longest `XREADGROUP` block, so that a consumer is not
    /// removed while it waits for entries.
    fn cleanup_idle(&self) -> Duration {
        self.inner.lease.max(self.inner.block + CLEANUP_MARGIN)
    }

    /// Removes the group's consumers without pending entries idle for
    /// `idle` or more (only `name`, unless it is empty).
    fn remove_consumers(&mut self, idle: Duration, name: &str) -> Result<i64, RedisQueueError> {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let removed = self.run("CLEANUP", |conn, inner, _| {
            let k = &inner.keys.streams;
            let v: redis::Value = inner
                .scripts
                .cleanup
                .key(&k[0])
                .key(&k[1])
                .key(&k[2])
                .arg(&inner.group)
                .arg(idle_ms)
                .arg(name)
                .invoke(conn)
                .map_err(|e| reply::error("CLEANUP", &e))?;
            reply::int("CLEANUP", &v)
        })?;
        self.inner.stats.lock().consumers_removed += u64::try_from(removed).unwrap_or(0);
        Ok(removed)
    }

    /// `XAUTOCLAIM`s entries of one stream idle for a lease or more; each
    /// is delivered again, or dead-lettered if that was its last attempt.
    fn reclaim(&mut self, level: u8) -> Result<(), RedisQueueError> {
        let lease_ms = self.inner.lease.as_millis().max(1) as u64;
        let v = self.run("XAUTOCLAIM", |conn, inner, consumer| {
            redis::cmd("XAUTOCLAIM")
                .arg(&inner.keys.streams[usize::from(level)])
                .arg(&inner.group)
                .arg(consumer)
                .arg(lease_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(inner.prefetch)
                .query::<redis::Value>(conn)
                .map_err(|e| reply::error("XAUTOCLAIM", &e))
        })?;
        let mut parts = reply::array("XAUTOCLAIM", v)?.into_iter();
        let claimed = match (parts.next(), parts.next()) {
            (Some(_cursor), Some(entries)) => reply::entries("XAUTOCLAIM", entries)?,
            _ => {
                return Err(RedisQueueError::UnexpectedReply {
                    command: "XAUTOCLAIM",
                    detail: "fewer than two parts".into(),
                })
            }
        };
        if claimed.is_empty() {
            return Ok(());
        }
        // The delivery counts, which XAUTOCLAIM raised by one.
        let ids: Vec<String> = claimed.iter().map(|e| e.stream_id.clone()).collect();
        let counts = self.run("XPENDING", |conn, inner, _| {
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("XPENDING")
                    .arg(&inner.keys.streams[usize::from(level)])
                    .arg(&inner.group)
                    .arg(id)
                    .arg(id)
                    .arg(1);
            }
            pipe.query::<Vec<redis::Value>>(conn)
                .map_err(|e| reply::error("XPENDING", &e))
        })?;
        let now = self.now();
        for (entry, count) in claimed.into_iter().zip(counts) {
            let deliveries = reply::array("XPENDING", count)?
                .into_iter()
                .next()
                .and_then(|row| reply::array("XPENDING", row).ok())
                .and_then(|row| row.get(3).and_then(|c| reply::int("XPENDING", c).ok()))
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(2);
            {
                let mut s = self.inner.stats.lock();
                s.expired_leases += 1;
                s.failed_attempts += 1;
            }
            let Some(d) = self.delivery(level, &entry, deliveries) else {
                continue;
            };
            let before = d.entry.as_ref().map_or(0, |e| e.failures);
            if before >= self.inner.max_attempts {
                let _ = self.fail_entry(
                    level,
                    &entry.stream_id,
                    d.id.0,
                    before,
                    d.payload(),
                    0,
                    "lease expired",
                );
                continue;
            }
            self.buffer.push_back((d, now));
        }
        Ok(())
    }

    /// Counts `acked` of `sent` queued completions as completed, the rest
    /// as duplicates (their entries were no longer pending).
    fn count_acks(&self, sent: u64, acked: u64) {
        let mut s = self.inner.stats.lock();
        s.completed += acked;
        s.duplicate_completions += sent.saturating_sub(acked);
    }

    /// Sends the queued acknowledgements now, in one round trip, retrying
    /// through broken connections; returns how many were acknowledged.
    fn flush_acks(&mut self) -> Result<u64, RedisQueueError> {
        if self.acks.is_empty() {
            return Ok(0);
        }
        let acks = std::mem::take(&mut self.acks);
        let n = self.run_patiently("XACK", |conn, inner, _| {
            let mut pipe = redis::pipe();
            let counts = pipe_acks(&mut pipe, inner, &acks);
            let replies = pipe
                .query::<Vec<redis::Value>>(conn)
                .map_err(|e| reply::error("XACK", &e))?;
            acked(&replies, &counts)
        })?;
        self.count_acks(acks.len() as u64, n);
        Ok(n)
    }

    /// Acknowledges and deletes an entry and re-queues its task after
    /// `delay_ms`, or dead-letters it when `failures` reached the maximum.
    /// Returns the script's answer: -1 stale, -2 dead, else the run-at time.
    #[allow(clippy::too_many_arguments)]
    fn fail_entry(
        &mut self,
        level: u8,
        stream_id: &str,
        id: u64,
        failures: u32,
        payload: &[u8],
        delay_ms: u64,
        error: &str,
    ) -> Result<i64, RedisQueueError> {
        let r = self.run_patiently("FAIL", |conn, inner, _| {
            let k = &inner.keys;
            let v: redis::Value = inner
                .scripts
                .fail
                .key(&k.streams[usize::from(level)])
                .key(&k.delayed)
                .key(&k.dead)
                .arg(&inner.group)
                .arg(stream_id)
                .arg(id)
                .arg(failures)
                .arg(level)
                .arg(payload)
                .arg(delay_ms)
                .arg(inner.max_attempts)
                .arg(error)
                .invoke(conn)
                .map_err(|e| reply::error("FAIL", &e))?;
            reply::int("FAIL", &v)
        })?;
        if r == -2 {
            self.inner.stats.lock().dead_lettered += 1;
        }
        Ok(r)
    }
}

impl Session for RedisSession {
    fn lease(&mut self, wait: Duration, stop: &AtomicBool) -> Option<Delivery> {
        let start = self.now();
        let wait_nanos = saturating_nanos(wait);
        loop {
            if stop.load(Ordering::Acquire) {
                return None;
            }
            if let Some((d, at)) = self.buffer.pop_front() {
                // Read ahead long enough ago that its lease may be running
                // out: renew it first, and skip it if it is lost.
                if self.now().saturating_sub(at) > self.lease_nanos() / 2 && !self.extend(&d) {
                    continue;
                }
                self.inner.stats.lock().delivered += 1;
                return Some(d);
            }
            self.maintain();
            if !self.buffer.is_empty() {
                continue;
            }
            let spent = self.now().saturating_sub(start);
            if spent >= wait_nanos {
                return None;
            }
            let block = self
                .inner
                .block
                .min(Duration::from_nanos(wait_nanos - spent));
            if let Err(e) = self.read(block) {
                if matches!(e, RedisQueueError::Connection { .. }) {
                    std::thread::sleep(RECONNECT_PAUSE.min(block));
                }
            }
        }
    }

    fn complete(&mut self, delivery: &Delivery, result: Result<(), TaskError>) -> Outcome {
        let Some(entry) = delivery.entry.clone() else {
            return Outcome::Foreign;
        };
        if delivery.queue != self.inner.id {
            return Outcome::Foreign;
        }
        match result {
            Ok(()) => {
                self.acks.push((entry.level, entry.stream_id));
                // More entries read ahead, or acknowledgements queued: this
                // one goes with the next read (or the batch when full).
                // Otherwise it is sent now, so that a lone completion
                // reports whether it was stale.
                let lone = self.acks.len() == 1 && self.buffer.is_empty();
                if !lone && self.acks.len() < self.inner.prefetch.max(1) {
                    return Outcome::Completed;
                }
                match self.flush_acks() {
                    Ok(n) if n > 0 || !lone => Outcome::Completed,
                    _ => Outcome::Stale,
                }
            }
            Err(e) => {
                let failures = entry.failures.saturating_add(1);
                let delay_ms = if failures >= self.inner.max_attempts {
                    0
                } else {
                    self.inner.retry_delay_ms(failures - 1)
                };
                let now = self.now();
                let r = self.fail_entry(
                    entry.level,
                    &entry.stream_id,
                    delivery.id.0,
                    failures,
                    delivery.payload(),
                    delay_ms,
                    e.message(),
                );
                match r {
                    Ok(-1) | Err(_) => Outcome::Stale,
                    Ok(-2) => {
                        self.inner.stats.lock().failed_attempts += 1;
                        Outcome::Dead
                    }
                    Ok(_) => {
                        self.inner.stats.lock().failed_attempts += 1;
                        Outcome::Retry {
                            at: now.saturating_add(delay_ms.saturating_mul(1_000_000)),
                        }
                    }
                }
            }
        }
    }

    fn extend(&mut self, delivery: &Delivery) -> bool {
        let Some(entry) = delivery.entry.clone() else {
            return false;
        };
        if delivery.queue != self.inner.id {
            return false;
        }
        let r = self.run("EXTEND", |conn, inner, _| {
            let v: redis::Value = inner
                .scripts
                .extend
                .key(&inner.keys.streams[usize::from(entry.level)])
                .arg(&inner.group)
                .arg(&entry.consumer)
                .arg(&entry.stream_id)
                .invoke(conn)
                .map_err(|e| reply::error("EXTEND", &e))?;
            reply::int("EXTEND", &v)
        });
        r == Ok(1)
    }

    fn release_unstarted(&mut self) -> Vec<TaskId> {
        let _ = self.flush_acks();
        let mut released = Vec::new();
        while let Some((d, _)) = self.buffer.pop_front() {
            let Some(entry) = d.entry.clone() else {
                continue;
            };
            let r = self.run_patiently("RELEASE", |conn, inner, consumer| {
                let v: redis::Value = inner
                    .scripts
                    .release
                    .key(&inner.keys.streams[usize::from(entry.level)])
                    .arg(&inner.group)
                    .arg(consumer)
                    .arg(&entry.stream_id)
                    .invoke(conn)
                    .map_err(|e| reply::error("RELEASE", &e))?;
                reply::int("RELEASE", &v)
            });
            if r == Ok(1) {
                released.push(d.id);
            }
        }
        self.inner.stats.lock().released += released.len() as u64;
        released
    }
}

impl Drop for RedisSession {
    /// A session that ends (its worker stopped) takes its consumer out of
    /// the group if it holds no pending entry, so that the group does not
    /// grow with every restart; if it does hold some (entries not handed
    /// back), the consumer stays until they are reclaimed and a live
    /// session's cleanup removes it.
    fn drop(&mut self) {
        if !self.acks.is_empty() {
            let _ = self.flush_acks();
        }
        if self.conn.is_some() {
            let consumer = self.consumer.clone();
            let _ = self.remove_consumers(Duration::ZERO, &consumer);
        }
    }
}
