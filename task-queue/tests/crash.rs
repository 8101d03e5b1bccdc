//! The SIGKILL crash test: a child process (this test binary, re-executed)
//! runs producers and workers against the redb store and is killed at
//! random moments, again and again; a last child drains the queue. Every
//! task whose `submit` returned `Ok` must have completed at least once.
//!
//! The child logs an id to `acked.log` only after `submit` returned `Ok`
//! for it (a kill between the two just means the parent never learns of
//! that task, which is allowed), and a handler logs its id to `done.log`
//! before returning `Ok`. Writes are single `write(2)` calls on `O_APPEND`
//! files: SIGKILL cannot lose them (only power loss could, and that is not
//! what this test simulates); a torn last line is ignored.
#![cfg(not(sysblocks_loom))]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{rngs::SmallRng, Rng, SeedableRng};
use sysblocks_task_queue::{Delivery, RedbStore, SubmitError, Task, TaskQueue, WorkerPool};

const DIR_ENV: &str = "TASK_QUEUE_CRASH_DIR";
const MODE_ENV: &str = "TASK_QUEUE_CRASH_MODE";
const KILLS: usize = 24;

fn append_line(path: &Path, line: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file");
    f.write_all(line.as_bytes()).expect("log write");
}

fn open_queue(dir: &Path) -> TaskQueue {
    TaskQueue::builder()
        .store(RedbStore::open(dir.join("tasks.redb")).expect("store opens after a kill"))
        .capacity(2_000)
        // A kill costs the tasks leased at that moment no attempt (it
        // counts a restart), but a lease that runs out while a child is
        // slow does; a generous limit keeps every task alive.
        .max_attempts(10_000)
        .lease(Duration::from_millis(500))
        .build()
        .expect("queue recovers after a kill")
}

fn start_workers(q: &TaskQueue, dir: &Path) -> WorkerPool {
    let done = dir.join("done.log");
    WorkerPool::start(q, 2, move |d: &Delivery| {
        append_line(&done, &format!("{}\n", d.id().0));
        Ok(())
    })
    .expect("workers")
}

/// The child: `run` produces and consumes until killed; `drain` consumes
/// until the queue is empty, then exits.
fn child(dir: &Path, mode: &str) -> ! {
    let q = open_queue(dir);
    let pool = start_workers(&q, dir);
    if mode == "drain" {
        let start = Instant::now();
        while !q.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(30), "drain stuck");
            std::thread::sleep(Duration::from_millis(5));
        }
        q.flush().expect("flush");
        let report = pool.shutdown(Duration::from_secs(5));
        eprintln!("drain: {:?} {report:?}", q.stats());
        std::process::exit(0);
    }
    let acked = dir.join("acked.log");
    std::thread::scope(|s| {
        for p in 0..2u64 {
            let q = &q;
            let acked = &acked;
            s.spawn(move || {
                let mut n = 0u64;
                loop {
                    n += 1;
                    match q.submit(Task::new(format!("{p}-{n}"))) {
                        Ok(id) => append_line(acked, &format!("{}\n", id.0)),
                        Err(SubmitError::Full(_)) => std::thread::sleep(Duration::from_millis(1)),
                        Err(e) => panic!("submit failed: {e}"),
                    }
                }
            });
        }
    });
    unreachable!("producers run until the process is killed")
}

fn read_ids(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // A torn last line (killed mid-write) does not end with '\n'.
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| l.parse().expect("well-formed log line"))
        .collect()
}

fn spawn_child(dir: &Path, mode: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "sigkill_crash_test",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(DIR_ENV, dir)
    .env(MODE_ENV, mode)
    .stdin(Stdio::null())
    .stdout(Stdio::null());
    cmd
}

#[test]
fn sigkill_crash_test() {
    if let (Ok(dir), Ok(mode)) = (std::env::var(DIR_ENV), std::env::var(MODE_ENV)) {
        child(&PathBuf::from(dir), &mode);
    }
    let start = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("tq-crash-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    // Create the store up front, so no kill lands inside its creation.
    drop(RedbStore::open(dir.join("tasks.redb")).unwrap());
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut kills = 0;
    for round in 0..KILLS {
        let mut child = spawn_child(&dir, "run")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(rng.gen_range(40..250)));
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "child died on its own in round {round}: {status}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        kills += 1;
    }
    let out = spawn_child(&dir, "drain")
        .stderr(Stdio::piped())
        .output()
        .expect("drain child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "drain failed: {stderr}");

    let acked: BTreeSet<u64> = read_ids(&dir.join("acked.log")).into_iter().collect();
    let mut done: BTreeMap<u64, u32> = BTreeMap::new();
    for id in read_ids(&dir.join("done.log")) {
        *done.entry(id).or_default() += 1;
    }
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !done.contains_key(id))
        .collect();
    let duplicates: Vec<(u64, u32)> = done
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&id, &n)| (id, n))
        .collect();
    println!(
        "crash test: {kills} SIGKILLs, {} acknowledged submits, {} tasks completed, \
         {} completed more than once (extra runs: {}), {:.1} s",
        acked.len(),
        done.len(),
        duplicates.len(),
        duplicates
            .iter()
            .map(|(_, n)| u64::from(n - 1))
            .sum::<u64>(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "duplicates (id, runs): {:?}",
        &duplicates[..duplicates.len().min(50)]
    );
    assert!(kills >= 20);
    assert!(
        acked.len() > 100,
        "too little work to mean anything: {}",
        acked.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged tasks lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
}
