//! Distributed grep: `cargo run --release -p sysblocks-mapreduce --example grep -- PATTERN PATH...`
//!
//! Prints `file:offset:line` for every line that contains PATTERN (bytes,
//! case-sensitive), in file order then offset order.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use sysblocks_mapreduce::{Emitter, Job, Runner, TaskError, TextInput};

/// (file index, byte offset) -> the matching line.
struct Grep {
    finder: memchr::memmem::Finder<'static>,
}

impl Job for Grep {
    type Record = [u8];
    type Key = (u64, u64);
    type Value = Vec<u8>;
    type Output = Vec<u8>;

    fn map(
        &self,
        line: &[u8],
        emit: &mut Emitter<'_, (u64, u64), Vec<u8>>,
    ) -> Result<(), TaskError> {
        if self.finder.find(line).is_some() {
            let o = emit.origin();
            emit.emit((o.file_index() as u64, o.offset()), line.to_vec());
        }
        Ok(())
    }

    fn reduce(&self, _at: &(u64, u64), mut lines: Vec<Vec<u8>>) -> Result<Vec<u8>, TaskError> {
        lines.pop().ok_or_else(|| TaskError::msg("no line"))
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(pattern), paths) = (args.next(), args.collect::<Vec<_>>()) else {
        eprintln!("usage: grep PATTERN PATH...");
        return ExitCode::FAILURE;
    };
    if paths.is_empty() {
        eprintln!("usage: grep PATTERN PATH...");
        return ExitCode::FAILURE;
    }
    match run(pattern, &paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("grep: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(pattern: String, paths: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let pattern: &'static [u8] = Box::leak(pattern.into_bytes().into_boxed_slice());
    let job = Grep {
        finder: memchr::memmem::Finder::new(pattern),
    };
    let input = TextInput::new(paths);
    let files = input.files()?;
    let hits = Runner::builder()
        .progress_bar(true)
        .build()?
        .run(&job, &input)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for ((file, offset), line) in hits {
        write!(out, "{}:{offset}:", files[file as usize].display())?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
