//! Peak memory under a budget: `cargo run --release -p sysblocks-mapreduce --example budget_rss -- ...`
//!
//! - `gen FILE MB`: writes MB MiB of seeded Zipf text (vocabulary 1,000,000,
//!   exponent 1.0, ten words a line) to FILE, streaming.
//! - `run FILE [BUDGET_BYTES] [THREADS]`: word count of FILE; prints the
//!   time, throughput, distinct words, spilled bytes and the process's peak
//!   RSS (`VmHWM` from `/proc/self/status`).
//!
//! Run each measurement in its own process, as the peak is per process.

use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{Runner, TextInput};

/// xorshift64*: a small seeded generator, enough for test text.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn gen(path: &str, mb: u64) -> std::io::Result<()> {
    let vocabulary = 1_000_000u32;
    let mut cdf = Vec::with_capacity(vocabulary as usize);
    let mut sum = 0.0;
    for r in 1..=vocabulary {
        sum += 1.0 / f64::from(r);
        cdf.push(sum);
    }
    let mut rng = Rng(0x5eed_5eed_5eed_5eed);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let target = mb << 20;
    let mut written = 0u64;
    let mut word = Vec::new();
    let mut on_line = 0;
    while written < target {
        let u = rng.next_f64() * sum;
        let mut n = cdf.partition_point(|&c| c < u).min(vocabulary as usize - 1) as u32;
        word.clear();
        loop {
            word.push(b'a' + (n % 26) as u8);
            n /= 26;
            if n == 0 {
                break;
            }
        }
        word.reverse();
        on_line += 1;
        word.push(if on_line % 10 == 0 { b'\n' } else { b' ' });
        out.write_all(&word)?;
        written += word.len() as u64;
    }
    out.write_all(b"\n")?;
    out.flush()
}

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("gen") if args.len() == 3 => args[2]
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())
            .and_then(|mb| gen(&args[1], mb).map_err(|e| e.to_string())),
        Some("run") if args.len() >= 2 => run(&args[1..]).map_err(|e| e.to_string()),
        _ => Err(
            "usage: budget_rss gen FILE MB | budget_rss run FILE [BUDGET_BYTES] [THREADS]".into(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("budget_rss: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let file = &args[0];
    let mut b = Runner::builder().progress_bar(false);
    if let Some(budget) = args.get(1) {
        b = b.memory_budget(budget.parse()?);
    }
    if let Some(t) = args.get(2) {
        b = b.threads(t.parse()?);
    }
    let spilled = Arc::new(AtomicU64::new(0));
    let s2 = spilled.clone();
    let runner = b
        .on_progress(move |p| s2.store(p.spilled_bytes, Ordering::Relaxed))
        .build()?;
    let bytes = std::fs::metadata(file)?.len();
    let t = Instant::now();
    let counts = runner.run(&WordCount, &TextInput::path(file))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "input {:.0} MiB, threads {}, {:.2} s, {:.1} MiB/s, {} distinct words, spilled {:.0} MiB, peak RSS {} MiB",
        bytes as f64 / 1048576.0,
        runner.threads(),
        secs,
        bytes as f64 / 1048576.0 / secs,
        counts.len(),
        spilled.load(Ordering::Relaxed) as f64 / 1048576.0,
        peak_rss_kib().map_or("?".into(), |k| (k / 1024).to_string())
    );
    Ok(())
}
