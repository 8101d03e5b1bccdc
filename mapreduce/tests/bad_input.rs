//! Bad input and bad settings: typed errors or documented behaviour.

mod common;

use std::io::Write;

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{
    BuildError, Emitter, Job, JobError, Partitioner, Runner, TaskError, TextInput, Word,
};

fn runner() -> Runner {
    Runner::builder().threads(2).build().unwrap()
}

#[test]
fn missing_input_is_an_input_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.txt");
    match runner().run(&WordCount, &TextInput::path(&missing)) {
        Err(JobError::Input { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn empty_inputs_give_empty_output() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.txt");
    std::fs::File::create(&empty).unwrap();
    assert!(runner()
        .run(&WordCount, &TextInput::path(&empty))
        .unwrap()
        .is_empty());
    let dir = tmp.path().join("d");
    std::fs::create_dir(&dir).unwrap();
    assert!(runner()
        .run(&WordCount, &TextInput::path(&dir))
        .unwrap()
        .is_empty());
    assert!(runner()
        .run(&WordCount, &TextInput::new(Vec::<String>::new()))
        .unwrap()
        .is_empty());
    assert!(runner()
        .run_iter(&WordCount2, Vec::<Vec<u8>>::new())
        .unwrap()
        .is_empty());
}

/// Word count over byte-string records.
struct WordCount2;

impl Job for WordCount2 {
    type Record = Vec<u8>;
    type Key = Word;
    type Value = u64;
    type Output = u64;
    fn map(&self, r: &Vec<u8>, e: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        WordCount.map(r, e)
    }
    fn combine(&self, k: &Word, a: &mut u64, v: u64) -> Option<u64> {
        WordCount.combine(k, a, v)
    }
    fn reduce(&self, k: &Word, v: Vec<u64>) -> Result<u64, TaskError> {
        WordCount.reduce(k, v)
    }
}

/// Invalid UTF-8 is data: bytes outside ASCII letters separate words; no
/// line ending at the end of a file, CRLF and very long lines are fine; a
/// directory is read recursively.
#[test]
fn bytes_not_text() {
    let tmp = tempfile::tempdir().unwrap();
    let sub = tmp.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut f = std::fs::File::create(sub.join("a.bin")).unwrap();
    f.write_all(b"caf\xc3\xa9 \xff\xfeOK\r\nok\x00ok").unwrap();
    let long = vec![b'z'; 3 << 20];
    std::fs::write(tmp.path().join("b.txt"), &long).unwrap();
    let runner = Runner::builder()
        .threads(2)
        .split_size(1000)
        .build()
        .unwrap();
    let got = runner
        .run(&WordCount, &TextInput::path(tmp.path()))
        .unwrap();
    assert_eq!(
        got,
        vec![
            (Word::from("caf"), 1),
            (Word::from("ok"), 3),
            (Word::from(long), 1)
        ]
    );
}

#[test]
fn zero_settings_are_build_errors() {
    let zero = |r: Result<Runner, BuildError>, setting| {
        assert_eq!(r.unwrap_err(), BuildError::Zero { setting });
    };
    zero(Runner::builder().partitions(0).build(), "partitions");
    zero(Runner::builder().threads(0).build(), "threads");
    zero(Runner::builder().split_size(0).build(), "split_size");
    zero(Runner::builder().memory_budget(0).build(), "memory_budget");
    zero(
        Runner::builder().records_per_split(0).build(),
        "records_per_split",
    );
    assert!(Runner::builder().build().unwrap().threads() >= 1);
}

/// A partitioner that breaks its contract fails the map task with a typed
/// error instead of panicking.
struct Broken;

impl Partitioner<Word> for Broken {
    fn partition(&self, _k: &Word, _h: u64, partitions: usize) -> usize {
        partitions
    }
}

#[test]
fn out_of_range_partition_is_a_task_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("x.txt");
    std::fs::write(&p, "a b c\n").unwrap();
    let runner = Runner::builder()
        .threads(1)
        .partitions(2)
        .partitioner(Broken)
        .build()
        .unwrap();
    match runner.run(&WordCount, &TextInput::path(&p)) {
        Err(JobError::MapFailed {
            source:
                TaskError::BadPartition {
                    partition: 2,
                    partitions: 2,
                },
            ..
        }) => {}
        other => panic!("unexpected {other:?}"),
    }
}
