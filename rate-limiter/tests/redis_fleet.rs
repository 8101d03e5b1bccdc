//! A fleet shares one limit: 4 processes (this test binary re-executed as
//! children, as testkit's `run_isolated` does) with 2 tasks each hammer
//! one key of a Redis GCRA at `Q` per second for 10 s. The total admitted
//! is at most the GCRA bound `Q*T + burst` over the span the server's
//! clock measured around the run, exactly, and at least 99% of it.
#![cfg(feature = "redis")]

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sysblocks_rate_limiter::redis::RedisLimiter;
use sysblocks_rate_limiter::Quota;
use sysblocks_testkit::redis::RedisServer;

const CHILD_ENV: &str = "SYSBLOCKS_REDIS_FLEET";
const PROCESSES: usize = 4;
const TASKS: usize = 2;
const RATE: u32 = 500;
const BURST: u32 = 50;
const RUN: Duration = Duration::from_secs(10);
const TEST: &str = "fleet_of_processes_admits_the_gcra_bound";

fn quota() -> Quota {
    Quota::per_second(RATE).burst(BURST)
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as u64
}

/// The server's clock (`TIME`) in nanoseconds.
fn server_nanos(con: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(con).expect("TIME");
    s * 1_000_000_000 + us * 1000
}

/// One process of the fleet: waits for the common start instant, runs
/// `TASKS` tasks checking the key until the end, prints its admissions.
fn child(spec: &str) {
    let (url, start) = spec.split_once(' ').expect("url start");
    let start: u64 = start.parse().expect("start");
    let end = start + RUN.as_nanos() as u64;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let admitted = rt.block_on(async {
        let limiter = RedisLimiter::gcra(quota())
            .prefix("fleet:")
            .timeout(Duration::from_secs(2))
            .connect(url)
            .await
            .expect("connect");
        tokio::time::sleep(Duration::from_nanos(start.saturating_sub(unix_nanos()))).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    let mut admitted = 0u64;
                    loop {
                        let now = unix_nanos();
                        if now >= end {
                            return admitted;
                        }
                        let d = l.check("hot").await.expect("check");
                        if d.is_allowed() {
                            admitted += 1;
                        } else {
                            let wait = d.retry_after().unwrap_or_default();
                            let left = Duration::from_nanos(end.saturating_sub(now));
                            tokio::time::sleep(wait.min(left)).await;
                        }
                    }
                })
            })
            .collect();
        let mut sum = 0;
        for t in tasks {
            sum += t.await.expect("task");
        }
        sum
    });
    println!("FLEET_ADMITTED {admitted}");
}

#[test]
fn fleet_of_processes_admits_the_gcra_bound() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let Some(server) = RedisServer::start() else {
        return;
    };
    let mut con = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .expect("connect");
    let start = unix_nanos() + 1_500_000_000;
    let exe = std::env::current_exe().expect("the test binary");
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([TEST, "--exact", "--nocapture", "--test-threads=1", "-q"])
                .env(CHILD_ENV, format!("{} {start}", server.url()))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a child")
        })
        .collect();
    // The span starts just before the children's first check and ends
    // after the last child has exited: every admission lies inside it.
    std::thread::sleep(Duration::from_nanos(
        start.saturating_sub(unix_nanos() + 2_000_000),
    ));
    let t0 = server_nanos(&mut con);
    let mut admitted = 0u64;
    for c in children {
        let out = c.wait_with_output().expect("child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let n: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("FLEET_ADMITTED "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count from a child: {stdout}"));
        admitted += n;
    }
    let t1 = server_nanos(&mut con);
    let t = quota().emission_interval().unwrap().as_nanos() as u64;
    let bound = (t1 - t0) / t + u64::from(BURST);
    let share = admitted as f64 / bound as f64;
    eprintln!(
        "fleet: {PROCESSES} processes x {TASKS} tasks, {RATE}/s burst {BURST}, span {:.3} s: \
         {admitted} admitted, bound {bound} ({:.2}%)",
        (t1 - t0) as f64 / 1e9,
        share * 100.0
    );
    assert!(admitted <= bound, "{admitted} > {bound}");
    assert!(share >= 0.99, "{admitted} < 99% of {bound}");
}
