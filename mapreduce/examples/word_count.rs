//! Word count: `cargo run --release -p sysblocks-mapreduce --example word_count -- FILE...`
//!
//! Prints `word<TAB>count` lines to stdout, sorted by descending count, then
//! ascending word. A word is a maximal run of ASCII letters, lowercased;
//! every other byte (including non-ASCII and invalid UTF-8) separates words.
//! Options: `--threads N`, `--budget BYTES`, `--split BYTES`.
//!
//! With the `timely` feature, the same job on a cluster:
//!
//! - `--processes N FILE...` (without `-p`) starts N processes of this
//!   program on 127.0.0.1 (`--retries K` retries the whole job, default 1),
//!   each with `--threads` workers, and prints the merged result;
//! - timely's flags `-w T -n N -p I -h HOSTFILE --out DIR FILE...` make this
//!   process process I of N; the parts go to `DIR` (a path all processes
//!   share), published by process 0.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use sysblocks_mapreduce::word_count::{sort_by_count, WordCount};
use sysblocks_mapreduce::{Runner, TextInput};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("word_count: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    #[cfg(feature = "timely")]
    if let Some(r) = cluster::run(&all) {
        return r;
    }
    let mut args = all.into_iter();
    let mut builder = Runner::builder().progress_bar(true);
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => builder = builder.threads(args.next().ok_or("--threads N")?.parse()?),
            "--budget" => {
                builder = builder.memory_budget(args.next().ok_or("--budget BYTES")?.parse()?);
            }
            "--split" => builder = builder.split_size(args.next().ok_or("--split BYTES")?.parse()?),
            "--processes" | "-n" | "-p" | "-h" | "-w" => {
                return Err(format!("{a} needs the `timely` feature (--features timely)").into())
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        return Err(
            "usage: word_count [--threads N] [--budget BYTES] [--split BYTES] FILE...".into(),
        );
    }
    let runner = builder.build()?;
    let mut counts = runner.run(&WordCount, &TextInput::new(files))?;
    sort_by_count(&mut counts);
    print(&counts)
}

fn print(counts: &[(impl AsRef<[u8]>, u64)]) -> Result<(), Box<dyn std::error::Error>> {
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    for (word, n) in counts {
        out.write_all(word.as_ref())?;
        writeln!(out, "\t{n}")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(feature = "timely")]
mod cluster {
    use std::io::{BufRead, Write};
    use std::path::PathBuf;
    use std::process::Command;

    use sysblocks_mapreduce::cluster::{launch_local, LocalLaunch};
    use sysblocks_mapreduce::word_count::{sort_by_count, WordCount};
    use sysblocks_mapreduce::{ClusterConfig, Runner, TextInput};

    type Res = Result<(), Box<dyn std::error::Error>>;

    /// The cluster modes, or `None` for a plain single-process run.
    pub(super) fn run(args: &[String]) -> Option<Res> {
        let member = args.iter().any(|a| a == "-p" || a == "--process");
        let launcher = !member && args.iter().any(|a| a == "--processes" || a == "-n");
        if member {
            Some(member_run(args))
        } else if launcher {
            Some(launch(args))
        } else {
            None
        }
    }

    /// One process of a cluster.
    fn member_run(args: &[String]) -> Res {
        let (config, rest) = ClusterConfig::from_args(args.iter().cloned())?;
        let mut out = None;
        let mut files = Vec::new();
        let mut it = rest.into_iter();
        while let Some(a) = it.next() {
            if a == "--out" {
                out = Some(PathBuf::from(it.next().ok_or("--out DIR")?));
            } else {
                files.push(a);
            }
        }
        let out = out.ok_or("a cluster member needs --out DIR")?;
        let runner = Runner::builder().build()?;
        let fmt = |w: &sysblocks_mapreduce::Word, n: &u64, o: &mut dyn Write| {
            o.write_all(w.as_bytes())?;
            writeln!(o, "\t{n}")
        };
        runner.run_cluster_to_dir(&config, WordCount, &TextInput::new(files), &out, fmt)?;
        Ok(())
    }

    /// `--processes N [--threads T] [--retries K] FILE...`: N local processes.
    fn launch(args: &[String]) -> Res {
        let (mut processes, mut threads, mut retries) = (1usize, 1usize, 1u32);
        let mut files = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--processes" | "-n" => processes = it.next().ok_or("--processes N")?.parse()?,
                "--threads" | "-w" => threads = it.next().ok_or("--threads N")?.parse()?,
                "--retries" => retries = it.next().ok_or("--retries K")?.parse()?,
                _ => files.push(std::fs::canonicalize(a)?),
            }
        }
        if files.is_empty() {
            return Err("usage: word_count --processes N [--threads T] FILE...".into());
        }
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("out");
        let exe = std::env::current_exe()?;
        let mut settings = LocalLaunch::new(processes, threads);
        settings.retries = retries;
        let attempts = launch_local(&settings, |flags| {
            let mut c = Command::new(&exe);
            c.args(flags).arg("--out").arg(&out).args(&files);
            c.stdout(std::process::Stdio::null());
            c
        })?;
        if attempts > 1 {
            eprintln!("word_count: succeeded on attempt {attempts}");
        }
        let mut counts: Vec<(Vec<u8>, u64)> = Vec::new();
        for e in std::fs::read_dir(&out)? {
            let path = e?.path();
            if !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("part-"))
            {
                continue;
            }
            for line in std::io::BufReader::new(std::fs::File::open(&path)?).split(b'\n') {
                let line = line?;
                let tab = line
                    .iter()
                    .rposition(|&b| b == b'\t')
                    .ok_or("bad part line")?;
                let n: u64 = std::str::from_utf8(&line[tab + 1..])?.parse()?;
                counts.push((line[..tab].to_vec(), n));
            }
        }
        sort_by_count(&mut counts);
        super::print(&counts)
    }
}
