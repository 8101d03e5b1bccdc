//! `mapreduce` word count against a hand-written rayon `fold` + `reduce`
//! (`crate::workloads::mapreduce`): throughput in GB/s at 1 and 2 threads
//! (interleaved: ours and rayon at 1 and 2 threads in every repetition), the
//! 1 -> 2 thread speed-up of each from the same repetitions, on a seeded
//! Zipf text (vocabulary 1,000,000, exponent 1.0) and, when `../shared/data`
//! is present, on the Gutenberg text; peak heap of one run at 2 threads.
//!
//! On the Gutenberg text, the timely backend too: word count on 2 local
//! processes × 1 worker against the runner as 1 process × 2 threads (both
//! writing part files; the processes' start and connection included), and
//! the bytes the exchange moves per input byte with and without the
//! combiner. Each process is this binary started again with
//! `workloads::mapreduce::CHILD_ENV` set.
//!
//! Sizes: 256 KiB (`--smoke`), 32 MiB (`--quick`), and in `--full` the whole
//! 100 MB Gutenberg text and 100 MiB of Zipf text. `MAPREDUCE_ZIPF_MB=500`
//! sets the Zipf size (any mode) and `MAPREDUCE_REPS` the repetitions.

use std::path::Path;
use std::time::Instant;

use crate::alloc;
use crate::harness::{measured, CaseResult, Mode, Series};
use crate::report::{LineChart, Report};
use crate::workloads::mapreduce::{
    cluster_child, cluster_word_count, gutenberg, our_word_count, our_word_count_to_dir,
    rayon_word_count, scratch_dir, scratch_file, zipf_text,
};

const KRATE: &str = "mapreduce";

/// Input bytes per mode (the Gutenberg text is at most 100 MB).
fn input_bytes(mode: Mode) -> usize {
    match mode {
        Mode::Smoke => 256 << 10,
        Mode::Quick => 32 << 20,
        Mode::Full => 100 << 20,
    }
}

/// Interleaved repetitions per mode.
fn repetitions(mode: Mode) -> usize {
    let default = match mode {
        Mode::Smoke => 1,
        Mode::Quick => 3,
        Mode::Full => 5,
    };
    env_usize("MAPREDUCE_REPS").unwrap_or(default).max(1)
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Adds the word-count cases and the throughput-against-threads chart.
pub fn run(mode: Mode, report: &mut Report) {
    // A cluster process of the cluster cases: its part, then exit.
    if let Some(r) = cluster_child() {
        if let Err(e) = &r {
            eprintln!("compare: mapreduce cluster process: {e}");
        }
        std::process::exit(i32::from(r.is_err()));
    }
    let bytes = input_bytes(mode);
    let zipf_bytes = env_usize("MAPREDUCE_ZIPF_MB").map_or(bytes, |mb| mb << 20);
    // Removed when `scratch` is dropped, also if a run panics.
    let scratch = match scratch_dir() {
        Ok(d) => d,
        Err(e) => {
            report.missing.push((
                format!("{KRATE}: word count"),
                format!("cannot create a scratch directory: {e}"),
            ));
            return;
        }
    };
    let mut inputs = Vec::new();
    match scratch_file(
        scratch.path(),
        "zipf.txt",
        &zipf_text(zipf_bytes, 1_000_000, 1.0, 0x5eed),
    ) {
        Ok(p) => inputs.push(("Zipf text", p)),
        Err(e) => report.missing.push((
            format!("{KRATE}: word count"),
            format!("cannot write input: {e}"),
        )),
    }
    match gutenberg(bytes) {
        Ok(Some(text)) => match scratch_file(scratch.path(), "gutenberg.txt", &text) {
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
        let gb = len as f64 / 1e9;
        let mb = len as f64 / 1e6;
        let size = if mb < 10.0 {
            format!("{mb:.1} MB")
        } else {
            format!("{mb:.0} MB")
        };
        let [one, two, scaling] = throughput(label, &size, path, gb, repetitions(mode));
        let mut chart: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        for (i, s) in one.series.iter().enumerate() {
            chart.push((
                s.name.clone(),
                vec![(1.0, s.median()), (2.0, two.series[i].median())],
            ));
        }
        report.results.extend([one, two, scaling]);
        report.charts.push(LineChart {
            krate: KRATE.to_owned(),
            title: format!("word count throughput against threads, {label} ({size})"),
            x_label: "threads".to_owned(),
            y_label: "GB/s".to_owned(),
            log_x: false,
            series: chart,
        });
        if *label == "Gutenberg text" {
            cluster_cases(
                label,
                &size,
                path,
                gb,
                repetitions(mode),
                scratch.path(),
                report,
            );
        }
        if alloc::installed() {
            let pool = pool(2);
            let ours = alloc::peak_of(|| our_word_count(path, 2, None).len()).1;
            let peer = alloc::peak_of(|| rayon_word_count(path, &pool).len()).1;
            report.results.push(measured(
                KRATE,
                &format!("word count peak heap, 2 threads, {label} ({size})"),
                "MB",
                true,
                vec![
                    ("ours", true, vec![ours as f64 / 1e6]),
                    ("rayon", false, vec![peer as f64 / 1e6]),
                ],
            ));
        }
    }
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool")
}

fn series(name: &str, ours: bool, samples: Vec<f64>) -> Series {
    Series {
        name: name.to_owned(),
        ours,
        samples,
    }
}

/// `reps` repetitions of ours and rayon at 1 and 2 threads, interleaved
/// (one run each per repetition, after one untimed warm-up run each):
/// GB/s at 1 thread, GB/s at 2 threads, and the speed-up from 1 to 2
/// threads of each repetition.
fn throughput(label: &str, size: &str, path: &Path, gb: f64, reps: usize) -> [CaseResult; 3] {
    let pools = [pool(1), pool(2)];
    // samples[threads - 1][0 = ours, 1 = rayon]
    let mut samples = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for rep in 0..=reps {
        for (t, pool) in pools.iter().enumerate() {
            let threads = t + 1;
            let start = Instant::now();
            std::hint::black_box(our_word_count(path, threads, None).len());
            let ours = start.elapsed().as_secs_f64();
            let start = Instant::now();
            std::hint::black_box(rayon_word_count(path, pool).len());
            let peer = start.elapsed().as_secs_f64();
            if rep > 0 {
                samples[t][0].push(gb / ours.max(1e-9));
                samples[t][1].push(gb / peer.max(1e-9));
            }
        }
    }
    let case = |name: String, unit: &str, ours: Vec<f64>, peer: Vec<f64>| CaseResult {
        krate: KRATE.to_owned(),
        name,
        unit: unit.to_owned(),
        lower_is_better: false,
        series: vec![series("ours", true, ours), series("rayon", false, peer)],
    };
    let speedup = |c: usize| -> Vec<f64> {
        samples[1][c]
            .iter()
            .zip(&samples[0][c])
            .map(|(two, one)| two / one)
            .collect()
    };
    let scaling = case(
        format!("word count speed-up 1 -> 2 threads, {label} ({size})"),
        "x",
        speedup(0),
        speedup(1),
    );
    let [[o1, r1], [o2, r2]] = samples;
    [
        case(
            format!("word count, {label} ({size}), 1 thread"),
            "GB/s",
            o1,
            r1,
        ),
        case(
            format!("word count, {label} ({size}), 2 threads"),
            "GB/s",
            o2,
            r2,
        ),
        scaling,
    ]
}

/// The timely backend on `path`: 2 processes × 1 worker against 1 process
/// × 2 threads (GB/s, interleaved, after one untimed run of each), and
/// the exchange's bytes per input byte with and without the combiner.
fn cluster_cases(
    label: &str,
    size: &str,
    path: &Path,
    gb: f64,
    reps: usize,
    scratch: &Path,
    report: &mut Report,
) {
    let missing = |report: &mut Report, e: &dyn std::fmt::Display| {
        report
            .missing
            .push((format!("{KRATE}: word count on 2 processes"), e.to_string()));
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return missing(report, &e),
    };
    // What the processes' `main` parses before `run` sees the variable.
    let args = ["--smoke", "--only", KRATE];
    let (mut procs, mut jobs, mut threads) = (Vec::new(), Vec::new(), Vec::new());
    let mut with = None;
    for rep in 0..=reps {
        let start = Instant::now();
        let c = match cluster_word_count(&exe, &args, 2, path, true, scratch) {
            Ok(c) => c,
            Err(e) => return missing(report, &e),
        };
        let two_procs = start.elapsed().as_secs_f64();
        // The mean worker's time, from the start barrier (every process
        // connected) to reduced.
        let job = c.get("mapreduce.worker_nanos") as f64 / 2e9;
        with = Some(c);
        let dir = match tempfile::tempdir_in(scratch) {
            Ok(d) => d,
            Err(e) => return missing(report, &e),
        };
        let start = Instant::now();
        our_word_count_to_dir(path, 2, &dir.path().join("out"));
        let two_threads = start.elapsed().as_secs_f64();
        if rep > 0 {
            procs.push(gb / two_procs.max(1e-9));
            jobs.push(gb / job.max(1e-9));
            threads.push(gb / two_threads.max(1e-9));
        }
    }
    // timely's connection setup polls once a second, so a run pays about
    // a second before its workers start, whatever the input; the second
    // case leaves that out.
    let name = |what: &str| {
        format!(
            "word count, {label} ({size}), 2 processes x 1 worker vs 1 process x 2 threads, {what}"
        )
    };
    report.results.push(measured(
        KRATE,
        &name("process start included"),
        "GB/s",
        false,
        vec![
            ("2 processes x 1 worker", true, procs),
            ("1 process x 2 threads", false, threads.clone()),
        ],
    ));
    report.results.push(measured(
        KRATE,
        &name("connected to reduced"),
        "GB/s",
        false,
        vec![
            ("2 processes x 1 worker", true, jobs),
            ("1 process x 2 threads", false, threads),
        ],
    ));
    let without = match cluster_word_count(&exe, &args, 2, path, false, scratch) {
        Ok(c) => c,
        Err(e) => return missing(report, &e),
    };
    let Some(with) = with else { return };
    let per_byte = |c: &sysblocks_mapreduce::Counters, name: &str| {
        c.get(name) as f64 / c.get("mapreduce.input_bytes").max(1) as f64
    };
    for (name, counter) in [
        ("exchange bytes per input byte", "mapreduce.exchange_bytes"),
        (
            "exchange bytes to the other process per input byte",
            "mapreduce.exchange_remote_bytes",
        ),
    ] {
        report.results.push(measured(
            KRATE,
            &format!("{name}, 2 processes, {label} ({size})"),
            "B/B",
            true,
            vec![
                ("with combiner", true, vec![per_byte(&with, counter)]),
                ("without combiner", false, vec![per_byte(&without, counter)]),
            ],
        ));
    }
}
