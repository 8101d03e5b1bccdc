//! Word count: `cargo run --release -p sysblocks-mapreduce --example word_count -- FILE...`
//!
//! Prints `word<TAB>count` lines to stdout, sorted by descending count, then
//! ascending word. A word is a maximal run of ASCII letters, lowercased;
//! every other byte (including non-ASCII and invalid UTF-8) separates words.
//! Options: `--threads N`, `--budget BYTES`, `--split BYTES`.

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
    let mut args = std::env::args().skip(1);
    let mut builder = Runner::builder().progress_bar(true);
    let mut files = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--threads" => builder = builder.threads(args.next().ok_or("--threads N")?.parse()?),
            "--budget" => {
                builder = builder.memory_budget(args.next().ok_or("--budget BYTES")?.parse()?);
            }
            "--split" => builder = builder.split_size(args.next().ok_or("--split BYTES")?.parse()?),
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
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    for (word, n) in &counts {
        out.write_all(word)?;
        writeln!(out, "\t{n}")?;
    }
    out.flush()?;
    Ok(())
}
