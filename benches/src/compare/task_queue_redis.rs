//! `task-queue`'s Redis cases (`crate::workloads::task_queue_redis`), on a
//! private `redis-server` that `compare` starts (persistence off), or
//! skipped with a line saying so: tasks per second end to end (submit to
//! acknowledged completion) with 4 workers and 2 producers, one task per
//! call and batched, for ours (`RedisQueue` + `WorkerPool`), apalis-redis
//! and the classic reliable list queue (`LPUSH`, `BLMOVE`, `LREM`); the
//! server's CPU time and commands per task in those runs; and the latency
//! from submit to start under an open-loop load at half of our
//! one-at-a-time maximum. A raw-streams run (plain commands, one
//! acknowledgement per fetch) is printed beside them as our design's
//! ceiling, with each contender's commands per task: where the server's
//! time goes. Run alone with `--only task-queue-redis`.

use std::time::Duration;

use crate::harness::{measured, median, Mode};
use crate::report::Report;
use crate::workloads::task_queue_redis::{
    quantile, round, Admin, Batching, Kind, Load, Round, FETCH_BATCH, PRODUCERS, SUBMIT_BATCH,
    WORKERS,
};

const KRATE: &str = "task-queue";

/// The batched rate the issue asks ours to reach on two cores.
const TARGET_BATCHED: f64 = 50_000.0;

/// The contenders, then the raw-streams diagnostic (printed, not
/// reported: it is our design's ceiling, not a peer).
const RUN: [Kind; 4] = [Kind::Ours, Kind::Apalis, Kind::List, Kind::Streams];

/// Adds the Redis cases to `report`, or notes why they were skipped.
pub fn run(mode: Mode, report: &mut Report) {
    let Some(server) = super::redis_server_or_skip(KRATE, report) else {
        return;
    };
    // apalis is async: its workers and connection run here (as many
    // threads as cores, tokio's default); producers call in with
    // `block_on` from their own threads, as ours and the list queue's do.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut admin = Admin::connect(&server.url());
    let (n, reps, patience, open_secs) = match mode {
        Mode::Smoke => (100u64, 1, Duration::from_secs(30), 0.0),
        Mode::Quick => (4_000, 3, Duration::from_secs(120), 1.0),
        Mode::Full => (20_000, 7, Duration::from_secs(300), 3.0),
    };
    let mut id = 0u64;
    let mut next_round = |kind, batching, load, tasks, admin: &mut Admin| {
        id += 1;
        let r = round(kind, batching, load, tasks, id, patience, &rt, admin);
        if r.timed_out {
            eprintln!(
                "task-queue: {} gave up after {patience:?}: {} of {tasks} tasks done",
                kind.name(),
                r.tasks
            );
        }
        r
    };

    let mut ours_single = 0.0;
    for batching in [Batching::Single, Batching::Batched] {
        let label = match batching {
            Batching::Single => "1 task per submit and fetch".to_owned(),
            Batching::Batched => {
                format!("{SUBMIT_BATCH} tasks per submit, up to {FETCH_BATCH} per fetch")
            }
        };
        // Interleaved rounds: ours, apalis, list, streams, ours, ...
        let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); RUN.len()];
        for _ in 0..reps {
            for (k, &kind) in RUN.iter().enumerate() {
                rounds[k].push(next_round(kind, batching, Load::Closed, n, &mut admin));
            }
        }
        let series = |f: &dyn Fn(&Round) -> f64| -> Vec<(&str, bool, Vec<f64>)> {
            Kind::ALL
                .iter()
                .zip(&rounds)
                .map(|(&k, rs)| (k.name(), k == Kind::Ours, rs.iter().map(f).collect()))
                .collect()
        };
        let rates = measured(
            KRATE,
            &format!("Redis end to end, {WORKERS} workers, {PRODUCERS} producers, {label}"),
            "tasks/s",
            false,
            series(&Round::rate),
        );
        let ours_rate = rates.ours().map_or(0.0, |s| s.median());
        for (k, rs) in RUN.iter().zip(&rounds) {
            let rate = median(&rs.iter().map(Round::rate).collect::<Vec<_>>());
            eprintln!(
                "task-queue: Redis {label}: {} {rate:.0} tasks/s ({:.2}x of ours)",
                k.name(),
                rate / ours_rate.max(f64::MIN_POSITIVE)
            );
        }
        match batching {
            Batching::Single => ours_single = ours_rate,
            Batching::Batched => eprintln!(
                "task-queue: Redis batched: ours {ours_rate:.0} tasks/s {} {TARGET_BATCHED:.0} on {} core(s)",
                if ours_rate >= TARGET_BATCHED { "reaches" } else { "misses" },
                std::thread::available_parallelism().map_or(0, |c| c.get()),
            ),
        }
        report.results.push(rates);
        report.results.push(measured(
            KRATE,
            &format!("Redis server CPU per task, {label}"),
            "µs",
            true,
            series(&|r| r.server.cpu_us / (r.tasks.max(1) as f64)),
        ));
        report.results.push(measured(
            KRATE,
            &format!("Redis commands per task (scripts' included), {label}"),
            "commands",
            true,
            series(&|r| r.server.commands as f64 / (r.tasks.max(1) as f64)),
        ));
        if mode != Mode::Smoke {
            // Where the server's time goes: the last round's commands.
            for (k, rs) in RUN.iter().zip(&rounds) {
                if let Some(r) = rs.last() {
                    let per = |c: u64| c as f64 / r.tasks.max(1) as f64;
                    let top: Vec<String> = r
                        .server
                        .calls
                        .iter()
                        .take(12)
                        .map(|c| format!("{} {:.3} ({:.1} µs)", c.name, per(c.calls), per(c.usec)))
                        .collect();
                    eprintln!(
                        "task-queue: Redis {label}: {} calls per task (µs in them): {}",
                        k.name(),
                        top.join(", ")
                    );
                }
            }
        }
    }

    // Latency under an open-loop load at half of our one-at-a-time rate.
    let per_sec = (ours_single / 2.0).max(100.0);
    let tasks = if mode == Mode::Smoke {
        100
    } else {
        (per_sec * open_secs) as u64
    };
    let load = Load::Open { per_sec };
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for &kind in &Kind::ALL {
        let r = next_round(kind, Batching::Single, load, tasks, &mut admin);
        let us = |q: f64| quantile(&r.latencies_ns, q) as f64 / 1e3;
        eprintln!(
            "task-queue: Redis submit->start at {per_sec:.0} tasks/s: {} p50 {:.0} µs, p99 {:.0} µs ({} of {tasks} started)",
            kind.name(),
            us(0.5),
            us(0.99),
            r.latencies_ns.len()
        );
        p50.push((kind.name(), kind == Kind::Ours, vec![us(0.5)]));
        p99.push((kind.name(), kind == Kind::Ours, vec![us(0.99)]));
    }
    for (q, series) in [("p50", p50), ("p99", p99)] {
        report.results.push(measured(
            KRATE,
            &format!(
                "Redis submit to start latency {q}, open loop at half of our 1-task-per-call maximum"
            ),
            "µs",
            true,
            series,
        ));
    }
}
