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
