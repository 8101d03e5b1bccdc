//! Behaviour tests: spill runs carry every value (also values that encode
//! to no bytes), spill files are private to the user, and two runs of one
//! job give identical output although the hash tables are seeded per run.

mod common;

use std::io::Write;

use sysblocks_mapreduce::word_count::WordCount;
use sysblocks_mapreduce::{Emitter, Job, Runner, TaskError, TextInput, Word};

/// Counts the lines each word occurs on, as a list of `()`: the values
/// encode to zero bytes, and there is no combiner.
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

    fn reduce(&self, _key: &Vec<u8>, values: Vec<()>) -> Result<usize, TaskError> {
        Ok(values.len())
    }
}

/// Values that encode to zero bytes survive a spill: with a 1-byte budget
/// every record is spilled, and the result equals the in-memory one.
#[test]
fn zero_byte_values_survive_spilling() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    std::fs::write(&path, "x x x\nx y\n").unwrap();
    let input = TextInput::path(&path);
    let in_memory = Runner::builder()
        .threads(1)
        .build()
        .unwrap()
        .run(&Units, &input)
        .unwrap();
    assert_eq!(in_memory, vec![(b"x".to_vec(), 4), (b"y".to_vec(), 1)]);
    for threads in [1, 2] {
        let spilled = Runner::builder()
            .threads(threads)
            .memory_budget(1)
            .spill_dir(tmp.path())
            .build()
            .unwrap()
            .run(&Units, &input)
            .unwrap();
        assert_eq!(spilled, in_memory, "threads {threads}");
    }
}

/// The spill directory is 0700 and its run files 0600, whatever the umask:
/// checked on the files of a running job (from inside its reduce, when the
/// runs exist).
#[cfg(unix)]
#[test]
fn spill_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Mutex;

    /// Word count whose reducer records the modes under the spill root.
    struct Peek {
        root: std::path::PathBuf,
        seen: Mutex<Vec<(std::path::PathBuf, bool, u32)>>,
    }

    impl Job for Peek {
        type Record = [u8];
        type Key = Word;
        type Value = u64;
        type Output = u64;
        fn map(&self, line: &[u8], e: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
            WordCount.map(line, e)
        }
        fn reduce(&self, k: &Word, v: Vec<u64>) -> Result<u64, TaskError> {
            let mut seen = self.seen.lock().unwrap();
            for dir in std::fs::read_dir(&self.root).unwrap() {
                let dir = dir.unwrap().path();
                let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
                seen.push((dir.clone(), true, mode & 0o7777));
                for f in std::fs::read_dir(&dir).unwrap() {
                    let f = f.unwrap().path();
                    let mode = std::fs::metadata(&f).unwrap().permissions().mode();
                    seen.push((f, false, mode & 0o7777));
                }
            }
            WordCount.reduce(k, v)
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..200 {
        writeln!(f, "w{i} common").unwrap();
    }
    drop(f);
    let root = tmp.path().join("spill");
    std::fs::create_dir(&root).unwrap();
    // Make the parent world-readable, so that nothing is inherited from it.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let job = Peek {
        root: root.clone(),
        seen: Mutex::new(Vec::new()),
    };
    let out = Runner::builder()
        .threads(1)
        .memory_budget(1)
        .spill_dir(&root)
        .build()
        .unwrap()
        .run(&job, &TextInput::path(&path))
        .unwrap();
    assert_eq!(out.len(), 2);
    let seen = job.seen.into_inner().unwrap();
    assert!(seen.iter().any(|(_, dir, _)| !dir), "no run file seen");
    for (p, dir, mode) in &seen {
        let want = if *dir { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} has mode {mode:o}", p.display());
    }
}

/// Word count that, on the line `DAMAGE`, cuts every spill run written so
/// far to `keep(its bytes)` bytes: the reduce phase then reads damaged runs.
struct Damage {
    root: std::path::PathBuf,
    keep: fn(&[u8]) -> u64,
}

impl Job for Damage {
    type Record = [u8];
    type Key = Word;
    type Value = u64;
    type Output = u64;
    fn map(&self, line: &[u8], e: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        if line == b"DAMAGE" {
            for dir in std::fs::read_dir(&self.root)? {
                for f in std::fs::read_dir(dir?.path())? {
                    let f = f?.path();
                    let keep = (self.keep)(&std::fs::read(&f)?);
                    let file = std::fs::OpenOptions::new().write(true).open(&f)?;
                    file.set_len(keep)?;
                }
            }
        }
        WordCount.map(line, e)
    }
    fn combine(&self, k: &Word, a: &mut u64, v: u64) -> Option<u64> {
        WordCount.combine(k, a, v)
    }
    fn reduce(&self, k: &Word, v: Vec<u64>) -> Result<u64, TaskError> {
        WordCount.reduce(k, v)
    }
}

/// A spill run cut short on disk (at a frame boundary or inside a frame)
/// fails the reduce task with an `InvalidData` error: entries are never
/// dropped silently.
#[test]
fn truncated_spill_runs_fail_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..20 {
        writeln!(f, "alpha beta w{i}").unwrap();
    }
    writeln!(f, "DAMAGE").unwrap();
    drop(f);
    let root = tmp.path().join("spill");
    std::fs::create_dir(&root).unwrap();
    // Every run is one record's three frames, each a little-endian `u32`
    // length and that many bytes: cut after the first frame, inside the
    // second, and before the first.
    let cuts: [fn(&[u8]) -> u64; 3] = [
        |run| 4 + u64::from(u32::from_le_bytes(run[..4].try_into().unwrap())),
        |run| run.len() as u64 / 2,
        |_| 0,
    ];
    for keep in cuts {
        let job = Damage {
            root: root.clone(),
            keep,
        };
        let r = Runner::builder()
            .threads(1)
            .partitions(1)
            .memory_budget(1)
            .spill_dir(&root)
            .build()
            .unwrap()
            .run(&job, &TextInput::path(&path));
        match r {
            Err(sysblocks_mapreduce::JobError::ReduceFailed {
                source: TaskError::Io(e),
                ..
            }) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            std::fs::read_dir(&root).unwrap().next().is_none(),
            "spill files left behind"
        );
    }
}

/// Format of a part file line.
fn line(k: &Word, v: &u64, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    w.write_all(k.as_bytes())?;
    writeln!(w, "\t{v}")
}

/// The grouping tables are seeded afresh for every run, but the output is
/// not: two runs, in memory or to part files, with and without spilling,
/// give identical results, byte for byte.
#[test]
fn two_runs_give_identical_output() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..3000u32 {
        writeln!(f, "w{} w{} common", i % 997, i % 13).unwrap();
    }
    drop(f);
    let input = TextInput::path(&path);
    for budget in [1u64 << 30, 4096] {
        let runner = Runner::builder()
            .threads(2)
            .partitions(5)
            .split_size(4096)
            .memory_budget(budget)
            .spill_dir(tmp.path())
            .build()
            .unwrap();
        let a = runner.run(&WordCount, &input).unwrap();
        let b = runner.run(&WordCount, &input).unwrap();
        assert_eq!(a, b);
        let mut parts = Vec::new();
        for n in 0..2 {
            let dir = tmp.path().join(format!("out-{budget}-{n}"));
            let files = runner.run_to_dir(&WordCount, &input, &dir, line).unwrap();
            let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            parts.push(bytes);
        }
        assert_eq!(parts[0].len(), 5);
        assert!(parts[0] == parts[1], "part files differ, budget {budget}");
    }
}

/// User counters: summed over the tasks, counted once for a task that was
/// retried (its failed attempt's counts are dropped), in memory and when
/// spilled.
#[test]
fn counters_sum_successful_attempts() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    let mut text = String::new();
    for i in 0..20_000u32 {
        text.push_str(&common::letters(i % 3000));
        text.push_str(" the end\n");
    }
    std::fs::write(&path, &text).unwrap();
    let (lines, words, distinct) = common::expected_counts(text.as_bytes());
    for budget in [1 << 30, 64 << 10] {
        let r = Runner::builder()
            .threads(2)
            .partitions(3)
            .memory_budget(budget)
            .split_size(32 << 10)
            .build()
            .unwrap();
        let job = common::Counting::new(true);
        let (out, c) = r.run_counted(&job, &TextInput::path(&path)).unwrap();
        assert_eq!(out.len() as u64, distinct);
        assert_eq!(c["lines"], lines);
        assert_eq!(c["words"], words);
        assert_eq!(c["distinct"], distinct);
        assert!(c["mapreduce.input_records"] >= lines);
        assert!(!job.failed.lock().unwrap().is_empty());
        let out_dir = tmp.path().join(format!("out-{budget}"));
        let (_, c2) = r
            .run_to_dir_counted(
                &common::Counting::new(false),
                &TextInput::path(&path),
                &out_dir,
                line,
            )
            .unwrap();
        assert_eq!(c2.user(), c.user());
    }
}

/// A job on serde types through the `Bincode` bridge gives the same
/// output spilled (a 1-byte budget) as in memory, on the runner and on the
/// timely backend.
#[cfg(feature = "serde")]
#[test]
fn bincode_keys_and_values_survive_spilling() {
    use sysblocks_mapreduce::Bincode;

    #[derive(
        Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
    )]
    struct Key {
        first: char,
        len: usize,
    }

    /// (first letter, length) -> the words, in input order.
    struct ByShape;

    impl Job for ByShape {
        type Record = [u8];
        type Key = Bincode<Key>;
        type Value = Bincode<(String, u32)>;
        type Output = Vec<(String, u32)>;

        fn map(
            &self,
            line: &[u8],
            emit: &mut Emitter<'_, Self::Key, Self::Value>,
        ) -> Result<(), TaskError> {
            let line = std::str::from_utf8(line).map_err(TaskError::other)?;
            for (i, w) in line.split_whitespace().enumerate() {
                let key = Key {
                    first: w.chars().next().unwrap(),
                    len: w.len(),
                };
                emit.emit(Bincode(key), Bincode((w.to_owned(), i as u32)));
            }
            Ok(())
        }

        fn reduce(
            &self,
            _k: &Self::Key,
            values: Vec<Self::Value>,
        ) -> Result<Self::Output, TaskError> {
            Ok(values.into_iter().map(Bincode::into_inner).collect())
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.txt");
    let text: String = (0..3000u32)
        .map(|i| format!("{} {} ünï\n", common::letters(i % 500), common::letters(i)))
        .collect();
    std::fs::write(&path, text).unwrap();
    let input = TextInput::path(&path);
    let run = |budget: u64| {
        Runner::builder()
            .threads(2)
            .partitions(3)
            .memory_budget(budget)
            .build()
            .unwrap()
    };
    let want = run(1 << 30).run(&ByShape, &input).unwrap();
    assert!(want.len() > 10);
    assert_eq!(run(1).run(&ByShape, &input).unwrap(), want);
    #[cfg(feature = "timely")]
    {
        let got = run(1)
            .run_cluster(
                &sysblocks_mapreduce::ClusterConfig::threads(2),
                ByShape,
                &input,
            )
            .unwrap();
        assert_eq!(got.into_sorted(), want);
    }
}

/// gzip (two members) and zstd (two frames) input, by extension and by
/// setting, give the plain text's word count, on the runner and on the
/// timely backend; a damaged file fails its map task with an error.
#[cfg(all(feature = "gzip", feature = "zstd"))]
#[test]
fn compressed_input_counts_as_plain() {
    use sysblocks_mapreduce::Compression;

    let tmp = tempfile::tempdir().unwrap();
    let text: String = (0..30_000u32)
        .map(|i| format!("{} {}\n", common::letters(i % 700), common::letters(i % 13)))
        .collect();
    let (a, b) = text.as_bytes().split_at(text.len() / 3);
    let plain = tmp.path().join("plain.txt");
    std::fs::write(&plain, &text).unwrap();
    let gz = |part: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(part).unwrap();
        e.finish().unwrap()
    };
    let gzip = [gz(a), gz(b)].concat();
    let zstd = [
        zstd::encode_all(a, 1).unwrap(),
        zstd::encode_all(b, 1).unwrap(),
    ]
    .concat();
    let dir = tmp.path().join("compressed");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("in.txt.gz"), &gzip).unwrap();
    std::fs::write(dir.join("in.txt.zst"), &zstd).unwrap();
    let bare = tmp.path().join("gzip-without-extension");
    std::fs::write(&bare, &gzip).unwrap();

    let r = Runner::builder().threads(2).partitions(3).build().unwrap();
    let one = r.run(&WordCount, &TextInput::path(&plain)).unwrap();
    let two = r
        .run(&WordCount, &TextInput::new([&plain, &plain]))
        .unwrap();
    let (got, counters) = r.run_counted(&WordCount, &TextInput::path(&dir)).unwrap();
    assert_eq!(got, two);
    assert_eq!(
        counters["mapreduce.input_bytes"],
        (gzip.len() + zstd.len()) as u64,
        "progress counts compressed bytes"
    );
    let input = TextInput::path(&bare).compression(Compression::Gzip);
    assert_eq!(r.run(&WordCount, &input).unwrap(), one);
    // Read as plain text, the gzip bytes are not the same words.
    let raw = TextInput::path(dir.join("in.txt.gz")).compression(Compression::None);
    assert_ne!(r.run(&WordCount, &raw).unwrap(), one);
    #[cfg(feature = "timely")]
    {
        let c = r
            .run_cluster(
                &sysblocks_mapreduce::ClusterConfig::threads(2),
                WordCount,
                &TextInput::path(&dir),
            )
            .unwrap();
        assert_eq!(c.into_sorted(), two);
    }

    // Cut inside the second frame (a cut between frames leaves a whole
    // stream).
    let mut damaged = zstd.clone();
    damaged.truncate(zstd.len() - 9);
    std::fs::write(tmp.path().join("cut.zst"), &damaged).unwrap();
    let e = r
        .run(&WordCount, &TextInput::path(tmp.path().join("cut.zst")))
        .unwrap_err();
    assert!(
        matches!(e, sysblocks_mapreduce::JobError::MapFailed { .. }),
        "{e}"
    );
}
