//! Bad input and bad settings: every case ends in a typed error or in the
//! behaviour the docs state. Each runs in its own child process under an
//! address-space limit and a timeout (`sysblocks_testkit::run_isolated`),
//! so a panic, an abort on a runaway allocation or a hang fails that case.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{
    BuildError, Clock, Codec, DecodeError, Emitter, Job, JobError, ManualClock, Partitioner,
    RangePartitioner, Runner, RunnerBuilder, TaskError, TextInput, Word,
};
use sysblocks_testkit::{run_isolated, Case, Limits};

// ---- helpers ---------------------------------------------------------------

fn runner() -> Runner {
    Runner::builder().threads(2).build().unwrap()
}

/// A temporary directory with `in.txt` holding `text`.
fn text_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    std::fs::write(&path, text).unwrap();
    (tmp, path)
}

/// Word counts of `text` by the sequential model.
fn model(text: &str) -> Vec<(Vec<u8>, u64)> {
    common::model_counts(text.as_bytes()).into_iter().collect()
}

/// A text of a few hundred words over a small vocabulary.
fn sample_text() -> String {
    let mut s = String::new();
    for i in 0..200u32 {
        s.push_str(&format!("w{} common {}\n", i % 37, common::letters(i % 11)));
    }
    s
}

/// Runs word count with `b` over `text`, asserting the model's answer.
fn counts_right(b: RunnerBuilder, text: &str) {
    let (tmp, path) = text_file(text);
    let runner = b.spill_dir(tmp.path()).build().unwrap();
    let got: Vec<(Vec<u8>, u64)> = runner
        .run(&WordCount, &TextInput::path(&path))
        .unwrap()
        .into_iter()
        .map(|(w, n)| (w.into_vec(), n))
        .collect();
    assert_eq!(got, model(text));
    assert_eq!(
        common::leftovers(tmp.path()),
        vec![path],
        "spill left behind"
    );
}

fn build_err(b: RunnerBuilder) -> BuildError {
    b.build().unwrap_err()
}

fn invalid(b: RunnerBuilder, setting: &str) {
    match build_err(b) {
        BuildError::Invalid { setting: s, .. } => assert_eq!(s, setting),
        other => panic!("unexpected {other:?}"),
    }
}

fn zero(b: RunnerBuilder, setting: &str) {
    assert_eq!(
        build_err(b),
        BuildError::Zero {
            setting: leak(setting)
        }
    );
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
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

/// Occurrences of each word as a list of `()`: values of zero bytes, no
/// combiner.
struct Units;

impl Job for Units {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = ();
    type Output = usize;
    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, ()>) -> Result<(), TaskError> {
        for w in line.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            emit.emit(w.to_vec(), ());
        }
        Ok(())
    }
    fn reduce(&self, _k: &Vec<u8>, values: Vec<()>) -> Result<usize, TaskError> {
        Ok(values.len())
    }
}

/// A map that always fails, counting its attempts.
struct AlwaysFails(AtomicU32);

impl Job for AlwaysFails {
    type Record = [u8];
    type Key = u32;
    type Value = u32;
    type Output = u32;
    fn map(&self, _r: &[u8], _e: &mut Emitter<'_, u32, u32>) -> Result<(), TaskError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(TaskError::msg("always"))
    }
    fn reduce(&self, _k: &u32, _v: Vec<u32>) -> Result<u32, TaskError> {
        Ok(0)
    }
}

/// Runs [`AlwaysFails`] with `max_retries(retries)`: the job fails after
/// `retries + 1` attempts.
fn fails_after(retries: u32) {
    let (_tmp, path) = text_file("one line\n");
    let job = AlwaysFails(AtomicU32::new(0));
    let runner = Runner::builder()
        .threads(1)
        .max_retries(retries)
        .build()
        .unwrap();
    match runner.run(&job, &TextInput::path(&path)) {
        Err(JobError::MapFailed { attempts, .. }) => assert_eq!(attempts, retries + 1),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(job.0.load(Ordering::SeqCst), retries + 1);
}

/// A partitioner that breaks its contract.
struct Broken;

impl Partitioner<Word> for Broken {
    fn partition(&self, _k: &Word, _h: u64, partitions: usize) -> usize {
        partitions
    }
}

/// A key whose codec cannot read back what it wrote.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct Unreadable(u32);

impl Codec for Unreadable {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
    fn decode(_input: &mut &[u8]) -> Result<Self, DecodeError> {
        Err(DecodeError::new("unreadable"))
    }
}

struct UnreadableJob;

impl Job for UnreadableJob {
    type Record = u32;
    type Key = Unreadable;
    type Value = u32;
    type Output = u32;
    fn map(&self, r: &u32, e: &mut Emitter<'_, Unreadable, u32>) -> Result<(), TaskError> {
        e.emit(Unreadable(*r % 7), 1);
        Ok(())
    }
    fn reduce(&self, _k: &Unreadable, v: Vec<u32>) -> Result<u32, TaskError> {
        Ok(v.len() as u32)
    }
}

/// A clock that steps back by a second at every reading, from `start`.
#[derive(Debug)]
struct Backwards(AtomicU64);

impl Clock for Backwards {
    fn now_nanos(&self) -> u64 {
        self.0.fetch_sub(1_000_000_000, Ordering::Relaxed)
    }
}

/// A clock at 0 for its first reading (the job's start), then at the end
/// of time.
#[derive(Debug)]
struct JumpsToEnd(AtomicU64);

impl Clock for JumpsToEnd {
    fn now_nanos(&self) -> u64 {
        if self.0.fetch_add(1, Ordering::Relaxed) == 0 {
            0
        } else {
            u64::MAX
        }
    }
}

/// Word count over [`sample_text`] with `clock`, every progress snapshot
/// rendered: the elapsed time never goes backwards past zero and nothing
/// panics.
fn survives_clock(clock: impl Clock + 'static) {
    let text = sample_text();
    let seen = Arc::new(AtomicU32::new(0));
    let s2 = seen.clone();
    let b = Runner::builder()
        .threads(2)
        .split_size(64)
        .clock(clock)
        .on_progress(move |p| {
            let _ = (p.rate(), p.eta(), p.render());
            s2.fetch_add(1, Ordering::Relaxed);
        });
    counts_right(b, &text);
    assert!(seen.load(Ordering::Relaxed) >= 2);
}

/// An iterator whose size hint claims far more records than it has.
struct Lying(std::vec::IntoIter<Vec<u8>>);

impl Iterator for Lying {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

fn records(text: &str) -> Vec<Vec<u8>> {
    text.lines().map(|l| l.as_bytes().to_vec()).collect()
}

fn iter_counts_right(runner: &Runner, text: &str) {
    let got: Vec<(Vec<u8>, u64)> = runner
        .run_iter(&WordCount2, records(text))
        .unwrap()
        .into_iter()
        .map(|(w, n)| (w.into_vec(), n))
        .collect();
    assert_eq!(got, model(text));
}

fn fmt(k: &Word, v: &u64, w: &mut dyn Write) -> std::io::Result<()> {
    w.write_all(k.as_bytes())?;
    writeln!(w, "\t{v}")
}

fn expect_output_exists(dir: &Path) {
    let (_tmp, path) = text_file("a b\n");
    match runner().run_to_dir(&WordCount, &TextInput::path(&path), dir, fmt) {
        Err(JobError::OutputExists { path }) => assert_eq!(path, dir),
        other => panic!("unexpected {other:?}"),
    }
}

// ---- the cases -------------------------------------------------------------

const CASES: &[Case] = &[
    // threads
    Case {
        name: "threads_0",
        run: || zero(Runner::builder().threads(0), "threads"),
    },
    Case {
        name: "threads_1",
        run: || counts_right(Runner::builder().threads(1).split_size(100), &sample_text()),
    },
    Case {
        name: "threads_max_text",
        run: || {
            let b = Runner::builder().threads(Runner::MAX_THREADS).partitions(3);
            counts_right(b.split_size(64), &sample_text());
        },
    },
    Case {
        name: "threads_max_iter",
        run: || {
            // Map workers for an iterator are not capped by a split count:
            // all of them start (or as many as the OS grants).
            let runner = Runner::builder()
                .threads(Runner::MAX_THREADS)
                .records_per_split(3)
                .build()
                .unwrap();
            assert_eq!(runner.partitions(), 4 * Runner::MAX_THREADS);
            iter_counts_right(&runner, &sample_text());
        },
    },
    Case {
        name: "threads_max_plus_1",
        run: || {
            invalid(
                Runner::builder().threads(Runner::MAX_THREADS + 1),
                "threads",
            )
        },
    },
    Case {
        name: "threads_2_pow_63",
        run: || invalid(Runner::builder().threads(1 << 63), "threads"),
    },
    Case {
        name: "threads_usize_max",
        run: || invalid(Runner::builder().threads(usize::MAX), "threads"),
    },
    Case {
        name: "threads_default_in_range",
        run: || {
            let t = Runner::builder().build().unwrap().threads();
            assert!((1..=Runner::MAX_THREADS).contains(&t));
        },
    },
    // partitions
    Case {
        name: "partitions_0",
        run: || zero(Runner::builder().partitions(0), "partitions"),
    },
    Case {
        name: "partitions_1",
        run: || counts_right(Runner::builder().threads(2).partitions(1), &sample_text()),
    },
    Case {
        name: "partitions_max_in_memory",
        run: || {
            let b = Runner::builder()
                .threads(2)
                .partitions(Runner::MAX_PARTITIONS);
            counts_right(b, "a b\nc a\n");
        },
    },
    Case {
        name: "partitions_max_spilling",
        run: || {
            // Every record spills a run: runs index only their partitions.
            let b = Runner::builder()
                .threads(2)
                .partitions(Runner::MAX_PARTITIONS)
                .memory_budget(1)
                .split_size(64);
            counts_right(b, &sample_text());
        },
    },
    Case {
        name: "partitions_max_plus_1",
        run: || {
            invalid(
                Runner::builder().partitions(Runner::MAX_PARTITIONS + 1),
                "partitions",
            )
        },
    },
    Case {
        name: "partitions_u32_max",
        run: || {
            invalid(
                Runner::builder().partitions(u32::MAX as usize),
                "partitions",
            )
        },
    },
    Case {
        name: "partitions_usize_max",
        run: || invalid(Runner::builder().partitions(usize::MAX), "partitions"),
    },
    // memory budget
    Case {
        name: "memory_budget_0",
        run: || zero(Runner::builder().memory_budget(0), "memory_budget"),
    },
    Case {
        name: "memory_budget_1",
        run: || {
            let b = Runner::builder().threads(2).memory_budget(1).split_size(64);
            counts_right(b, &sample_text());
        },
    },
    Case {
        name: "memory_budget_1_zero_byte_values",
        run: || {
            let (tmp, path) = text_file("x x x\nx y\n");
            let input = TextInput::path(&path);
            let in_memory = Runner::builder().threads(1).build().unwrap();
            let spilling = Runner::builder()
                .threads(1)
                .memory_budget(1)
                .spill_dir(tmp.path())
                .build()
                .unwrap();
            let want = vec![(b"x".to_vec(), 4), (b"y".to_vec(), 1)];
            assert_eq!(in_memory.run(&Units, &input).unwrap(), want);
            assert_eq!(spilling.run(&Units, &input).unwrap(), want);
        },
    },
    Case {
        name: "memory_budget_max",
        run: || {
            let spilled = Arc::new(AtomicU64::new(0));
            let s2 = spilled.clone();
            let b = Runner::builder()
                .threads(2)
                .memory_budget(u64::MAX)
                .on_progress(move |p| {
                    s2.fetch_max(p.spilled_bytes, Ordering::Relaxed);
                });
            counts_right(b, &sample_text());
            assert_eq!(spilled.load(Ordering::Relaxed), 0);
        },
    },
    // split size
    Case {
        name: "split_size_0",
        run: || zero(Runner::builder().split_size(0), "split_size"),
    },
    Case {
        name: "split_size_1",
        run: || counts_right(Runner::builder().threads(2).split_size(1), &sample_text()),
    },
    Case {
        name: "split_size_max",
        run: || {
            counts_right(
                Runner::builder().threads(2).split_size(u64::MAX),
                &sample_text(),
            )
        },
    },
    // records per split
    Case {
        name: "records_per_split_0",
        run: || zero(Runner::builder().records_per_split(0), "records_per_split"),
    },
    Case {
        name: "records_per_split_1",
        run: || {
            let runner = Runner::builder()
                .threads(2)
                .records_per_split(1)
                .build()
                .unwrap();
            iter_counts_right(&runner, &sample_text());
        },
    },
    Case {
        name: "records_per_split_max_lying_size_hint",
        run: || {
            // One split takes every record; nothing is reserved for the
            // records the size hint claims.
            let text = sample_text();
            let runner = Runner::builder()
                .threads(2)
                .records_per_split(usize::MAX)
                .build()
                .unwrap();
            let got: Vec<(Vec<u8>, u64)> = runner
                .run_iter(&WordCount2, Lying(records(&text).into_iter()))
                .unwrap()
                .into_iter()
                .map(|(w, n)| (w.into_vec(), n))
                .collect();
            assert_eq!(got, model(&text));
        },
    },
    // retries
    Case {
        name: "max_retries_0",
        run: || fails_after(0),
    },
    Case {
        name: "max_retries_max",
        run: || fails_after(Runner::MAX_RETRIES),
    },
    Case {
        name: "max_retries_max_plus_1",
        run: || {
            invalid(
                Runner::builder().max_retries(Runner::MAX_RETRIES + 1),
                "max_retries",
            )
        },
    },
    Case {
        name: "max_retries_u32_max",
        run: || invalid(Runner::builder().max_retries(u32::MAX), "max_retries"),
    },
    // spill quota and directory
    Case {
        name: "spill_quota_0",
        run: || {
            let (tmp, path) = text_file(&sample_text());
            let runner = Runner::builder()
                .threads(1)
                .memory_budget(1)
                .spill_quota(0)
                .spill_dir(tmp.path())
                .build()
                .unwrap();
            match runner.run(&WordCount, &TextInput::path(&path)) {
                Err(JobError::MapFailed {
                    source: TaskError::Io(e),
                    ..
                }) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull),
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(common::leftovers(tmp.path()), vec![path]);
        },
    },
    Case {
        name: "spill_quota_max",
        run: || {
            let b = Runner::builder()
                .threads(2)
                .memory_budget(1)
                .spill_quota(u64::MAX);
            counts_right(b, &sample_text());
        },
    },
    Case {
        name: "spill_dir_missing",
        run: || {
            let (tmp, path) = text_file("a\n");
            let runner = Runner::builder()
                .spill_dir(tmp.path().join("nope"))
                .build()
                .unwrap();
            match runner.run(&WordCount, &TextInput::path(&path)) {
                Err(JobError::Spill { source }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
                }
                other => panic!("unexpected {other:?}"),
            }
        },
    },
    Case {
        name: "spill_dir_is_a_file",
        run: || {
            let (_tmp, path) = text_file("a\n");
            let runner = Runner::builder().spill_dir(&path).build().unwrap();
            assert!(matches!(
                runner.run(&WordCount, &TextInput::path(&path)),
                Err(JobError::Spill { .. })
            ));
        },
    },
    // clocks
    Case {
        name: "clock_at_u64_max",
        run: || survives_clock(ManualClock::starting_at(Duration::from_nanos(u64::MAX))),
    },
    Case {
        name: "clock_at_duration_max",
        run: || survives_clock(ManualClock::starting_at(Duration::MAX)),
    },
    Case {
        name: "clock_stepping_backwards",
        run: || survives_clock(Backwards(AtomicU64::new(50_000_000_000))),
    },
    Case {
        name: "clock_jumping_to_the_end",
        run: || survives_clock(JumpsToEnd(AtomicU64::new(0))),
    },
    // inputs
    Case {
        name: "input_missing",
        run: || {
            let tmp = tempfile::tempdir().unwrap();
            let missing = tmp.path().join("nope.txt");
            match runner().run(&WordCount, &TextInput::path(&missing)) {
                Err(JobError::Input { path, source }) => {
                    assert_eq!(path, missing);
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
                }
                other => panic!("unexpected {other:?}"),
            }
        },
    },
    Case {
        name: "input_missing_among_others",
        run: || {
            let (tmp, path) = text_file("a b\n");
            let missing = tmp.path().join("nope.txt");
            let input = TextInput::new([path, missing.clone()]);
            match runner().run(&WordCount, &input) {
                Err(JobError::Input { path, .. }) => assert_eq!(path, missing),
                other => panic!("unexpected {other:?}"),
            }
        },
    },
    Case {
        name: "input_empty",
        run: || {
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
        },
    },
    Case {
        name: "input_bytes_not_text",
        run: || {
            // Invalid UTF-8 is data: bytes outside ASCII letters separate
            // words; no line ending at the end of a file, CRLF and very long
            // lines are fine; a directory is read recursively.
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
        },
    },
    Case {
        name: "input_only_newlines",
        run: || {
            let (_tmp, path) = text_file(&"\n".repeat(10_000));
            let runner = Runner::builder().threads(2).split_size(1).build().unwrap();
            assert!(runner
                .run(&WordCount, &TextInput::path(&path))
                .unwrap()
                .is_empty());
        },
    },
    // output directory
    Case {
        name: "output_dir_is_a_file",
        run: || {
            let (_tmp, path) = text_file("a\n");
            expect_output_exists(&path);
        },
    },
    Case {
        name: "output_dir_exists",
        run: || {
            let tmp = tempfile::tempdir().unwrap();
            expect_output_exists(tmp.path());
        },
    },
    Case {
        name: "output_dir_parent_missing",
        run: || {
            let (tmp, path) = text_file("a b\n");
            let dir = tmp.path().join("no/such/out");
            match runner().run_to_dir(&WordCount, &TextInput::path(&path), &dir, fmt) {
                Err(JobError::Output { source, .. }) => {
                    assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
                }
                other => panic!("unexpected {other:?}"),
            }
        },
    },
    Case {
        name: "output_format_fails",
        run: || {
            let (tmp, path) = text_file("a b\n");
            let dir = tmp.path().join("out");
            let r = runner().run_to_dir(&WordCount, &TextInput::path(&path), &dir, |_, _, _| {
                Err(std::io::Error::other("formatter refuses"))
            });
            assert!(matches!(
                r,
                Err(JobError::ReduceFailed {
                    source: TaskError::Io(_),
                    ..
                })
            ));
            assert!(!dir.exists(), "partial output published");
            assert_eq!(common::leftovers(tmp.path()), vec![path]);
        },
    },
    // partitioners and codecs
    Case {
        name: "partitioner_out_of_range",
        run: || {
            // A partitioner that breaks its contract fails the map task with
            // a typed error instead of panicking.
            let (_tmp, p) = text_file("a b c\n");
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
        },
    },
    Case {
        name: "range_bounds_beyond_partitions",
        run: || {
            // Three bounds need four partitions; with two, keys past the
            // second bound get a typed error.
            let bounds = ["b", "c", "d"].map(Word::from).to_vec();
            let p = RangePartitioner::from_bounds(bounds).unwrap();
            let (_tmp, path) = text_file("a e\n");
            let runner = Runner::builder()
                .threads(1)
                .partitions(2)
                .partitioner(p)
                .build()
                .unwrap();
            assert!(matches!(
                runner.run(&WordCount, &TextInput::path(&path)),
                Err(JobError::MapFailed {
                    source: TaskError::BadPartition { partitions: 2, .. },
                    ..
                })
            ));
        },
    },
    Case {
        name: "range_from_sample_partitions_0_1_max",
        run: || {
            assert_eq!(
                RangePartitioner::<u32>::from_sample(vec![1, 2], 0).unwrap_err(),
                BuildError::Zero {
                    setting: "partitions"
                }
            );
            assert!(RangePartitioner::from_sample(vec![3u32, 1], 1)
                .unwrap()
                .bounds()
                .is_empty());
            let p = RangePartitioner::from_sample((0..10u32).collect(), Runner::MAX_PARTITIONS)
                .unwrap();
            assert_eq!(p.bounds(), (0..10u32).collect::<Vec<_>>());
            for n in [Runner::MAX_PARTITIONS + 1, usize::MAX] {
                assert!(matches!(
                    RangePartitioner::from_sample(vec![1u32], n),
                    Err(BuildError::Invalid { .. })
                ));
            }
        },
    },
    Case {
        name: "range_from_sample_zero_sized_keys",
        run: || {
            // A sample of 2^62 zero-sized keys: no overflow in the quantiles.
            let sample = vec![(); 1 << 62];
            let p = RangePartitioner::from_sample(sample, 8).unwrap();
            assert_eq!(p.bounds(), &[()]);
        },
    },
    Case {
        name: "range_from_bounds_too_many",
        run: || {
            let bounds: Vec<u32> = (0..Runner::MAX_PARTITIONS as u32).collect();
            assert!(matches!(
                RangePartitioner::from_bounds(bounds),
                Err(BuildError::Invalid { .. })
            ));
            let bounds: Vec<u32> = (0..Runner::MAX_PARTITIONS as u32 - 1).collect();
            assert!(RangePartitioner::from_bounds(bounds).is_ok());
        },
    },
    Case {
        name: "codec_cannot_read_back",
        run: || {
            // A key codec that cannot decode what it encoded: spilled runs
            // fail the reduce task with a typed error.
            let runner = Runner::builder()
                .threads(2)
                .memory_budget(1)
                .records_per_split(5)
                .build()
                .unwrap();
            match runner.run_iter(&UnreadableJob, 0..100u32) {
                Err(JobError::ReduceFailed {
                    source: TaskError::Io(e),
                    ..
                }) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData),
                other => panic!("unexpected {other:?}"),
            }
        },
    },
];

/// Cases that do much I/O (65,536 part files, each synced): a longer
/// timeout, on a busy machine.
const SLOW_CASES: &[Case] = &[Case {
    name: "partitions_max_to_dir",
    run: || {
        let (tmp, path) = text_file("a b\nc a\n");
        let dir = tmp.path().join("out");
        let files = Runner::builder()
            .threads(2)
            .partitions(Runner::MAX_PARTITIONS)
            .build()
            .unwrap()
            .run_to_dir(&WordCount, &TextInput::path(&path), &dir, fmt)
            .unwrap();
        assert_eq!(files.len(), Runner::MAX_PARTITIONS);
        let mut lines: Vec<String> = files
            .iter()
            .flat_map(|f| {
                let s = std::fs::read_to_string(f).unwrap();
                s.lines().map(str::to_string).collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        assert_eq!(lines, ["a\t2", "b\t1", "c\t1"]);
    },
}];

#[test]
fn bad_input_cases() {
    run_isolated("bad_input_cases", CASES, Limits::default());
}

/// Under a 1 GiB address-space limit the OS refuses most of 1,024 thread
/// stacks (2 MiB each): the job runs on the threads it got.
const REFUSED_THREADS: &[Case] = &[Case {
    name: "threads_max_most_refused",
    run: || {
        let runner = Runner::builder()
            .threads(Runner::MAX_THREADS)
            .records_per_split(2)
            .build()
            .unwrap();
        iter_counts_right(&runner, &sample_text());
    },
}];

#[test]
fn bad_input_threads_refused() {
    run_isolated(
        "bad_input_threads_refused",
        REFUSED_THREADS,
        Limits {
            address_space: 1 << 30,
            ..Limits::default()
        },
    );
}

#[test]
fn bad_input_slow_cases() {
    run_isolated(
        "bad_input_slow_cases",
        SLOW_CASES,
        Limits {
            timeout: Duration::from_secs(180),
            ..Limits::default()
        },
    );
}
