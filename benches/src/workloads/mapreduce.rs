//! Word count inputs and contenders for `mapreduce`, shared by `compare`
//! (and meant for the criterion bench): a seeded Zipf text, the Gutenberg
//! text when `../shared/data` is present, ours (`Runner` + `WordCount`) and
//! the hand-written rayon `fold` + `reduce` into `std` hash maps that a Rust
//! user would otherwise write. Both use `sysblocks_mapreduce::word_count::for_each_word`.
//! Also the cluster contenders: word count on local processes of the
//! timely backend (the `compare` binary re-started as each process), with
//! and without the combiner.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use sysblocks_mapreduce::cluster::{launch_local, LocalLaunch};
use sysblocks_mapreduce::word_count::{for_each_word, WordCount};
use sysblocks_mapreduce::{
    ClusterConfig, Counters, Emitter, Job, Runner, TaskError, TextInput, Word,
};

/// `n` in base 26 with the letters a..z: distinct ranks, distinct words.
fn word_of(mut n: u32, out: &mut Vec<u8>) {
    let start = out.len();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out[start..].reverse();
}

/// A seeded Zipf text of about `bytes` bytes: ranks 1..=vocabulary with
/// probability proportional to 1/rank^exponent, ten words a line.
#[must_use]
pub fn zipf_text(bytes: usize, vocabulary: u32, exponent: f64, seed: u64) -> Vec<u8> {
    let vocabulary = vocabulary.max(1);
    let mut cdf = Vec::with_capacity(vocabulary as usize);
    let mut sum = 0.0;
    for r in 1..=vocabulary {
        sum += 1.0 / f64::from(r).powf(exponent);
        cdf.push(sum);
    }
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(bytes + 64);
    let mut on_line = 0;
    while out.len() < bytes {
        let u = rng.gen::<f64>() * sum;
        let rank = cdf.partition_point(|&c| c < u).min(vocabulary as usize - 1);
        word_of(rank as u32, &mut out);
        on_line += 1;
        if on_line == 10 {
            out.push(b'\n');
            on_line = 0;
        } else {
            out.push(b' ');
        }
    }
    out.push(b'\n');
    out
}

/// The first `limit` bytes (cut at a line end) of the shared Gutenberg
/// text, or `None` without `../shared/data`.
///
/// # Errors
///
/// Reading or decompressing the corpus fails.
pub fn gutenberg(limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let Some(dir) = crate::shared_data_dir() else {
        return Ok(None);
    };
    let src = dir.join("text/gutenberg-100MB.txt.zst");
    if !src.exists() {
        return Ok(None);
    }
    let mut text = zstd::decode_all(std::fs::File::open(src)?)?;
    if text.len() > limit {
        let cut = text[..limit]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(limit, |i| i + 1);
        text.truncate(cut);
    }
    Ok(Some(text))
}

/// A scratch directory for [`scratch_file`]'s input files, removed when
/// the returned guard is dropped (also when a run panics).
///
/// # Errors
///
/// The directory cannot be created.
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("sysblocks-wordcount-")
        .tempdir()
}

/// Writes `text` to `name` in `dir` (a [`scratch_dir`]).
///
/// # Errors
///
/// The file cannot be written.
pub fn scratch_file(dir: &Path, name: &str, text: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The hand-written baseline: read the file, split it into lines in
/// parallel, fold each rayon job's lines into a hash map, merge the maps.
///
/// # Panics
///
/// The file cannot be read.
#[must_use]
pub fn rayon_word_count(path: &Path, pool: &rayon::ThreadPool) -> HashMap<Vec<u8>, u64> {
    let text = std::fs::read(path).expect("read input");
    pool.install(|| {
        text.par_split(|&b| b == b'\n')
            .fold(HashMap::new, |mut m: HashMap<Vec<u8>, u64>, line| {
                for_each_word(line, |w| match m.get_mut(w) {
                    Some(c) => *c += 1,
                    None => {
                        m.insert(w.to_vec(), 1);
                    }
                });
                m
            })
            .reduce(HashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (k, v) in small {
                    *big.entry(k).or_insert(0) += v;
                }
                big
            })
    })
}

/// Ours: a `Runner` with `threads` threads (and `split` bytes per map task
/// when given, else the crate default) running `WordCount` over the file.
///
/// # Panics
///
/// The runner cannot be built or the job fails.
#[must_use]
pub fn our_word_count(path: &Path, threads: usize, split: Option<u64>) -> Vec<(Word, u64)> {
    let mut b = Runner::builder().threads(threads).progress_bar(false);
    if let Some(s) = split {
        b = b.split_size(s);
    }
    b.build()
        .expect("runner")
        .run(&WordCount, &TextInput::path(path))
        .expect("word count")
}

/// `WordCount` without its combiner: every word occurrence is one value
/// in the exchange (what the combiner saves).
pub struct NoCombine;

impl Job for NoCombine {
    type Record = [u8];
    type Key = Word;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        WordCount.map(line, emit)
    }

    fn reduce(&self, word: &Word, counts: Vec<u64>) -> Result<u64, TaskError> {
        WordCount.reduce(word, counts)
    }
}

/// Writes `word<TAB>count` lines (the part files of the cluster cases).
///
/// # Errors
///
/// Writing fails.
pub fn count_line(w: &Word, n: &u64, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    out.write_all(w.as_bytes())?;
    writeln!(out, "\t{n}")
}

/// Ours, one process: a `Runner` with `threads` threads writing part files
/// to `dir` (as each process of the cluster cases does).
///
/// # Panics
///
/// The runner cannot be built or the job fails.
pub fn our_word_count_to_dir(path: &Path, threads: usize, dir: &Path) {
    Runner::builder()
        .threads(threads)
        .build()
        .expect("runner")
        .run_to_dir(&WordCount, &TextInput::path(path), dir, count_line)
        .expect("word count");
}

/// The environment variable that makes the `compare` binary a cluster
/// process of [`cluster_word_count`] instead of a benchmark run.
pub const CHILD_ENV: &str = "SYSBLOCKS_MAPREDUCE_CLUSTER_CHILD";

/// Word count on `processes` local processes × 1 worker: `exe` (the
/// `compare` binary) is started once per process with [`CHILD_ENV`] set,
/// and runs [`cluster_child`]. Returns the counters of process 0 (the
/// totals over all processes).
///
/// # Errors
///
/// A process fails or the counters cannot be read.
pub fn cluster_word_count(
    exe: &Path,
    args: &[&str],
    processes: usize,
    input: &Path,
    combine: bool,
    scratch: &Path,
) -> Result<Counters, Box<dyn std::error::Error>> {
    let run = tempfile::Builder::new()
        .prefix("cluster-")
        .tempdir_in(scratch)?;
    let out = run.path().join("out");
    let counters = run.path().join("counters");
    launch_local(&LocalLaunch::new(processes, 1), |flags| {
        let mut c = std::process::Command::new(exe);
        c.args(args)
            .env(CHILD_ENV, flags.join(" "))
            .env("SYSBLOCKS_MAPREDUCE_INPUT", input)
            .env("SYSBLOCKS_MAPREDUCE_OUT", &out)
            .env("SYSBLOCKS_MAPREDUCE_COUNTERS", &counters)
            .env(
                "SYSBLOCKS_MAPREDUCE_COMBINE",
                if combine { "1" } else { "0" },
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    })?;
    let text = std::fs::read_to_string(&counters)?;
    let mut c = Counters::new();
    for line in text.lines() {
        let (k, v) = line.rsplit_once(' ').ok_or("bad counters line")?;
        c.add(k, v.parse()?);
    }
    Ok(c)
}

/// The body of one cluster process (see [`cluster_word_count`]), when
/// [`CHILD_ENV`] is set: runs its part of word count and, as process 0,
/// writes the counters. Returns `None` when the variable is not set.
#[must_use]
pub fn cluster_child() -> Option<Result<(), Box<dyn std::error::Error>>> {
    let flags = std::env::var(CHILD_ENV).ok()?;
    Some((|| {
        let (config, _) = ClusterConfig::from_args(flags.split(' '))?;
        let var = |n: &str| std::env::var_os(n).ok_or(format!("{n} not set"));
        let input = TextInput::path(var("SYSBLOCKS_MAPREDUCE_INPUT")?);
        let out = PathBuf::from(var("SYSBLOCKS_MAPREDUCE_OUT")?);
        let runner = Runner::builder().build()?;
        let (_, counters) = if var("SYSBLOCKS_MAPREDUCE_COMBINE")? == "1" {
            runner.run_cluster_to_dir(&config, WordCount, &input, &out, count_line)?
        } else {
            runner.run_cluster_to_dir(&config, NoCombine, &input, &out, count_line)?
        };
        if config.process() == 0 {
            std::fs::write(var("SYSBLOCKS_MAPREDUCE_COUNTERS")?, counters.to_string())?;
        }
        Ok(())
    })())
}
