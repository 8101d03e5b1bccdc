//! Helpers shared by the behaviour tests (included with `mod common;`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sysblocks_mapreduce::word_count::for_each_word;

/// The Gutenberg text decompressed into `dir`, cut to at most `limit` bytes
/// at a line boundary. `None` (the caller skips, and says so) only when
/// `../shared` is absent; a missing file under an existing `../shared`
/// fails the test.
pub(crate) fn gutenberg(dir: &Path, limit: usize) -> Option<PathBuf> {
    let src =
        sysblocks_testkit::shared_data(env!("CARGO_MANIFEST_DIR"), "text/gutenberg-100MB.txt.zst")?;
    let raw = std::fs::read(&src).expect("read corpus");
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

/// Word counts by a plain sequential model.
pub(crate) fn model_counts(text: &[u8]) -> BTreeMap<Vec<u8>, u64> {
    let mut m = BTreeMap::new();
    for line in text.split(|&b| b == b'\n') {
        for_each_word(line, |w| *m.entry(w.to_vec()).or_insert(0) += 1);
    }
    m
}

/// Files left in a directory.
pub(crate) fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// `n` written in base 26 with the letters `a..z` (a word for word count).
pub(crate) fn letters(mut n: u32) -> String {
    let mut s = String::new();
    loop {
        s.insert(0, char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

/// Word count that counts, in its counters, the lines and words it maps
/// (`lines`, `words`) and the keys it reduces (`distinct`). With `flaky`,
/// the first attempt of the first map task fails after counting its first
/// line, so that a counter of a failed attempt would show.
pub(crate) struct Counting {
    pub(crate) flaky: bool,
    pub(crate) failed: std::sync::Mutex<std::collections::HashSet<usize>>,
}

impl Counting {
    pub(crate) fn new(flaky: bool) -> Self {
        Self {
            flaky,
            failed: std::sync::Mutex::default(),
        }
    }
}

impl sysblocks_mapreduce::Job for Counting {
    type Record = [u8];
    type Key = sysblocks_mapreduce::Word;
    type Value = u64;
    type Output = u64;

    fn map(
        &self,
        line: &[u8],
        emit: &mut sysblocks_mapreduce::Emitter<'_, sysblocks_mapreduce::Word, u64>,
    ) -> Result<(), sysblocks_mapreduce::TaskError> {
        emit.counters().add("lines", 1);
        let mut words = 0;
        for_each_word(line, |w| {
            words += 1;
            emit.emit_ref(w, 1);
        });
        emit.counters().add("words", words);
        let first_line = emit.origin().offset() == 0 && emit.origin().file_index() == 0;
        if self.flaky && first_line && self.failed.lock().unwrap().insert(0) {
            return Err(sysblocks_mapreduce::TaskError::msg("first attempt fails"));
        }
        Ok(())
    }

    fn combine(&self, _w: &sysblocks_mapreduce::Word, acc: &mut u64, n: u64) -> Option<u64> {
        *acc += n;
        None
    }

    fn reduce(
        &self,
        _w: &sysblocks_mapreduce::Word,
        counts: Vec<u64>,
    ) -> Result<u64, sysblocks_mapreduce::TaskError> {
        Ok(counts.iter().sum())
    }

    fn reduce_iter(
        &self,
        _w: &sysblocks_mapreduce::Word,
        counts: sysblocks_mapreduce::Values<'_, u64>,
        counters: &mut sysblocks_mapreduce::Counters,
    ) -> Result<u64, sysblocks_mapreduce::TaskError> {
        counters.add("distinct", 1);
        Ok(counts.sum())
    }
}

/// Lines, words and distinct words of `text`, as `Counting` counts them.
pub(crate) fn expected_counts(text: &[u8]) -> (u64, u64, u64) {
    let lines = text.split(|&b| b == b'\n').count() as u64 - u64::from(text.ends_with(b"\n"));
    let m = model_counts(text);
    (lines, m.values().sum(), m.len() as u64)
}
