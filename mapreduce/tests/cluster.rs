//! The timely backend: the same jobs give the single-process runner's
//! output byte for byte, on in-process workers and on real processes on
//! 127.0.0.1; bad flags, unreachable and killed peers give typed errors.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sysblocks_mapreduce::cluster::{launch_local, LocalLaunch};
use sysblocks_mapreduce::word_count::{for_each_word, WordCount};
use sysblocks_mapreduce::{
    ClusterConfig, ClusterError, Emitter, Job, JobError, RangePartitioner, Runner, TaskError,
    TextInput, Word,
};

/// word -> indices of the files that contain it (the inverted_index example).
struct InvertedIndex;

impl Job for InvertedIndex {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = u32;
    type Output = Vec<u32>;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, u32>) -> Result<(), TaskError> {
        let file = emit.origin().file_index() as u32;
        for_each_word(line, |w| emit.emit_ref(w, file));
        Ok(())
    }

    fn combine(&self, _word: &Vec<u8>, acc: &mut u32, file: u32) -> Option<u32> {
        (*acc != file).then_some(file)
    }

    fn reduce(&self, _word: &Vec<u8>, mut files: Vec<u32>) -> Result<Vec<u32>, TaskError> {
        files.dedup();
        Ok(files)
    }
}

/// line -> occurrences (the sort example).
struct Sort;

impl Job for Sort {
    type Record = [u8];
    type Key = Vec<u8>;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Vec<u8>, u64>) -> Result<(), TaskError> {
        emit.emit_ref(line, 1);
        Ok(())
    }

    fn combine(&self, _line: &Vec<u8>, acc: &mut u64, n: u64) -> Option<u64> {
        *acc += n;
        None
    }

    fn reduce(&self, _line: &Vec<u8>, counts: Vec<u64>) -> Result<u64, TaskError> {
        Ok(counts.iter().sum())
    }
}

/// Three files of skewed words, about 600 KB in all.
fn corpus(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.join("in");
    std::fs::create_dir(&dir).unwrap();
    let mut x = 12345u64;
    (0..3)
        .map(|f| {
            let path = dir.join(format!("in-{f}.txt"));
            let mut text = String::new();
            for line in 0..8000 {
                for _ in 0..(line % 7 + 1) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let r = (x % 1000) as u32;
                    text.push_str(&common::letters(r * r / 997));
                    text.push(' ');
                }
                text.push('\n');
            }
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

fn part_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn count_line(w: &Word, n: &u64, out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(w.as_bytes())?;
    writeln!(out, "\t{n}")
}

fn runner(budget: u64) -> Runner {
    Runner::builder()
        .threads(2)
        .partitions(5)
        .split_size(64 << 10)
        .memory_budget(budget)
        .build()
        .unwrap()
}

#[test]
fn word_count_parts_equal_the_runner_s() {
    for budget in [1 << 30, 64 << 10] {
        let dir = tempfile::tempdir().unwrap();
        let input = TextInput::new(corpus(dir.path()));
        let r = runner(budget);
        r.run_to_dir(&WordCount, &input, &dir.path().join("one"), count_line)
            .unwrap();
        let (parts, counters) = r
            .run_cluster_to_dir(
                &ClusterConfig::threads(3),
                WordCount,
                &input,
                &dir.path().join("three"),
                count_line,
            )
            .unwrap();
        assert_eq!(parts.len(), 5);
        assert!(part_files(&dir.path().join("one")) == part_files(&dir.path().join("three")));
        let total: u64 = input
            .files()
            .unwrap()
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum();
        assert_eq!(counters["mapreduce.input_bytes"], total);
        assert!(counters["mapreduce.exchange_bytes"] > 0);
        let mem = r
            .run_cluster(&ClusterConfig::threads(2), WordCount, &input)
            .unwrap();
        assert_eq!(mem.into_sorted(), r.run(&WordCount, &input).unwrap());
    }
}

#[test]
fn inverted_index_equals_the_runner_s() {
    let dir = tempfile::tempdir().unwrap();
    let input = TextInput::new(corpus(dir.path()));
    for budget in [1 << 30, 64 << 10] {
        let r = runner(budget);
        let want = r.run(&InvertedIndex, &input).unwrap();
        let got = r
            .run_cluster(&ClusterConfig::threads(3), InvertedIndex, &input)
            .unwrap();
        assert_eq!(got.into_sorted(), want);
    }
}

#[test]
fn sort_parts_equal_the_runner_s() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let sample: Vec<Vec<u8>> = std::fs::read(&files[0])
        .unwrap()
        .split(|&b| b == b'\n')
        .step_by(97)
        .map(<[u8]>::to_vec)
        .collect();
    let input = TextInput::new(files);
    let r = Runner::builder()
        .partitions(4)
        .split_size(64 << 10)
        .partitioner(RangePartitioner::from_sample(sample, 4).unwrap())
        .build()
        .unwrap();
    let fmt = |line: &Vec<u8>, n: &u64, w: &mut dyn Write| {
        for _ in 0..*n {
            w.write_all(line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    };
    r.run_to_dir(&Sort, &input, &dir.path().join("one"), fmt)
        .unwrap();
    r.run_cluster_to_dir(
        &ClusterConfig::threads(3),
        Sort,
        &input,
        &dir.path().join("three"),
        fmt,
    )
    .unwrap();
    assert!(part_files(&dir.path().join("one")) == part_files(&dir.path().join("three")));
}

#[test]
fn output_dir_is_not_overwritten_and_input_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(1 << 30);
    let e = r
        .run_cluster_to_dir(
            &ClusterConfig::threads(2),
            WordCount,
            &TextInput::path(dir.path()),
            dir.path(),
            count_line,
        )
        .unwrap_err();
    assert!(matches!(e, JobError::OutputExists { .. }), "{e}");
    let e = r
        .run_cluster(
            &ClusterConfig::threads(2),
            WordCount,
            &TextInput::path(dir.path().join("missing")),
        )
        .unwrap_err();
    assert!(matches!(e, JobError::Input { .. }), "{e}");
}

#[test]
fn unreachable_peers_fail_within_the_timeout() {
    let ports = sysblocks_mapreduce::cluster::free_ports(2).unwrap();
    let addrs = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let c = ClusterConfig::cluster(1, 0, addrs)
        .unwrap()
        .connect_timeout(Duration::from_secs(2));
    let dir = tempfile::tempdir().unwrap();
    let input = TextInput::new(corpus(dir.path()));
    let t = Instant::now();
    let e = runner(1 << 30)
        .run_cluster(&c, WordCount, &input)
        .unwrap_err();
    assert!(
        matches!(e, JobError::Cluster(ClusterError::Unreachable { .. })),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(20));
}

/// The child process of the multi-process tests: runs word count with the
/// flags, input and output directory given in the environment.
#[test]
#[ignore = "run by the multi-process tests as a child process"]
fn cluster_child() {
    let flags = std::env::var("MR_CHILD_FLAGS").unwrap();
    let (config, _) = ClusterConfig::from_args(flags.split(' ')).unwrap();
    let input = TextInput::path(std::env::var("MR_CHILD_INPUT").unwrap());
    let out = PathBuf::from(std::env::var("MR_CHILD_OUT").unwrap());
    let r = runner(1 << 30);
    if let Some(path) = std::env::var_os("MR_CHILD_COUNTERS") {
        let (_, counters) = r
            .run_cluster_to_dir(
                &config,
                common::Counting::new(false),
                &input,
                &out,
                count_line,
            )
            .unwrap();
        let mut path = PathBuf::from(path).into_os_string();
        path.push(format!("-{}", config.process()));
        std::fs::write(path, counters.to_string()).unwrap();
    } else if std::env::var_os("MR_CHILD_SLOW").is_some() {
        r.run_cluster_to_dir(&config, Slow, &input, &out, count_line)
            .unwrap();
    } else {
        r.run_cluster_to_dir(&config, WordCount, &input, &out, count_line)
            .unwrap();
    }
}

/// Word count that takes a millisecond per line.
struct Slow;

impl Job for Slow {
    type Record = [u8];
    type Key = Word;
    type Value = u64;
    type Output = u64;

    fn map(&self, line: &[u8], emit: &mut Emitter<'_, Word, u64>) -> Result<(), TaskError> {
        std::thread::sleep(Duration::from_millis(1));
        WordCount.map(line, emit)
    }

    fn reduce(&self, w: &Word, counts: Vec<u64>) -> Result<u64, TaskError> {
        WordCount.reduce(w, counts)
    }
}

fn child(flags: &[String], input: &Path, out: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "cluster_child", "--ignored", "--nocapture"])
        .env("MR_CHILD_FLAGS", flags.join(" "))
        .env("MR_CHILD_INPUT", input)
        .env("MR_CHILD_OUT", out)
        .stdout(Stdio::null());
    c
}

#[test]
fn two_processes_on_localhost_equal_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let input_dir = files[0].parent().unwrap().to_path_buf();
    let out = dir.path().join("out");
    let attempts = launch_local(&LocalLaunch::new(2, 1), |flags| {
        child(flags, &input_dir, &out)
    })
    .unwrap();
    assert!(attempts >= 1);
    runner(1 << 30)
        .run_to_dir(
            &WordCount,
            &TextInput::path(&input_dir),
            &dir.path().join("one"),
            count_line,
        )
        .unwrap();
    assert!(part_files(&dir.path().join("one")) == part_files(&out));
}

#[test]
fn a_killed_process_makes_the_other_fail_soon() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let out = dir.path().join("out");
    let ports = sysblocks_mapreduce::cluster::free_ports(2).unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]),
    )
    .unwrap();
    let spawn = |p: usize| {
        let flags: Vec<String> = [
            "-n",
            "2",
            "-p",
            &p.to_string(),
            "-h",
            hosts.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        child(&flags, &files[0], &out)
            .env("MR_CHILD_SLOW", "1")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut survivor = spawn(0);
    let mut victim = spawn(1);
    // Both connect and start mapping (8000 lines at 1 ms each, 4000 per
    // process), then one goes away.
    std::thread::sleep(Duration::from_secs(2));
    victim.kill().unwrap();
    victim.wait().unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = survivor.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(60) {
            survivor.kill().unwrap();
            panic!("the surviving process did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut survivor.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("WorkerLost"), "{err}");
    assert!(!out.exists());
}

/// User counters are summed over the workers of one process and over two
/// processes; every process reports the same totals.
#[test]
fn counters_are_summed_across_workers_and_processes() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let text: Vec<u8> = files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    let (lines, words, distinct) = common::expected_counts(&text);
    let input = TextInput::new(files.clone());
    let (_, single) = runner(64 << 10)
        .run_counted(&common::Counting::new(false), &input)
        .unwrap();
    assert_eq!(single["lines"], lines);
    assert_eq!(single["words"], words);
    assert_eq!(single["distinct"], distinct);
    let threads = runner(64 << 10)
        .run_cluster(
            &ClusterConfig::threads(3),
            common::Counting::new(false),
            &input,
        )
        .unwrap();
    assert_eq!(threads.counters.user(), single.user());
    assert_eq!(threads.counters["mapreduce.input_records"], lines);

    let input_dir = files[0].parent().unwrap().to_path_buf();
    let out = dir.path().join("out");
    let report = dir.path().join("counters");
    launch_local(&LocalLaunch::new(2, 1), |flags| {
        let mut c = child(flags, &input_dir, &out);
        c.env("MR_CHILD_COUNTERS", &report);
        c
    })
    .unwrap();
    let want = single.user().to_string();
    for p in 0..2 {
        let got = std::fs::read_to_string(format!("{}-{p}", report.display())).unwrap();
        let user: String = got
            .lines()
            .filter(|l| !l.starts_with("mapreduce."))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(user, want, "process {p}");
        assert!(
            got.contains(&format!("mapreduce.input_records {lines}\n")),
            "{got}"
        );
    }
}

/// An input path missing on one process: that process fails with
/// `JobError::Input`, the other with a typed cluster error (`PeerFailed`
/// naming it when its status arrives, `WorkerLost` when the failed process
/// exits first); neither hangs and no output is published.
#[test]
fn input_missing_on_one_process_fails_both_typed() {
    let dir = tempfile::tempdir().unwrap();
    let files = corpus(dir.path());
    let out = dir.path().join("out");
    let missing = dir.path().join("not-here");
    let logs: Vec<PathBuf> = (0..2)
        .map(|p| dir.path().join(format!("err-{p}")))
        .collect();
    let mut settings = LocalLaunch::new(2, 1);
    settings.retries = 0;
    settings.grace = Duration::from_secs(60);
    let t = Instant::now();
    let e = launch_local(&settings, |flags| {
        let p: usize = flags[flags.iter().position(|f| f == "-p").unwrap() + 1]
            .parse()
            .unwrap();
        let input = if p == 1 { &missing } else { &files[0] };
        let mut c = child(flags, input, &out);
        c.stderr(std::fs::File::create(&logs[p]).unwrap());
        c
    })
    .unwrap_err();
    assert!(matches!(e, ClusterError::ProcessFailed { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(50));
    let log = |p: usize| std::fs::read_to_string(&logs[p]).unwrap();
    assert!(log(1).contains("Input {"), "{}", log(1));
    let other = log(0);
    assert!(
        other.contains("PeerFailed { worker: 1") || other.contains("WorkerLost {"),
        "{other}"
    );
    assert!(!out.exists());
}
