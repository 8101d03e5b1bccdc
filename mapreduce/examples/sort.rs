//! Sort: `cargo run --release -p sysblocks-mapreduce --example sort -- OUTDIR PATH...`
//!
//! Sorts the lines of the input (bytewise, duplicates kept) into
//! `OUTDIR/part-00000`, `part-00001`, ...: a range partitioner built from a
//! sample of the lines makes the concatenation of the parts sorted, so
//! `cat OUTDIR/part-*` equals `LC_ALL=C sort PATH...`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use sysblocks_mapreduce::{Emitter, Job, RangePartitioner, Runner, TaskError, TextInput};

/// line -> number of times it occurs.
struct Sort;

impl Job for Sort {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, u64>) -> Result<(), TaskError> {
        emit.emit_ref(line, 1);
        Ok(())
    }

    fn combine(&self, _line: &Vec<u8>, acc: &mut u64, n: u64) -> Option<u64> {
        *acc += n;
        None
    }

    fn reduce(&self, _line: &Vec<u8>, counts: Vec<u64>) -> Result<u64, TaskError> {
        Ok(counts.iter().sum())
    }
}

/// Every 97th line of the first 16 MiB of each file.
fn sample(files: &[std::path::PathBuf]) -> std::io::Result<Vec<Vec<u8>>> {
    let mut sample = Vec::new();
    for f in files {
        let mut r = BufReader::new(std::fs::File::open(f)?.take(16 << 20));
        let mut line = Vec::new();
        let mut i = 0u64;
        while r.read_until(b'\n', &mut line)? > 0 {
            if i.is_multiple_of(97) {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                sample.push(line.clone());
            }
            line.clear();
            i += 1;
        }
    }
    Ok(sample)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: sort OUTDIR PATH...");
        return ExitCode::FAILURE;
    }
    match run(Path::new(&args[0]), &args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sort: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(out: &Path, paths: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let input = TextInput::new(paths);
    let files = input.files()?;
    let partitions = 8;
    let partitioner = RangePartitioner::from_sample(sample(&files)?, partitions)?;
    let runner = Runner::builder()
        .progress_bar(true)
        .partitions(partitions)
        .partitioner(partitioner)
        .build()?;
    let parts = runner.run_to_dir(&Sort, &input, out, |line, n, w| {
        for _ in 0..*n {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;
    for p in parts {
        println!("{}", p.display());
    }
    Ok(())
}
