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
//!   one `LPUSH` of many values, pipelined `LMOVE`s and `LREM`s;
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
//!
//! The contenders live in `ours.rs`, `apalis.rs` and `raw.rs` (the list
//! queue and the streams diagnostic), the server's bookkeeping in
//! `admin.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod admin;
mod apalis;
mod ours;
mod raw;

pub use admin::Admin;

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
        Kind::Ours => ours::run(batching, load, n, id, patience, &probe, admin),
        Kind::Apalis => apalis::run(batching, load, n, id, patience, &probe, rt, admin),
        Kind::List | Kind::Streams => {
            raw::run(kind, batching, load, n, id, patience, &probe, admin)
        }
    };
    admin.flush();
    r
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
