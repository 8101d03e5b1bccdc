//! The Redis cases of `task-queue`: one round of tasks submitted by
//! [`PRODUCERS`] threads and run by [`WORKERS`] workers, end to end (the
//! first submit to the last acknowledged completion), on a server that
//! `compare` starts (`crate::workloads::rate_limiter_redis::Server`).
//!
//! - ours: `RedisQueue` and a `WorkerPool` of 4 workers (how a user runs
//!   it); batched: `submit_batch` and `prefetch`;
//! - apalis-redis: 4 apalis workers, each on its `RedisStorage` over one
//!   shared `ConnectionManager` (its README's set-up), polling every
//!   [`APALIS_POLL`] when idle; batched: `push_bulk` and `batch_size`;
//! - the classic reliable list queue (RQ, Sidekiq): `LPUSH`, `BLMOVE`
//!   into the worker's own processing list, `LREM` once done; batched:
//!   one `LPUSH` of many values, pipelined `LMOVE`s and `LREM`s.
//! - a diagnostic, not a peer: streams driven by plain commands, with
//!   `XACK` + `XDEL` once per fetch (the ceiling of ours' design).
//!
//! Every round runs on fresh keys, with fresh workers whose connections
//! are opened (by a few warm-up tasks) before the clock starts, and the
//! server flushed after it. The handler does nothing but note that the
//! task started (and, under an open-loop load, how long after its
//! scheduled submit time), so a round measures the queue alone. The
//! server's CPU time and command count over the round (`INFO`) say where
//! the time went.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis_core::backend::ext::BackendExt;
use apalis_core::backend::TaskSink;
use apalis_core::error::BoxDynError;
use apalis_core::worker::builder::WorkerBuilder;
use apalis_redis::{ConnectionManager, RedisStorage};
use sysblocks_task_queue::{Delivery, RedisQueue, Task, TaskError, WorkerPool};

/// Worker threads (ours, the list queue) or apalis workers.
pub const WORKERS: usize = 4;

/// Producer threads submitting a round's tasks.
pub const PRODUCERS: usize = 2;

/// Tasks per submit call when batched.
pub const SUBMIT_BATCH: usize = 64;

/// Tasks a worker fetches per call when batched (ours: `prefetch`, per
/// priority stream; apalis: `batch_size`; the list queue: pipelined
/// `LMOVE`s).
pub const FETCH_BATCH: usize = 16;

/// apalis's poll interval when a worker finds no task (the shortest that
/// its timer honours; shorter means more idle polls, lower latency).
pub const APALIS_POLL: Duration = Duration::from_millis(1);

/// Bytes of each payload: the scheduled submit time and the task's index,
/// in ASCII (apalis carries it as a JSON string).
pub const PAYLOAD_LEN: usize = 32;

/// Warm-up tasks per round, run before the clock starts.
const WARM: u64 = (WORKERS * 4) as u64;

/// The payload index of warm-up tasks (outside any round's range).
const WARM_INDEX: u64 = 999_999_999_999;

/// The contenders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `RedisQueue` with a `WorkerPool`.
    Ours,
    /// apalis-redis.
    Apalis,
    /// `LPUSH` / `BLMOVE` / `LREM`.
    List,
    /// A diagnostic, not a peer: streams driven by plain commands with
    /// one acknowledgement per fetch (`XADD`s pipelined, `XREADGROUP`,
    /// `XACK` + `XDEL` of the whole fetch), the ceiling of ours' design.
    Streams,
}

impl Kind {
    /// Every contender, ours first.
    pub const ALL: [Self; 3] = [Self::Ours, Self::Apalis, Self::List];

    /// Display name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours (RedisQueue + WorkerPool)",
            Self::Apalis => "apalis-redis",
            Self::List => "list queue (LPUSH, BLMOVE, LREM)",
            Self::Streams => "raw streams (XADD, XREADGROUP, XACK + XDEL per fetch)",
        }
    }
}

/// How tasks are submitted and fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// One task per submit, one per fetch.
    Single,
    /// [`SUBMIT_BATCH`] per submit, up to [`FETCH_BATCH`] per fetch.
    Batched,
}

impl Batching {
    fn submit(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Batched => SUBMIT_BATCH,
        }
    }

    fn fetch(self) -> usize {
        match self {
            Self::Single => 1,
            Self::Batched => FETCH_BATCH,
        }
    }
}

/// How fast producers submit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// As fast as they can (throughput).
    Closed,
    /// Task `i` at `i / per_sec` seconds after the start, late or not
    /// (latency; no coordinated omission: a late submit still counts from
    /// its scheduled time).
    Open {
        /// Tasks per second, all producers together.
        per_sec: f64,
    },
}

/// The server's cost of a round, from `INFO` before and after it.
#[derive(Debug, Clone, Default)]
pub struct ServerCost {
    /// The server's CPU time (user + system), microseconds.
    pub cpu_us: f64,
    /// Commands processed (those that scripts call included).
    pub commands: u64,
    /// Per command, most called first (from `INFO commandstats`).
    pub calls: Vec<CommandStat>,
}

/// One line of `INFO commandstats`.
#[derive(Debug, Clone, Default)]
pub struct CommandStat {
    /// The command (`xadd`, `evalsha`, `config|resetstat`).
    pub name: String,
    /// Calls, those from scripts included.
    pub calls: u64,
    /// Microseconds spent in it (a script's include its calls').
    pub usec: u64,
}

/// What one round measured.
#[derive(Debug, Clone)]
pub struct Round {
    /// Tasks submitted and completed (unless `timed_out`).
    pub tasks: u64,
    /// From the first submit to the last acknowledged completion.
    pub elapsed: Duration,
    /// Submit (scheduled) to start, per task, nanoseconds: only under an
    /// open-loop load; tasks that never started are left out.
    pub latencies_ns: Vec<u64>,
    /// The server's cost.
    pub server: ServerCost,
    /// Whether the round gave up waiting for completions.
    pub timed_out: bool,
}

impl Round {
    /// Tasks per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.tasks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// What the handlers record.
struct Probe {
    base: Instant,
    started: AtomicU64,
    /// Per task index: nanoseconds from its scheduled submit to its start
    /// (`u64::MAX` until it started). Empty under a closed load.
    latencies: Vec<AtomicU64>,
}

impl Probe {
    fn new(base: Instant, n: u64, load: Load) -> Self {
        let slots = if matches!(load, Load::Open { .. }) {
            n as usize
        } else {
            0
        };
        Self {
            base,
            started: AtomicU64::new(0),
            latencies: (0..slots).map(|_| AtomicU64::new(u64::MAX)).collect(),
        }
    }

    fn start(&self, payload: &[u8]) {
        if !self.latencies.is_empty() {
            if let Some((at, i)) = parse(payload) {
                let now = saturating_ns(self.base.elapsed());
                if let Some(slot) = usize::try_from(i).ok().and_then(|i| self.latencies.get(i)) {
                    slot.store(now.saturating_sub(at), Ordering::Relaxed);
                }
            }
        }
        self.started.fetch_add(1, Ordering::Release);
    }

    fn latencies(&self) -> Vec<u64> {
        self.latencies
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .filter(|&l| l != u64::MAX)
            .collect()
    }
}

fn saturating_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A payload: the (scheduled) submit time in nanoseconds since the
/// probe's base, then the task's index, [`PAYLOAD_LEN`] ASCII digits.
fn payload(at_ns: u64, index: u64) -> String {
    // A u64 has at most 20 digits.
    format!("{at_ns:020}{:012}", index % 1_000_000_000_000)
}

fn parse(p: &[u8]) -> Option<(u64, u64)> {
    if p.len() != PAYLOAD_LEN {
        return None;
    }
    let at = std::str::from_utf8(&p[..20]).ok()?.parse().ok()?;
    let i = std::str::from_utf8(&p[20..]).ok()?.parse().ok()?;
    Some((at, i))
}

/// Sleeps (then yields) until `t`.
fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > Duration::from_micros(300) {
            std::thread::sleep(left - Duration::from_micros(200));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Runs the producers: each takes every `PRODUCERS`-th chunk of `batch`
/// task indices and hands their payloads to its `submit`. Returns when
/// every task was submitted.
fn produce<S: FnMut(Vec<String>) + Send>(
    n: u64,
    batch: usize,
    load: Load,
    probe: &Probe,
    start: Instant,
    submitters: Vec<S>,
) {
    let batch = batch as u64;
    let chunks = n.div_ceil(batch);
    let producers = submitters.len() as u64;
    std::thread::scope(|s| {
        for (j, mut submit) in submitters.into_iter().enumerate() {
            s.spawn(move || {
                let mut c = j as u64;
                while c < chunks {
                    let first = c * batch;
                    let last = (first + batch).min(n);
                    let tasks = (first..last)
                        .map(|i| {
                            let at = match load {
                                Load::Closed => probe.base.elapsed(),
                                Load::Open { per_sec } => {
                                    let at = start + Duration::from_secs_f64(i as f64 / per_sec);
                                    wait_until(at);
                                    at - probe.base
                                }
                            };
                            payload(saturating_ns(at), i)
                        })
                        .collect();
                    submit(tasks);
                    c += producers;
                }
            });
        }
    });
}

/// Waits until `done()` reaches `target`, or `deadline` passes (`false`).
fn wait_for(target: u64, deadline: Instant, mut done: impl FnMut() -> u64) -> bool {
    while done() < target {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    true
}

/// An administrative connection to the server (stats, flushing).
pub struct Admin {
    url: String,
    conn: redis::Connection,
}

impl Admin {
    /// Connects to `url`.
    ///
    /// # Panics
    ///
    /// If the server cannot be reached.
    #[must_use]
    pub fn connect(url: &str) -> Self {
        let conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect to the compare redis-server");
        Self {
            url: url.to_owned(),
            conn,
        }
    }

    fn info(&mut self, section: &str) -> HashMap<String, String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.conn)
            .expect("INFO");
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    fn cpu_us(&mut self) -> f64 {
        let info = self.info("cpu");
        let get = |k: &str| {
            info.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (get("used_cpu_user") + get("used_cpu_sys")) * 1e6
    }

    fn reset_stats(&mut self) -> f64 {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut self.conn)
            .expect("CONFIG RESETSTAT");
        self.cpu_us()
    }

    /// The cost since `reset_stats`, without the commands this connection
    /// and the completion probes sent.
    fn cost(&mut self, cpu_before: f64) -> ServerCost {
        let cpu_us = self.cpu_us() - cpu_before;
        let mut calls: Vec<CommandStat> = self
            .info("commandstats")
            .into_iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("cmdstat_")?.to_owned();
                let field = |f: &str| -> Option<u64> {
                    v.split(',')
                        .find_map(|x| x.strip_prefix(f)?.strip_prefix('='))?
                        .parse()
                        .ok()
                };
                Some(CommandStat {
                    name,
                    calls: field("calls")?,
                    usec: field("usec")?,
                })
            })
            .filter(|c| !matches!(c.name.as_str(), "info" | "config|resetstat" | "scard"))
            .collect();
        calls.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
        ServerCost {
            cpu_us,
            commands: calls.iter().map(|c| c.calls).sum(),
            calls,
        }
    }

    fn flush(&mut self) {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut self.conn)
            .expect("FLUSHALL");
    }

    fn scard(&mut self, key: &str) -> u64 {
        redis::cmd("SCARD")
            .arg(key)
            .query(&mut self.conn)
            .expect("SCARD")
    }
}

/// Runs one round of `n` tasks with `kind` and flushes the server after
/// it. `id` makes the round's keys unique. Gives up waiting for
/// completions after `patience` (the round then says `timed_out`).
///
/// # Panics
///
/// If the server fails.
#[allow(clippy::too_many_arguments)]
pub fn round(
    kind: Kind,
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    rt: &tokio::runtime::Runtime,
    admin: &mut Admin,
) -> Round {
    let probe = Arc::new(Probe::new(Instant::now(), n, load));
    let r = match kind {
        Kind::Ours => ours(batching, load, n, id, patience, &probe, admin),
        Kind::Apalis => apalis(batching, load, n, id, patience, &probe, rt, admin),
        Kind::List | Kind::Streams => raw(kind, batching, load, n, id, patience, &probe, admin),
    };
    admin.flush();
    r
}

fn ours(
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    admin: &mut Admin,
) -> Round {
    let q = RedisQueue::builder(admin.url.clone())
        .name(format!("r{id}"))
        .prefetch(batching.fetch())
        .build()
        .expect("RedisQueue");
    let handler = {
        let probe = Arc::clone(probe);
        move |d: &Delivery| -> Result<(), TaskError> {
            probe.start(d.payload());
            Ok(())
        }
    };
    let pool = WorkerPool::start(&q, WORKERS, handler).expect("WorkerPool");
    let warm = payload(0, WARM_INDEX);
    for _ in 0..WARM {
        q.submit(Task::new(warm.as_bytes())).expect("submit");
    }
    let warmed = wait_for(WARM, Instant::now() + patience, || q.stats().completed);
    assert!(warmed, "ours: the warm-up tasks did not complete");
    let submitters: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let q = q.clone();
            move |tasks: Vec<String>| {
                if tasks.len() == 1 {
                    for t in tasks {
                        q.submit(Task::new(t)).expect("submit");
                    }
                } else {
                    q.submit_batch(tasks.into_iter().map(Task::new).collect())
                        .expect("submit_batch");
                }
            }
        })
        .collect();
    let cpu = admin.reset_stats();
    let start = Instant::now();
    produce(n, batching.submit(), load, probe, start, submitters);
    let done = wait_for(WARM + n, start + patience, || q.stats().completed);
    let elapsed = start.elapsed();
    let server = admin.cost(cpu);
    let _ = pool.shutdown(Duration::from_secs(5));
    Round {
        tasks: if done {
            n
        } else {
            q.stats().completed.saturating_sub(WARM)
        },
        elapsed,
        latencies_ns: probe.latencies(),
        server,
        timed_out: !done,
    }
}

type ApalisStorage = RedisStorage<String, ConnectionManager>;

#[allow(clippy::too_many_arguments)]
fn apalis(
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    rt: &tokio::runtime::Runtime,
    admin: &mut Admin,
) -> Round {
    let conn = rt
        .block_on(apalis_redis::connect(admin.url.as_str()))
        .expect("apalis connect");
    let config = apalis_redis::Config::default()
        .queue(format!("r{id}"))
        .batch_size(batching.fetch());
    let done_set = config.done_jobs_set();
    let storage = || ApalisStorage::new(conn.clone()).with_config(config.clone());
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let probe = Arc::clone(probe);
            let worker = WorkerBuilder::new(format!("r{id}-w{w}"))
                .backend(storage().poll_with_interval(APALIS_POLL))
                .build(move |task: String| {
                    probe.start(task.as_bytes());
                    async { Ok::<(), BoxDynError>(()) }
                });
            rt.spawn(worker.run())
        })
        .collect();
    let warm = payload(0, WARM_INDEX);
    let mut s = storage();
    rt.block_on(s.push_bulk(vec![warm; WARM as usize]))
        .expect("apalis push");
    let deadline = Instant::now() + patience;
    let warmed = wait_for(WARM, deadline, || probe.started.load(Ordering::Acquire))
        && wait_for(WARM, deadline, || admin.scard(&done_set));
    assert!(warmed, "apalis: the warm-up tasks did not complete");
    let submitters: Vec<_> = (0..PRODUCERS)
        .map(|_| {
            let mut s = storage();
            let handle = rt.handle().clone();
            move |tasks: Vec<String>| {
                if tasks.len() == 1 {
                    for t in tasks {
                        handle.block_on(s.push(t)).expect("apalis push");
                    }
                } else {
                    handle
                        .block_on(s.push_bulk(tasks))
                        .expect("apalis push_bulk");
                }
            }
        })
        .collect();
    let cpu = admin.reset_stats();
    let start = Instant::now();
    produce(n, batching.submit(), load, probe, start, submitters);
    // Started in the handlers first (no server round trips), then
    // acknowledged on the server (apalis acknowledges in batches).
    let deadline = start + patience;
    let done = wait_for(WARM + n, deadline, || probe.started.load(Ordering::Acquire))
        && wait_for(WARM + n, deadline, || admin.scard(&done_set));
    let elapsed = start.elapsed();
    let server = admin.cost(cpu);
    let completed = admin.scard(&done_set);
    for w in workers {
        w.abort();
    }
    Round {
        tasks: if done {
            n
        } else {
            completed.saturating_sub(WARM)
        },
        elapsed,
        latencies_ns: probe.latencies(),
        server,
        timed_out: !done,
    }
}

/// One list-queue worker: moves tasks into its processing list, runs
/// them, removes them from it.
fn list_worker(
    conn: &mut redis::Connection,
    queue: &str,
    processing: &str,
    fetch: usize,
    probe: &Probe,
) -> usize {
    let mut got: Vec<Vec<u8>> = Vec::with_capacity(fetch);
    if fetch > 1 {
        let mut pipe = redis::pipe();
        for _ in 0..fetch {
            pipe.cmd("LMOVE")
                .arg(queue)
                .arg(processing)
                .arg("RIGHT")
                .arg("LEFT");
        }
        let moved: Vec<Option<Vec<u8>>> = pipe.query(conn).expect("LMOVE");
        got.extend(moved.into_iter().flatten());
    }
    if got.is_empty() {
        let moved: Option<Vec<u8>> = redis::cmd("BLMOVE")
            .arg(queue)
            .arg(processing)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(0.1)
            .query(conn)
            .expect("BLMOVE");
        got.extend(moved);
    }
    if got.is_empty() {
        return 0;
    }
    for p in &got {
        probe.start(p);
    }
    let mut pipe = redis::pipe();
    for p in &got {
        pipe.cmd("LREM").arg(processing).arg(1).arg(p).ignore();
    }
    let () = pipe.query(conn).expect("LREM");
    got.len()
}

/// One raw-streams worker: `XREADGROUP` up to `fetch` entries, runs them,
/// then acknowledges and deletes them all in one round trip.
fn streams_worker(
    conn: &mut redis::Connection,
    stream: &str,
    consumer: &str,
    fetch: usize,
    probe: &Probe,
) -> usize {
    let v: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g")
        .arg(consumer)
        .arg("COUNT")
        .arg(fetch)
        .arg("BLOCK")
        .arg(100)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query(conn)
        .expect("XREADGROUP");
    // `[[stream, [[id, [field, value, ...]], ...]]]`, or nil.
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let items = |v: redis::Value| match v {
        redis::Value::Array(a) => a,
        _ => Vec::new(),
    };
    for stream in items(v) {
        for entry in items(stream).into_iter().skip(1).flat_map(items) {
            let mut parts = items(entry).into_iter();
            let (Some(redis::Value::BulkString(id)), Some(fields)) = (parts.next(), parts.next())
            else {
                continue;
            };
            if let Some(redis::Value::BulkString(p)) = items(fields).get(1) {
                probe.start(p);
            }
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return 0;
    }
    let () = redis::pipe()
        .cmd("XACK")
        .arg(stream)
        .arg("g")
        .arg(&ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(&ids)
        .ignore()
        .query(conn)
        .expect("XACK");
    ids.len()
}

/// Submits `tasks` in one round trip.
fn raw_submit(kind: Kind, conn: &mut redis::Connection, key: &str, tasks: &[String]) {
    if kind == Kind::List {
        let _: i64 = redis::cmd("LPUSH")
            .arg(key)
            .arg(tasks)
            .query(conn)
            .expect("LPUSH");
        return;
    }
    let mut pipe = redis::pipe();
    for t in tasks {
        pipe.cmd("XADD").arg(key).arg("*").arg("p").arg(t).ignore();
    }
    let () = pipe.query(conn).expect("XADD");
}

/// The list queue, or the raw-streams diagnostic: plain commands from
/// plain threads.
#[allow(clippy::too_many_arguments)]
fn raw(
    kind: Kind,
    batching: Batching,
    load: Load,
    n: u64,
    id: u64,
    patience: Duration,
    probe: &Arc<Probe>,
    admin: &mut Admin,
) -> Round {
    let client = redis::Client::open(admin.url.as_str()).expect("url");
    let connect = || client.get_connection().expect("connect");
    let key = format!("r{id}:queue");
    if kind == Kind::Streams {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("g")
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut connect())
            .expect("XGROUP CREATE");
    }
    let completed = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Stops the workers however the round ends (a panic included), so
        // that the scope can join them.
        let _stop = StopOnDrop(&stop);
        for w in 0..WORKERS {
            let mut conn = connect();
            let (key, completed, stop) = (&key, &completed, &stop);
            let own = format!("r{id}:processing:{w}");
            let probe = &**probe;
            s.spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let f = batching.fetch();
                    let done = if kind == Kind::List {
                        list_worker(&mut conn, key, &own, f, probe)
                    } else {
                        streams_worker(&mut conn, key, &own, f, probe)
                    };
                    completed.fetch_add(done as u64, Ordering::Release);
                }
            });
        }
        let submitters: Vec<_> = (0..PRODUCERS)
            .map(|_| {
                let mut conn = connect();
                let key = &key;
                move |tasks: Vec<String>| raw_submit(kind, &mut conn, key, &tasks)
            })
            .collect();
        let warm: Vec<String> = vec![payload(0, WARM_INDEX); WARM as usize];
        raw_submit(kind, &mut connect(), &key, &warm);
        let warmed = wait_for(WARM, Instant::now() + patience, || {
            completed.load(Ordering::Acquire)
        });
        assert!(
            warmed,
            "{}: the warm-up tasks did not complete",
            kind.name()
        );
        let cpu = admin.reset_stats();
        let start = Instant::now();
        produce(n, batching.submit(), load, probe, start, submitters);
        let done = wait_for(WARM + n, start + patience, || {
            completed.load(Ordering::Acquire)
        });
        let elapsed = start.elapsed();
        let server = admin.cost(cpu);
        Round {
            tasks: if done {
                n
            } else {
                completed.load(Ordering::Acquire).saturating_sub(WARM)
            },
            elapsed,
            latencies_ns: probe.latencies(),
            server,
            timed_out: !done,
        }
    })
}

struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// The `q`-quantile (0..=1) of `v`, nanoseconds (0 for an empty `v`).
#[must_use]
pub fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    s[i.min(s.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let p = payload(123_456_789, 42);
        assert_eq!(p.len(), PAYLOAD_LEN);
        assert_eq!(parse(p.as_bytes()), Some((123_456_789, 42)));
        assert_eq!(parse(b"short"), None);
    }

    #[test]
    fn quantiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 51);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&[], 0.99), 0);
    }
}
