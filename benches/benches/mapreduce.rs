//! Word count: `mapreduce` against a hand-written rayon `fold` + `reduce`
//! into `std` hash maps (what a Rust user would otherwise write), at 1 and
//! 2 threads, on the Gutenberg text and on a seeded Zipf text (vocabulary
//! 1,000,000, exponent 1.0). Both read the same file from the page cache
//! and use the same tokenizer (`sysblocks_mapreduce::word_count::for_each_word`).
//!
//! Run: `cargo bench -p benches --bench mapreduce -- --warm-up-time 1 --measurement-time 3`
//!
//! Sizes: the whole 100 MB Gutenberg text and `MR_ZIPF_MB` (default 100) MB
//! of Zipf text when benchmarking; 4 MB of each under `cargo test --benches`.

use std::io::Write;
use std::path::{Path, PathBuf};

use benches::workloads::mapreduce::{rayon_word_count, zipf_text};
use criterion::{BenchmarkId, Criterion, Throughput};
use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{Runner, TextInput, Word};

/// Whether criterion is measuring (`cargo bench`) rather than running each
/// bench once (`cargo test --benches`).
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The Gutenberg text (or its first `limit` bytes, cut at a line end)
/// in a file in `dir`, or `None` without `../shared/data`.
fn gutenberg(dir: &Path, limit: usize) -> Option<PathBuf> {
    let src = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/text/gutenberg-100MB.txt.zst"
    ));
    if !src.exists() {
        println!("skipped: ../shared/data not found");
        return None;
    }
    let raw = std::fs::read(src).expect("read corpus");
    let mut text = zstd::decode_all(&raw[..]).expect("decompress corpus");
    if text.len() > limit {
        let cut = text[..limit]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(limit, |i| i + 1);
        text.truncate(cut);
    }
    let path = dir.join("gutenberg.txt");
    std::fs::write(&path, &text).expect("write corpus");
    Some(path)
}

fn zipf_file(dir: &Path, bytes: usize) -> PathBuf {
    let path = dir.join(format!("zipf-{bytes}.txt"));
    let text = zipf_text(bytes, 1_000_000, 1.0, 0x5eed);
    let mut f = std::fs::File::create(&path).expect("create zipf file");
    f.write_all(&text).expect("write zipf file");
    path
}

fn ours(path: &Path, threads: usize) -> Vec<(Word, u64)> {
    let runner = Runner::builder()
        .threads(threads)
        .progress_bar(false)
        .build()
        .expect("runner");
    runner
        .run(&WordCount, &TextInput::path(path))
        .expect("word count")
}

fn compare(c: &mut Criterion, name: &str, path: &Path) {
    let bytes = std::fs::metadata(path).expect("input").len();
    // Same answer from both before timing anything.
    let mut base: Vec<(Vec<u8>, u64)> = rayon_word_count(
        path,
        &rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    )
    .into_iter()
    .collect();
    base.sort_unstable();
    let got: Vec<(Vec<u8>, u64)> = ours(path, 2)
        .into_iter()
        .map(|(w, n)| (w.into_vec(), n))
        .collect();
    assert!(got == base, "ours and rayon disagree on {name}");

    let mut g = c.benchmark_group(format!("mapreduce_wordcount_{name}"));
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        g.bench_with_input(BenchmarkId::new("ours", threads), &threads, |b, &t| {
            b.iter(|| ours(path, t).len());
        });
        g.bench_with_input(BenchmarkId::new("rayon", threads), &threads, |b, _| {
            b.iter(|| rayon_word_count(path, &pool).len());
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let small = 4 << 20;
    let (g_limit, z_bytes) = if measuring() {
        let mb: usize = std::env::var("MR_ZIPF_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        (usize::MAX, mb << 20)
    } else {
        (small, small)
    };
    // This process's input files, removed when `dir` is dropped (also if
    // a bench panics).
    let dir = tempfile::Builder::new()
        .prefix("mapreduce-bench-")
        .tempdir()
        .expect("scratch dir");
    if let Some(p) = gutenberg(dir.path(), g_limit) {
        compare(c, "gutenberg", &p);
    }
    let z = zipf_file(dir.path(), z_bytes);
    compare(c, "zipf", &z);
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
