//! `mapreduce` word count against a hand-written rayon `fold` + `reduce`
//! (`crate::workloads::mapreduce`): throughput in MB/s at 1 and 2 threads
//! on a seeded Zipf text and, when `../shared/data` is present, on the
//! Gutenberg text; peak heap of one run at 2 threads.

use std::path::Path;

use crate::alloc;
use crate::harness::{measured, run_timed, CaseResult, Contender, Mode};
use crate::report::{LineChart, Report};
use crate::workloads::mapreduce::{
    gutenberg, our_word_count, rayon_word_count, scratch_dir, scratch_file, zipf_text,
};

const KRATE: &str = "mapreduce";

/// Input bytes per mode.
fn input_bytes(mode: Mode) -> usize {
    match mode {
        Mode::Smoke => 256 << 10,
        Mode::Quick => 8 << 20,
        Mode::Full => 64 << 20,
    }
}

/// Adds the word-count cases and the throughput-against-threads chart.
pub fn run(mode: Mode, report: &mut Report) {
    let bytes = input_bytes(mode);
    // Splits of an eighth of the input so that both threads get map tasks
    // on the short inputs (the crate default is 64 MiB).
    let split = Some((bytes as u64 / 8).max(64 << 10));
    let mut inputs = Vec::new();
    match scratch_file("zipf.txt", &zipf_text(bytes, 1_000_000, 1.0, 0x5eed)) {
        Ok(p) => inputs.push(("Zipf text", p)),
        Err(e) => report.missing.push((
            format!("{KRATE}: word count"),
            format!("cannot write input: {e}"),
        )),
    }
    match gutenberg(bytes) {
        Ok(Some(text)) => match scratch_file("gutenberg.txt", &text) {
            Ok(p) => inputs.push(("Gutenberg text", p)),
            Err(e) => report.missing.push((
                format!("{KRATE}: Gutenberg"),
                format!("cannot write input: {e}"),
            )),
        },
        Ok(None) => report.missing.push((
            format!("{KRATE}: word count on Gutenberg"),
            "../shared/data not found (the Zipf text is measured)".to_owned(),
        )),
        Err(e) => report
            .missing
            .push((format!("{KRATE}: word count on Gutenberg"), e.to_string())),
    }
    for (label, path) in &inputs {
        let len = std::fs::metadata(path).map_or(bytes as u64, |m| m.len());
        let mb = len as f64 / 1e6;
        let mut chart: Vec<(String, Vec<(f64, f64)>)> = vec![
            ("ours".to_owned(), Vec::new()),
            ("rayon".to_owned(), Vec::new()),
        ];
        for threads in [1usize, 2] {
            let r = throughput(label, path, threads, split, mb, mode);
            for (slot, s) in chart.iter_mut().zip(&r.series) {
                slot.1.push((threads as f64, s.median()));
            }
            report.results.push(r);
        }
        report.charts.push(LineChart {
            krate: KRATE.to_owned(),
            title: format!("word count throughput against threads, {label} ({mb:.0} MB)"),
            x_label: "threads".to_owned(),
            y_label: "MB/s".to_owned(),
            log_x: false,
            series: chart,
        });
        if alloc::installed() {
            let pool = pool(2);
            let ours = alloc::peak_of(|| our_word_count(path, 2, split).len()).1;
            let peer = alloc::peak_of(|| rayon_word_count(path, &pool).len()).1;
            report.results.push(measured(
                KRATE,
                &format!("word count peak heap, 2 threads, {label} ({mb:.1} MB)"),
                "MB",
                true,
                vec![
                    ("ours", true, vec![ours as f64 / 1e6]),
                    ("rayon", false, vec![peer as f64 / 1e6]),
                ],
            ));
        }
    }
    let _ = std::fs::remove_dir_all(scratch_dir());
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

/// One throughput case: a run per iteration, converted to MB/s.
fn throughput(
    label: &str,
    path: &Path,
    threads: usize,
    split: Option<u64>,
    mb: f64,
    mode: Mode,
) -> CaseResult {
    let pool = pool(threads);
    let mut r = run_timed(
        KRATE,
        &format!("word count, {label} ({mb:.1} MB), {threads} thread(s)"),
        mode,
        vec![
            Contender::ours("ours", |it| {
                let t = std::time::Instant::now();
                for _ in 0..it {
                    std::hint::black_box(our_word_count(path, threads, split).len());
                }
                t.elapsed()
            }),
            Contender::peer("rayon", |it| {
                let t = std::time::Instant::now();
                for _ in 0..it {
                    std::hint::black_box(rayon_word_count(path, &pool).len());
                }
                t.elapsed()
            }),
        ],
    );
    // ns per run -> MB/s.
    for s in &mut r.series {
        for v in &mut s.samples {
            *v = mb * 1e9 / v.max(1.0);
        }
    }
    r.unit = "MB/s".to_owned();
    r.lower_is_better = false;
    r
}
