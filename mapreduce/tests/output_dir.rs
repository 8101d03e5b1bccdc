//! Partitioned file output, sorted output with a range partitioner, and the
//! progress callback.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{
    JobError, ManualClock, Phase, RangePartitioner, Runner, TextInput, Word,
};

fn write_input(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("in.txt");
    let mut f = std::fs::File::create(&p).unwrap();
    for i in 0..3000u32 {
        writeln!(
            f,
            "k{} common w{}",
            common::letters(i % 211),
            common::letters((i * 7919) % 1009)
        )
        .unwrap();
    }
    p
}

fn fmt(k: &Word, v: &u64, w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all(k)?;
    writeln!(w, "\t{v}")
}

#[test]
fn part_files_hold_exactly_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let input = TextInput::path(write_input(tmp.path()));
    let runner = Runner::builder()
        .threads(2)
        .partitions(4)
        .split_size(8192)
        .build()
        .unwrap();
    let expected = runner.run(&WordCount, &input).unwrap();
    let out = tmp.path().join("out");
    let parts = runner.run_to_dir(&WordCount, &input, &out, fmt).unwrap();
    assert_eq!(parts.len(), 4);
    assert_eq!(parts[3], out.join("part-00003"));
    assert!(out.join("_SUCCESS").exists());
    let mut lines = Vec::new();
    for p in &parts {
        let text = std::fs::read_to_string(p).unwrap();
        lines.extend(text.lines().map(String::from));
    }
    lines.sort();
    let want: Vec<String> = expected
        .iter()
        .map(|(k, v)| format!("{}\t{v}", String::from_utf8_lossy(k)))
        .collect();
    assert_eq!(lines, want);
    // Output is never overwritten.
    assert!(matches!(
        runner.run_to_dir(&WordCount, &input, &out, fmt),
        Err(JobError::OutputExists { .. })
    ));
}

#[test]
fn range_partitioner_gives_globally_sorted_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_input(tmp.path());
    let text = std::fs::read(&path).unwrap();
    let sample: Vec<Word> = common::model_counts(&text)
        .into_keys()
        .step_by(7)
        .map(Word::from)
        .collect();
    let runner = Runner::builder()
        .threads(2)
        .partitions(5)
        .split_size(8192)
        .memory_budget(30_000)
        .partitioner(RangePartitioner::from_sample(sample, 5).unwrap())
        .build()
        .unwrap();
    let input = TextInput::path(&path);
    let got: Vec<(Vec<u8>, u64)> = runner
        .run(&WordCount, &input)
        .unwrap()
        .into_iter()
        .map(|(w, n)| (w.into_vec(), n))
        .collect();
    let expected: Vec<_> = common::model_counts(&text).into_iter().collect();
    assert_eq!(got, expected);
    let out = tmp.path().join("sorted");
    let parts = runner.run_to_dir(&WordCount, &input, &out, fmt).unwrap();
    let mut all = String::new();
    let mut non_empty = 0;
    for p in parts {
        let t = std::fs::read_to_string(p).unwrap();
        non_empty += usize::from(!t.is_empty());
        all.push_str(&t);
    }
    assert!(non_empty >= 4);
    let keys: Vec<&str> = all.lines().map(|l| l.split('\t').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), expected.len());
}

#[test]
fn progress_callback_sees_the_whole_job() {
    let tmp = tempfile::tempdir().unwrap();
    let path = write_input(tmp.path());
    let len = std::fs::metadata(&path).unwrap().len();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let runner = Runner::builder()
        .threads(2)
        .partitions(3)
        .split_size(8192)
        .clock(ManualClock::new())
        .progress_bar(true)
        .on_progress(move |p| s2.lock().unwrap().push(p.clone()))
        .build()
        .unwrap();
    runner.run(&WordCount, &TextInput::path(&path)).unwrap();
    let seen = seen.lock().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.phase, Phase::Done);
    assert_eq!(last.bytes_mapped, len);
    assert_eq!(last.bytes_total, Some(len));
    assert_eq!(last.records_mapped, 3000);
    assert_eq!(Some(last.splits_done), last.splits_total);
    assert!(last.splits_done > 1);
    assert_eq!(last.partitions_done, 3);
    assert_eq!(last.partitions_total, 3);
    // The manual clock never moved.
    assert!(seen.iter().all(|p| p.elapsed.is_zero()));
    assert!(seen.iter().any(|p| p.phase == Phase::Map));
    // Phases only move forward.
    let order = |p: Phase| match p {
        Phase::Map => 0,
        Phase::Reduce => 1,
        _ => 2,
    };
    assert!(seen
        .windows(2)
        .all(|w| order(w[0].phase) <= order(w[1].phase)));
}
