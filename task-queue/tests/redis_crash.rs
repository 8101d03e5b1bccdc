//! The multi-process crash test of `RedisQueue` (feature `redis`): two
//! producer processes and three worker processes (this test binary,
//! re-executed with a role in its environment) share one queue on a
//! private redis-server with `appendonly yes` and `appendfsync always`.
//! Over many cycles the parent SIGKILLs workers (and now and then a
//! producer) and restarts them, and every other cycle SIGKILLs
//! redis-server itself and restarts it on the same data directory. Then
//! the producers stop, the workers drain the queue, and every task whose
//! submit returned `Ok` must have run at least once with its payload
//! intact; runs beyond the first are counted as duplicates. The consumer
//! group must not keep the consumers of the killed workers.
//!
//! A producer logs a task (producer, sequence number, payload hash) only
//! after its submit returned `Ok`; a handler logs the task it got and the
//! hash of the payload it saw before returning `Ok`. A payload names its
//! producer and sequence number, so tasks are matched by content, not by
//! id (a server that lost its data would hand out the same ids again).
//! Every log line is one `write(2)` on an `O_APPEND` file: a SIGKILL
//! cannot lose it (the page cache outlives the process; power loss is not
//! what this test simulates), and a torn last line is ignored.
//!
//! Consumers of killed workers are removed once idle for a lease and a
//! second; a server restart resets every consumer's idle time, so while
//! the server restarts every other cycle they pile up, and the check is at
//! the end, after the drain.
//!
//! Settings, read from the environment:
//! - `TASK_QUEUE_REDIS_CRASH_APPENDONLY=no` runs the server without an
//!   append-only file, where the claim is false: the test must then fail,
//!   reporting the acknowledged tasks lost (a check that it can).
//! - `TASK_QUEUE_REDIS_CRASH_CYCLES=<n>` runs `n` kill/restart cycles
//!   instead of 24.
#![cfg(all(feature = "redis", not(sysblocks_loom)))]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{rngs::SmallRng, Rng, SeedableRng};
use sysblocks_task_queue::{
    Delivery, Durability, Priority, RedisQueue, Task, TaskError, WorkerPool,
};
use sysblocks_testkit::redis::RedisServer;

const ROLE_ENV: &str = "TASK_QUEUE_REDIS_CRASH_ROLE";
const URL_ENV: &str = "TASK_QUEUE_REDIS_CRASH_URL";
const DIR_ENV: &str = "TASK_QUEUE_REDIS_CRASH_DIR";
const APPENDONLY_ENV: &str = "TASK_QUEUE_REDIS_CRASH_APPENDONLY";
const CYCLES_ENV: &str = "TASK_QUEUE_REDIS_CRASH_CYCLES";

const PRODUCERS: usize = 2;
const WORKERS: usize = 3;
/// Worker threads per worker process.
const THREADS: usize = 2;
const DEFAULT_CYCLES: usize = 24;
/// Short, so that a killed worker's tasks move on quickly.
const LEASE: Duration = Duration::from_millis(400);

fn queue(url: &str) -> RedisQueue {
    let start = Instant::now();
    loop {
        let built = RedisQueue::builder(url)
            .name("crash")
            .lease(LEASE)
            // Expired leases count as failed attempts: with kills every few
            // hundred milliseconds no task may run out of them.
            .max_attempts(1_000_000)
            .block(Duration::from_millis(50))
            .build();
        match built {
            Ok(q) => return q,
            Err(e) if start.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("queue: {e}"),
        }
    }
}

/// FNV-1a, 64 bits.
fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Task `n` of producer `p`: `p:n:` and 0 to 250 bytes derived from both.
fn payload(p: u64, n: u64) -> Vec<u8> {
    let mut out = format!("{p}:{n}:").into_bytes();
    let mut x = (p << 48) ^ n ^ 0x9e37_79b9_7f4a_7c15;
    for _ in 0..(n.wrapping_mul(7919) % 251) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(x as u8);
    }
    out
}

fn append(file: &File, line: &str) {
    // One write(2) on an O_APPEND file.
    (&*file).write_all(line.as_bytes()).expect("log write");
}

fn log_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file")
}

/// Exits when the parent is gone, so that a failed or killed test leaves
/// no process behind.
fn exit_with_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
}

fn producer(url: &str, dir: &Path, p: u64) -> ! {
    let q = queue(url);
    let log = log_file(&dir.join(format!("acked-{p}.log")));
    // A restarted producer goes on from where the log says it was.
    let mut n = read_lines(&dir.join(format!("acked-{p}.log")))
        .iter()
        .filter_map(|l| l.split(' ').nth(1)?.parse::<u64>().ok())
        .max()
        .map_or(0, |m| m + 1000);
    let mut rng = SmallRng::seed_from_u64(p ^ u64::from(std::process::id()));
    loop {
        // Producer 1 submits batches of 4 (one script call each).
        let count = if p == 1 { 4 } else { 1 };
        let tasks: Vec<(u64, Task)> = (0..count)
            .map(|i| {
                let priority =
                    [Priority::High, Priority::Normal, Priority::Low][rng.gen_range(0..3)];
                (n + i, Task::new(payload(p, n + i)).with_priority(priority))
            })
            .collect();
        n += count;
        let lines: String = tasks
            .iter()
            .map(|(k, t)| format!("{p} {k} {:x}\n", hash(t.payload())))
            .collect();
        let result = if count == 1 {
            let (_, task) = tasks.into_iter().next().expect("one task");
            if rng.gen_ratio(1, 8) {
                q.submit_after(task, Duration::from_millis(30)).map(drop)
            } else {
                q.submit(task).map(drop)
            }
        } else {
            q.submit_batch(tasks.into_iter().map(|(_, t)| t).collect())
                .map(drop)
        };
        match result {
            Ok(()) => append(&log, &lines),
            // Not acknowledged (the server is down or restarting): the
            // task may or may not be stored; either is allowed.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        std::thread::sleep(Duration::from_millis(3));
    }
}

fn worker(url: &str, dir: &Path, w: u64) -> ! {
    let q = queue(url);
    let log = log_file(&dir.join(format!("runs-{w}.log")));
    let _pool = WorkerPool::start(&q, THREADS, move |d: &Delivery| -> Result<(), TaskError> {
        let p = d.payload();
        let mut parts = p.splitn(3, |&b| b == b':');
        let name = match (parts.next(), parts.next()) {
            (Some(a), Some(b)) => format!(
                "{} {}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            ),
            _ => "? ?".to_owned(),
        };
        append(&log, &format!("{name} {:x}\n", hash(p)));
        // Some work, so that kills find tasks in flight.
        std::thread::sleep(Duration::from_micros(hash(p) % 2000));
        Ok(())
    })
    .expect("workers");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn child(role: &str) -> ! {
    exit_with_parent();
    let url = std::env::var(URL_ENV).expect("url");
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("dir"));
    let (kind, index) = role.split_once(':').expect("role kind:index");
    let index: u64 = index.parse().expect("role index");
    match kind {
        "producer" => producer(&url, &dir, index),
        "worker" => worker(&url, &dir, index),
        other => panic!("unknown role {other}"),
    }
}

/// The complete lines of a log (a torn last line, cut by a kill, does not
/// end with `\n`).
fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().map(str::to_owned).collect()
}

/// `(producer, n) -> hash` of every line of the logs named `prefix-*.log`,
/// with the number of lines for each key.
fn read_logs(dir: &Path, prefix: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("log dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !(name.starts_with(prefix) && name.ends_with(".log")) {
            continue;
        }
        for line in read_lines(&path) {
            let mut it = line.split(' ');
            if let (Some(p), Some(n), Some(h)) = (it.next(), it.next(), it.next()) {
                out.entry((p.to_owned(), n.to_owned()))
                    .or_default()
                    .push(h.to_owned());
            }
        }
    }
    out
}

/// The child processes, SIGKILLed on drop (also when the test panics).
struct Children {
    url: String,
    dir: PathBuf,
    producers: Vec<Child>,
    workers: Vec<Child>,
}

impl Children {
    fn spawn(&self, role: &str) -> Child {
        let err = log_file(&self.dir.join("children.err"));
        Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "redis_crash_test",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE_ENV, role)
            .env(URL_ENV, &self.url)
            .env(DIR_ENV, &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn child")
    }

    fn restart_worker(&mut self, w: usize) {
        kill(&mut self.workers[w]);
        self.workers[w] = self.spawn(&format!("worker:{w}"));
    }

    fn restart_producer(&mut self, p: usize) {
        kill(&mut self.producers[p]);
        self.producers[p] = self.spawn(&format!("producer:{p}"));
    }

    /// Panics (showing the children's stderr) if a child exited on its own.
    fn check_alive(&mut self) {
        for c in self.producers.iter_mut().chain(self.workers.iter_mut()) {
            if let Some(status) = c.try_wait().expect("try_wait") {
                let err =
                    std::fs::read_to_string(self.dir.join("children.err")).unwrap_or_default();
                panic!("a child exited on its own ({status}):\n{err}");
            }
        }
    }
}

fn kill(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}

impl Drop for Children {
    fn drop(&mut self) {
        for c in self.producers.iter_mut().chain(self.workers.iter_mut()) {
            kill(c);
        }
    }
}

/// Consumers in the group of each priority stream (`usize::MAX` where the
/// query failed).
fn consumers(url: &str) -> Vec<usize> {
    let client = redis::Client::open(url).expect("url");
    let Ok(mut c) = client.get_connection() else {
        return vec![usize::MAX];
    };
    (0..3)
        .map(|l| {
            redis::cmd("XINFO")
                .arg("CONSUMERS")
                .arg(format!("tq:{{crash}}:s:{l}"))
                .arg("workers")
                .query::<Vec<redis::Value>>(&mut c)
                .map_or(usize::MAX, |v| v.len())
        })
        .collect()
}

#[test]
fn redis_crash_test() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        child(&role);
    }
    let appendonly = std::env::var(APPENDONLY_ENV).unwrap_or_else(|_| "yes".into());
    let cycles: usize = std::env::var(CYCLES_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CYCLES);
    let args: &[&str] = if appendonly == "no" {
        &["--appendonly", "no"]
    } else {
        &["--appendonly", "yes", "--appendfsync", "always"]
    };
    let Some(mut server) = RedisServer::start_with(args) else {
        return;
    };
    let start = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("tq-redis-crash-")
        .tempdir()
        .expect("tempdir");
    let url = server.url();
    let q = queue(&url);
    let expected = if appendonly == "no" {
        Durability::Off
    } else {
        Durability::Always
    };
    assert_eq!(q.durability(), expected);

    let mut children = Children {
        url: url.clone(),
        dir: tmp.path().to_path_buf(),
        producers: Vec::new(),
        workers: Vec::new(),
    };
    for p in 0..PRODUCERS {
        let c = children.spawn(&format!("producer:{p}"));
        children.producers.push(c);
    }
    for w in 0..WORKERS {
        let c = children.spawn(&format!("worker:{w}"));
        children.workers.push(c);
    }
    let mut rng = SmallRng::seed_from_u64(0x7a5c);
    let (mut worker_kills, mut server_kills, mut producer_kills) = (0, 0, 0);
    // The most consumers a stream's group had at the start of a cycle.
    let mut peak = 0;
    for cycle in 0..cycles {
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..400)));
        children.check_alive();
        // (usize::MAX stands for a failed query.)
        let now = consumers(&url).into_iter().filter(|&n| n != usize::MAX);
        peak = peak.max(now.max().unwrap_or(0));
        let w = rng.gen_range(0..WORKERS);
        kill(&mut children.workers[w]);
        worker_kills += 1;
        if cycle % 2 == 1 {
            server.kill();
            server_kills += 1;
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..50)));
            server.restart().expect("redis-server restarts");
        }
        children.restart_worker(w);
        if cycle % 5 == 4 {
            let p = rng.gen_range(0..PRODUCERS);
            children.restart_producer(p);
            producer_kills += 1;
        }
    }
    children.check_alive();
    for mut c in children.producers.drain(..) {
        kill(&mut c);
    }
    // Drain: every stream and the delayed set empty (completed entries
    // are deleted).
    let drain = Instant::now();
    loop {
        if q.pending() == Ok(0) {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(30),
            "not drained: {:?} tasks left",
            q.pending()
        );
        children.check_alive();
        std::thread::sleep(Duration::from_millis(20));
    }
    // Consumers of killed workers leave the group once their entries moved
    // on; the live ones (WORKERS * THREADS) may stay.
    let live = WORKERS * THREADS;
    let consumer_wait = Instant::now();
    let mut left = consumers(&url);
    while left.iter().any(|&n| n > live) && consumer_wait.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        left = consumers(&url);
    }
    drop(children);

    let acked = read_logs(tmp.path(), "acked-");
    let runs = read_logs(tmp.path(), "runs-");
    let mut lost = Vec::new();
    let mut damaged = Vec::new();
    for (key, hashes) in &acked {
        match runs.get(key) {
            None => lost.push(key.clone()),
            Some(seen) if seen.iter().any(|h| h != &hashes[0]) => damaged.push(key.clone()),
            Some(_) => {}
        }
    }
    let unparsed = runs.keys().filter(|(p, _)| p == "?").count();
    let duplicated = runs.values().filter(|v| v.len() > 1).count();
    let extra_runs: usize = runs.values().map(|v| v.len() - 1).sum();
    println!(
        "redis crash test (appendonly {appendonly}): {cycles} cycles, {worker_kills} worker \
         SIGKILLs, {server_kills} redis-server SIGKILLs, {producer_kills} producer SIGKILLs; \
         {} acknowledged tasks, {} tasks ran, {duplicated} ran more than once (extra runs: \
         {extra_runs}), {} lost, {} damaged; consumers per stream at most {peak}, at the end {left:?}; {:.1} s",
        acked.len(),
        runs.len(),
        lost.len(),
        damaged.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(worker_kills >= 20 && server_kills >= 10);
    assert!(
        acked.len() > 200,
        "too little work to mean anything: {}",
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged tasks lost, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(damaged.is_empty(), "damaged payloads: {damaged:?}");
    assert_eq!(unparsed, 0, "payloads without a name");
    assert!(
        left.iter().all(|&n| n <= live),
        "the group keeps dead consumers: {left:?}"
    );
}
