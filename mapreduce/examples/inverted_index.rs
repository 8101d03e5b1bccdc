//! Inverted index: `cargo run --release -p sysblocks-mapreduce --example inverted_index -- PATH...`
//!
//! Prints `word<TAB>file,file,...` for every word (a maximal run of ASCII
//! letters, lowercased) of the files under the given paths, sorted by word;
//! each word lists the files that contain it, in input order.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use sysblocks_mapreduce::word_count::for_each_word;
use sysblocks_mapreduce::{Emitter, Job, Runner, TaskError, TextInput};

/// word -> indices of the files that contain it.
struct InvertedIndex;

impl Job for InvertedIndex {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = u32;
    type Output = Vec<u32>;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, u32>) -> Result<(), TaskError> {
        let file = u32::try_from(emit.origin().file_index())
            .map_err(|_| TaskError::msg("more than u32::MAX input files"))?;
        for_each_word(line, |w| emit.emit_ref(w, file));
        Ok(())
    }

    /// Repeats of the same file collapse; values arrive in split order, so
    /// equal file indices are adjacent.
    fn combine(&self, _word: &Vec<u8>, acc: &mut u32, file: u32) -> Option<u32> {
        (*acc != file).then_some(file)
    }

    fn reduce(&self, _word: &Vec<u8>, mut files: Vec<u32>) -> Result<Vec<u32>, TaskError> {
        files.dedup();
        Ok(files)
    }
}

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: inverted_index PATH...");
        return ExitCode::FAILURE;
    }
    match run(&paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("inverted_index: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(paths: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let input = TextInput::new(paths);
    let files = input.files()?;
    let index = Runner::builder()
        .progress_bar(true)
        .build()?
        .run(&InvertedIndex, &input)?;
    let mut out = BufWriter::new(io::stdout().lock());
    for (word, ids) in index {
        out.write_all(&word)?;
        out.write_all(b"\t")?;
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{}", files[*id as usize].display())?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
