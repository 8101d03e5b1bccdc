//! `task-queue`'s `BoundedQueue` against crossbeam-channel, flume and kanal
//! (`crate::workloads::task_queue`): time per item moved at 1/1 and 2/2
//! producer/consumer threads (capacity 1024), and `try_push` on a full queue.

use crate::harness::{run_timed, time_iters, Contender, Mode};
use crate::report::{LineChart, Report};
use crate::workloads::task_queue::{full_try_push, transfer, Kind};

const KRATE: &str = "task-queue";

/// Adds the queue cases, the throughput-against-threads chart and the
/// durable case to `missing`.
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
                if k == Kind::Ours {
                    Contender::ours(k.name(), routine)
                } else {
                    Contender::peer(k.name(), routine)
                }
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
            if k == Kind::Ours {
                Contender::ours(k.name(), routine)
            } else {
                Contender::peer(k.name(), routine)
            }
        })
        .collect();
    report.results.push(run_timed(
        KRATE,
        "try_push on a full queue (capacity 1024)",
        mode,
        contenders,
    ));
    report.missing.push((
        format!("{KRATE}: durable tasks/s"),
        "not written yet (the criterion bench task_queue measures redb vs the memory store)"
            .to_owned(),
    ));
}
