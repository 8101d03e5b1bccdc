//! Fault tests: retried map tasks, map tasks that always fail, panicking
//! reducers, a full spill disk; temporary files are removed every time.

mod common;

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{
    Emitter, Job, JobError, Phase, RangePartitioner, Runner, TaskError, TextInput, Word,
};

/// A small text file of numbered lines, with `marker` on line 500.
fn input(dir: &Path, marker: &str) -> PathBuf {
    let path = dir.join("in.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..1000 {
        if i == 500 {
            writeln!(f, "{marker}").unwrap();
        } else {
            writeln!(f, "alpha beta x{} gamma", common::letters(i)).unwrap();
        }
    }
    path
}

/// Word count that fails (or panics) on the line "fail" while `remaining`
/// is positive, decrementing it; `reduce` panics on `boom`.
struct Flaky {
    remaining: AtomicU32,
    attempts: AtomicU32,
    panic: bool,
}

impl Flaky {
    fn new(failures: u32, panic: bool) -> Self {
        Self {
            remaining: AtomicU32::new(failures),
            attempts: AtomicU32::new(0),
            panic,
        }
    }
}

impl Job for Flaky {
    type Record = [u8];
    type Key = Word;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        if line == b"fail" {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let left = self.remaining.load(Ordering::SeqCst);
            if left > 0 {
                self.remaining.store(left - 1, Ordering::SeqCst);
                if self.panic {
                    panic!("map blew up");
                }
                return Err(TaskError::msg("transient"));
            }
        }
        WordCount.map(line, emit)
    }

    fn combine(&self, k: &Word, acc: &mut u64, v: u64) -> Option<u64> {
        WordCount.combine(k, acc, v)
    }

    fn reduce(&self, key: &Word, values: Vec<u64>) -> Result<u64, TaskError> {
        if key.as_bytes() == b"boom" {
            panic!("reducer blew up on boom");
        }
        Ok(values.iter().sum())
    }
}

fn runner(spill: &Path) -> Runner {
    Runner::builder()
        .threads(2)
        .partitions(3)
        .split_size(4096)
        .memory_budget(8_000)
        .spill_dir(spill)
        .build()
        .unwrap()
}

#[test]
fn map_fails_twice_then_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let path = input(tmp.path(), "fail");
    for panic in [false, true] {
        let job = Flaky::new(2, panic);
        let got = runner(spill.path())
            .run(&job, &TextInput::path(&path))
            .unwrap();
        assert_eq!(job.attempts.load(Ordering::SeqCst), 3);
        let expected = runner(spill.path())
            .run(&WordCount, &TextInput::path(&path))
            .unwrap();
        // The failed attempts left nothing behind: counts are exact.
        assert_eq!(got, expected);
        assert!(common::leftovers(spill.path()).is_empty());
    }
}

#[test]
fn map_that_always_fails_names_its_split() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let path = input(tmp.path(), "fail");
    let text = std::fs::read(&path).unwrap();
    let at = text.windows(5).position(|w| w == b"fail\n").unwrap() as u64;
    let job = Flaky::new(u32::MAX, false);
    let err = runner(spill.path())
        .run(&job, &TextInput::path(&path))
        .unwrap_err();
    match &err {
        JobError::MapFailed {
            split,
            attempts,
            source,
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(source.to_string(), "transient");
            let (file, range) = split.rsplit_once(':').unwrap();
            assert_eq!(file, path.display().to_string());
            let (a, b) = range.split_once('-').unwrap();
            let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
            assert!(a <= at && at < b, "{split} should hold offset {at}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("failed after 3 attempts"));
    assert_eq!(job.attempts.load(Ordering::SeqCst), 3);
    assert!(common::leftovers(spill.path()).is_empty());
}

#[test]
fn panicking_reducer_names_its_partition() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let path = input(tmp.path(), "boom");
    // Range partitioning puts "boom" in partition 1 of 3.
    let partitioner =
        RangePartitioner::from_bounds(vec![Word::from("b"), Word::from("c")]).unwrap();
    let runner = Runner::builder()
        .threads(2)
        .partitions(3)
        .split_size(4096)
        .memory_budget(8_000)
        .spill_dir(spill.path())
        .partitioner(partitioner)
        .build()
        .unwrap();
    let out = tmp.path().join("out");
    let err = runner
        .run_to_dir(
            &Flaky::new(0, false),
            &TextInput::path(&path),
            &out,
            |k, v, w| {
                w.write_all(k)?;
                writeln!(w, "\t{v}")
            },
        )
        .unwrap_err();
    match &err {
        JobError::ReduceFailed {
            partition,
            attempts,
            source: TaskError::Panicked(msg),
        } => {
            assert_eq!(*partition, 1);
            assert_eq!(*attempts, 3);
            assert!(msg.contains("boom"));
        }
        other => panic!("unexpected {other:?}"),
    }
    // No partial output: neither the directory nor its staging sibling.
    assert!(!out.exists());
    let left: Vec<_> = common::leftovers(tmp.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap() != "in.txt")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(common::leftovers(spill.path()).is_empty());
}

#[test]
fn full_spill_disk_fails_the_job_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let path = input(tmp.path(), "gamma");
    let runner = Runner::builder()
        .threads(2)
        .split_size(4096)
        .memory_budget(2_000)
        .spill_quota(3_000)
        .spill_dir(spill.path())
        .build()
        .unwrap();
    let err = runner.run(&WordCount, &TextInput::path(&path)).unwrap_err();
    match &err {
        JobError::MapFailed {
            source: TaskError::Io(e),
            ..
        } => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull),
        other => panic!("unexpected {other:?}"),
    }
    assert!(common::leftovers(spill.path()).is_empty());
}

#[test]
fn panic_outside_tasks_still_removes_spill_files() {
    let tmp = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let path = input(tmp.path(), "gamma");
    let runner = Runner::builder()
        .threads(2)
        .split_size(4096)
        .memory_budget(2_000)
        .spill_dir(spill.path())
        .on_progress(|p| {
            if p.phase == Phase::Done {
                assert!(p.spilled_bytes > 0);
                panic!("progress callback panics after spilling");
            }
        })
        .build()
        .unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| {
        runner.run(&WordCount, &TextInput::path(&path))
    }));
    assert!(r.is_err());
    assert!(common::leftovers(spill.path()).is_empty());
}
