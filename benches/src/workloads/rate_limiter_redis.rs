//! The Redis cases of `rate-limiter`: a private `redis-server` started by
//! `compare` itself (the testkit crate's `RedisServer` is test-only, so a
//! binary cannot use it), our limiters and the peers on it, and
//! `redis-benchmark` run as a child process for the round-trip ceiling.
//!
//! - ours: `RedisLimiter` GCRA and sliding-window counter checks, over
//!   10,000 keys cycled, at a quota that admits every check (so each check
//!   writes its key), the denial cache irrelevant;
//! - the naive fixed window people hand-roll: `INCR key` and
//!   `EXPIRE key 1` in one pipelined round trip;
//! - the ceiling: `EVALSHA` of `return 1`, from our client and from
//!   `redis-benchmark -c 1` (one connection, as ours).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sysblocks_rate_limiter::redis::RedisLimiter;
use sysblocks_rate_limiter::Quota;

/// Distinct keys the checks cycle through.
pub const KEYS: usize = 10_000;

/// Keys per `check_many` batch (and per naive pipeline).
pub const BATCH: usize = 64;

/// A `redis-server` owned by `compare`, on an OS-chosen port of
/// 127.0.0.1 with persistence off; killed on drop.
pub struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn ping(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let run = || -> std::io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    run().unwrap_or(false)
}

impl Server {
    /// Starts a server, or `Err` saying why not (not installed, did not
    /// come up within 10 s).
    ///
    /// # Errors
    ///
    /// A message for the report's missing items.
    pub fn start() -> Result<Self, String> {
        let bin = find("redis-server").ok_or("redis-server not installed")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        let start = Instant::now();
        while !ping(port) {
            if start.elapsed() > Duration::from_secs(10) {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keys, as strings.
#[must_use]
pub fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("user:{i}")).collect()
}

/// A quota no check of the cases reaches: every check is admitted and
/// writes its key.
#[must_use]
pub fn admitting_quota() -> Quota {
    Quota::per_second(1_000_000).burst(10_000)
}

/// Our GCRA (`gcra = true`) or sliding counter on `url`, connected on
/// `rt`.
///
/// # Panics
///
/// If the connection fails.
#[must_use]
pub fn ours(rt: &tokio::runtime::Runtime, url: &str, gcra: bool, prefix: &str) -> RedisLimiter {
    let b = if gcra {
        RedisLimiter::gcra(admitting_quota())
    } else {
        RedisLimiter::sliding_window_counter(admitting_quota())
    };
    rt.block_on(
        b.prefix(prefix)
            .timeout(Duration::from_secs(5))
            .connect(url),
    )
    .expect("connect")
}

/// A plain multiplexed connection (the naive window and the trivial
/// script).
///
/// # Panics
///
/// If the connection fails.
#[must_use]
pub fn raw(rt: &tokio::runtime::Runtime, url: &str) -> redis::aio::MultiplexedConnection {
    rt.block_on(async {
        redis::Client::open(url)
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    })
}

/// The naive fixed window's check: `INCR` and `EXPIRE` in one round trip,
/// admitted iff the count is at most `limit`.
///
/// # Panics
///
/// If Redis fails.
pub async fn naive_check(c: &mut redis::aio::MultiplexedConnection, key: &str, limit: i64) -> bool {
    let (n, _): (i64, i64) = redis::pipe()
        .cmd("INCR")
        .arg(key)
        .cmd("EXPIRE")
        .arg(key)
        .arg(1)
        .query_async(c)
        .await
        .expect("naive window");
    n <= limit
}

/// `BATCH` naive checks in one pipeline.
///
/// # Panics
///
/// If Redis fails.
pub async fn naive_batch(c: &mut redis::aio::MultiplexedConnection, keys: &[String]) -> usize {
    let mut p = redis::pipe();
    for k in keys {
        p.cmd("INCR").arg(k).cmd("EXPIRE").arg(k).arg(1).ignore();
    }
    let _: () = p.query_async(c).await.expect("naive batch");
    keys.len()
}

/// Loads `return 1` and returns its SHA.
///
/// # Panics
///
/// If Redis fails.
pub async fn load_trivial(c: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query_async(c)
        .await
        .expect("SCRIPT LOAD")
}

/// One `EVALSHA <sha> 0` round trip.
///
/// # Panics
///
/// If Redis fails.
pub async fn trivial(c: &mut redis::aio::MultiplexedConnection, sha: &str) -> i64 {
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(0)
        .query_async(c)
        .await
        .expect("EVALSHA")
}

/// `redis-benchmark`'s rate (requests per second) for `EVALSHA <sha> 0`
/// over `clients` connections with pipelines of `pipeline`, `n` requests;
/// `None` if it is not installed or its output is not understood.
#[must_use]
pub fn redis_benchmark(port: u16, sha: &str, clients: u32, pipeline: u32, n: u32) -> Option<f64> {
    let bin = find("redis-benchmark")?;
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &clients.to_string(), "-P", &pipeline.to_string()])
        .args(["-n", &n.to_string(), "-q", "EVALSHA", sha, "0"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "EVALSHA ...: 41152.26 requests per second, p50=0.023 msec"; the
    // progress lines before it end in '\r'.
    let line = text
        .rsplit(['\r', '\n'])
        .find(|l| l.contains("requests per second"))?;
    let before = line.split(" requests per second").next()?;
    before.rsplit(' ').next()?.trim().parse().ok()
}

/// Latency quantiles (p50, p99) in microseconds of `samples`.
#[must_use]
pub fn quantiles_us(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 * q) as usize).min(samples.len() - 1);
        samples[i].as_nanos() as f64 / 1000.0
    };
    (at(0.50), at(0.99))
}
