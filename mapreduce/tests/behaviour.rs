//! Behaviour tests: spill runs carry every value (also values that encode
//! to no bytes), spill files are private to the user, and two runs of one
//! job give identical output although the hash tables are seeded per run.

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
