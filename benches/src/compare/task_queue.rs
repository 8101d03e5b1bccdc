//! `task-queue`'s `BoundedQueue` against crossbeam-channel, flume and kanal
//! (`crate::workloads::task_queue`): time per item moved at 1/1 and 2/2
//! producer/consumer threads (capacity 1024), and `try_push` on a full queue;
//! then the job layer's durable throughput: tasks per second accepted
//! durably (fsync'd) and completed with 4 producers, the redb store against
//! the in-memory store in the same run, and the redb store's tasks per
//! fsync'd commit (how well group commit merges concurrent submits).

use crate::harness::{measured, run_timed, time_iters, Contender, Mode};
use crate::report::{LineChart, Report};
use crate::workloads::task_queue::{durable_run, full_try_push, transfer, Kind, StoreKind, Submit};

const KRATE: &str = "task-queue";

/// Adds the queue cases, the throughput-against-threads chart and the
/// durable cases.
pub fn run(mode: Mode, report: &mut Report) {
    let mut chart: Vec<(String, Vec<(f64, f64)>)> = Kind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), Vec::new()))
        .collect();
    for t in [1u64, 2] {
        let contenders = Kind::ALL
            .iter()
            .map(|&k| {
                let routine = move |it: u64| transfer(k, t, t, 1024, it);
                Contender::new(k.name(), k == Kind::Ours, routine)
            })
            .collect();
        let r = run_timed(
            KRATE,
            &format!("transfer, {t} producer(s) / {t} consumer(s), capacity 1024"),
            mode,
            contenders,
        );
        for (slot, s) in chart.iter_mut().zip(&r.series) {
            // ns per item -> million items per second.
            slot.1
                .push((t as f64, 1e3 / s.median().max(f64::MIN_POSITIVE)));
        }
        report.results.push(r);
    }
    report.charts.push(LineChart {
        krate: KRATE.to_owned(),
        title: "queue throughput against threads (p = c, capacity 1024)".to_owned(),
        x_label: "producer threads = consumer threads".to_owned(),
        y_label: "million items/s".to_owned(),
        log_x: false,
        series: chart,
    });

    let contenders = Kind::ALL
        .iter()
        .map(|&k| {
            let mut attempt = full_try_push(k);
            let routine = move |it: u64| {
                time_iters(it, |_| {
                    assert!(attempt(), "try_push on a full queue succeeded");
                })
            };
            Contender::new(k.name(), k == Kind::Ours, routine)
        })
        .collect();
    report.results.push(run_timed(
        KRATE,
        "try_push on a full queue (capacity 1024)",
        mode,
        contenders,
    ));
    durable(mode, report);
}

/// Producers of the durable cases (the figure).
const PRODUCERS: u64 = 4;

/// Durable tasks/s, redb store (ours) against the memory store, runs
/// interleaved (redb, memory, redb, ...), each on a fresh store; plus the
/// redb runs' tasks per fsync'd commit.
fn durable(mode: Mode, report: &mut Report) {
    // Removed when dropped, also if a run panics.
    let dir = tempfile::Builder::new()
        .prefix("sysblocks-tq-compare-")
        .tempdir()
        .expect("temp dir");
    let reps = mode.repetitions();
    for (label, submit, tasks) in [
        ("submit_batch(32)", Submit::Batch(32), 8_000),
        ("plain submit", Submit::Plain, 2_000),
        (
            "submit_pending, 16 in flight per producer",
            Submit::Pipelined(16),
            8_000,
        ),
    ] {
        let tasks = match mode {
            Mode::Smoke => 64,
            Mode::Quick => tasks,
            Mode::Full => tasks * 2,
        };
        let (mut redb, mut memory, mut per_commit) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let r = durable_run(StoreKind::Redb, dir.path(), tasks, PRODUCERS, submit);
            redb.push(r.tasks_per_sec());
            per_commit.push(r.tasks_per_commit().unwrap_or(0.0));
            let m = durable_run(StoreKind::Memory, dir.path(), tasks, PRODUCERS, submit);
            memory.push(m.tasks_per_sec());
        }
        report.results.push(measured(
            KRATE,
            &format!("durable tasks/s, {PRODUCERS} producers, {label}, submitted to completed"),
            "tasks/s",
            false,
            vec![
                (StoreKind::Redb.name(), true, redb),
                (StoreKind::Memory.name(), false, memory),
            ],
        ));
        report.results.push(measured(
            KRATE,
            &format!("tasks per fsync'd commit, redb, {PRODUCERS} producers, {label}"),
            "tasks/commit",
            false,
            vec![(StoreKind::Redb.name(), true, per_commit)],
        ));
    }
}
