//! Word count: the known answer from an independent pipeline, and identical
//! output across thread counts, spilling, and tiny budgets.

mod common;

use std::process::Command;
use std::time::Instant;

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{Codec, DecodeError, Emitter, Job, Runner, TaskError, TextInput};

/// Word count of the whole 100 MB Gutenberg text equals
/// `tr -cs 'A-Za-z' '\n' | tr 'A-Z' 'a-z' | sort | uniq -c` (C locale),
/// word for word.
#[test]
fn gutenberg_matches_tr_sort_uniq() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(path) = common::gutenberg(tmp.path(), usize::MAX) else {
        return;
    };
    let t = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg("tr -cs 'A-Za-z' '\\n' < \"$1\" | tr 'A-Z' 'a-z' | sort | uniq -c")
        .arg("sh")
        .arg(&path)
        .env("LC_ALL", "C")
        .output()
        .expect("run the shell pipeline");
    assert!(out.status.success(), "pipeline failed: {out:?}");
    println!("independent pipeline: {:?}", t.elapsed());
    let mut expected: Vec<(Vec<u8>, u64)> = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n') {
        let line = line.trim_ascii_start();
        let Some(sp) = line.iter().position(|&b| b == b' ') else {
            continue;
        };
        let n: u64 = std::str::from_utf8(&line[..sp]).unwrap().parse().unwrap();
        let word = &line[sp + 1..];
        if !word.is_empty() {
            // `tr -s` leaves one empty line when the text starts with a
            // separator; it is not a word.
            expected.push((word.to_vec(), n));
        }
    }
    expected.sort();

    let t = Instant::now();
    let runner = Runner::builder()
        .threads(2)
        .split_size(16 << 20)
        .build()
        .unwrap();
    let got = runner.run(&WordCount, &TextInput::path(&path)).unwrap();
    println!("mapreduce word count: {:?}", t.elapsed());
    assert!(expected.len() > 50_000, "{} words", expected.len());
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(
            (g.0.as_bytes(), g.1),
            (&e.0[..], e.1),
            "{:?}",
            String::from_utf8_lossy(&e.0)
        );
    }
}

/// The same word counts with 1 and 2 threads, no spilling, spilling, and a
/// budget so small that nearly every few lines make a run (hundreds of
/// runs, so reduce merges in several rounds); equal to a sequential model.
#[test]
fn same_output_with_threads_and_spilling() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(path) = common::gutenberg(tmp.path(), 3 << 20) else {
        return;
    };
    let text = std::fs::read(&path).unwrap();
    let expected: Vec<(Vec<u8>, u64)> = common::model_counts(&text).into_iter().collect();
    let spill = tempfile::tempdir().unwrap();
    for threads in [1, 2] {
        for (budget, split) in [
            (1u64 << 30, 1u64 << 20),
            (2 << 20, 256 << 10),
            (20_000, 64 << 10),
        ] {
            let spilled = std::sync::atomic::AtomicU64::new(0);
            let spilled = std::sync::Arc::new(spilled);
            let s2 = spilled.clone();
            let runner = Runner::builder()
                .threads(threads)
                .partitions(3)
                .memory_budget(budget)
                .split_size(split)
                .spill_dir(spill.path())
                .on_progress(move |p| {
                    s2.fetch_max(p.spilled_bytes, std::sync::atomic::Ordering::Relaxed);
                })
                .build()
                .unwrap();
            let got: Vec<(Vec<u8>, u64)> = runner
                .run(&WordCount, &TextInput::path(&path))
                .unwrap()
                .into_iter()
                .map(|(w, n)| (w.into_vec(), n))
                .collect();
            assert!(got == expected, "threads {threads} budget {budget}");
            let spilled = spilled.load(std::sync::atomic::Ordering::Relaxed);
            if budget < 1 << 30 {
                assert!(spilled > 0, "budget {budget} should spill");
            } else {
                assert_eq!(spilled, 0);
            }
            assert!(common::leftovers(spill.path()).is_empty());
        }
    }
}

/// Every word's line offsets, without a combiner: values must arrive in
/// split order, whatever the threads and spilling.
struct Positions;

impl Job for Positions {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = u64;
    type Output = Vec<u64>;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, u64>) -> Result<(), TaskError> {
        let at = emit.origin().offset();
        sysblocks_mapreduce::word_count::for_each_word(line, |w| emit.emit_ref(w, at));
        Ok(())
    }

    fn reduce(&self, _key: &Vec<u8>, values: Vec<u64>) -> Result<Vec<u64>, TaskError> {
        Ok(values)
    }
}

/// [`Positions`] with a combiner that appends (associative, not
/// commutative): the combined lists must still be in split order.
struct AppendPositions;

impl Job for AppendPositions {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = Vec<u64>;
    type Output = Vec<u64>;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, Vec<u64>>) -> Result<(), TaskError> {
        let at = emit.origin().offset();
        sysblocks_mapreduce::word_count::for_each_word(line, |w| emit.emit_ref(w, vec![at]));
        Ok(())
    }

    fn combine(&self, _key: &Vec<u8>, acc: &mut Vec<u64>, value: Vec<u64>) -> Option<Vec<u64>> {
        acc.extend(value);
        None
    }

    fn reduce(&self, _key: &Vec<u8>, values: Vec<Vec<u64>>) -> Result<Vec<u64>, TaskError> {
        Ok(values.concat())
    }
}

#[test]
fn values_arrive_in_split_order() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(path) = common::gutenberg(tmp.path(), 1 << 20) else {
        return;
    };
    let text = std::fs::read(&path).unwrap();
    let mut expected = std::collections::BTreeMap::<Vec<u8>, Vec<u64>>::new();
    let mut off = 0u64;
    for line in text.split_inclusive(|&b| b == b'\n') {
        sysblocks_mapreduce::word_count::for_each_word(line, |w| {
            expected.entry(w.to_vec()).or_default().push(off)
        });
        off += line.len() as u64;
    }
    let expected: Vec<_> = expected.into_iter().collect();
    for threads in [1, 2] {
        for budget in [1u64 << 30, 50_000] {
            let runner = Runner::builder()
                .threads(threads)
                .memory_budget(budget)
                .split_size(100 << 10)
                .build()
                .unwrap();
            let got = runner.run(&Positions, &TextInput::path(&path)).unwrap();
            assert!(got == expected, "threads {threads} budget {budget}");
            let got = runner
                .run(&AppendPositions, &TextInput::path(&path))
                .unwrap();
            assert!(
                got == expected,
                "combined, threads {threads} budget {budget}"
            );
        }
    }
}

/// A key type with its own codec, to check the `Codec` extension point.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct Upper(String);

impl Codec for Upper {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.to_uppercase().encode(out);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        Ok(Upper(String::decode(input)?))
    }
}

struct Shout;

impl Job for Shout {
    type Record = String;
    type Key = Upper;
    type Value = u32;
    type Output = u32;

    fn map(&self, r: &String, emit: &mut Emitter<'_, Upper, u32>) -> Result<(), TaskError> {
        emit.emit(Upper(r.to_uppercase()), 1);
        Ok(())
    }

    fn combine(&self, _k: &Upper, acc: &mut u32, v: u32) -> Option<u32> {
        *acc += v;
        None
    }

    fn reduce(&self, _k: &Upper, v: Vec<u32>) -> Result<u32, TaskError> {
        Ok(v.iter().sum())
    }
}

#[test]
fn custom_codec_survives_spilling() {
    let recs: Vec<String> = (0..5000).map(|i| format!("w{}", i % 300)).collect();
    let runner = Runner::builder()
        .threads(2)
        .memory_budget(4000)
        .records_per_split(700)
        .build()
        .unwrap();
    let got = runner.run_iter(&Shout, recs).unwrap();
    assert_eq!(got.len(), 300);
    assert!(got
        .iter()
        .all(|(k, n)| k.0.starts_with('W') && (*n == 16 || *n == 17)));
    assert_eq!(got.iter().map(|x| x.1).sum::<u32>(), 5000);
}
