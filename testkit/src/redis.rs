//! [`RedisServer`]: a private `redis-server` for one test binary.
//!
//! A test that talks to Redis starts its own server, on an OS-chosen free
//! port of 127.0.0.1, with a fresh data directory (a tempdir, removed on
//! drop) and persistence off unless the caller asks for it; never a shared
//! fixed port. Where `redis-server` is not installed, [`RedisServer::start`]
//! prints `skipped: redis-server not installed` and returns `None`, so the
//! test returns early; when the environment variable `CI` is set, a missing
//! server is a failure instead (CI installs it).
//!
//! ```no_run
//! use sysblocks_testkit::redis::RedisServer;
//!
//! let Some(mut server) = RedisServer::start() else { return };
//! let url = server.url(); // redis://127.0.0.1:<port>/
//! // A cache over several nodes starts one server each:
//! let nodes = RedisServer::start_many(3, &[]).expect("installed");
//! server.kill(); // SIGKILL: the server is gone, as after a crash
//! server.restart().expect("restart on the same port");
//! // The task queue's durability tests ask for an fsync per write:
//! let durable = RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"]);
//! ```

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long [`RedisServer::start`] and [`RedisServer::restart`] wait for the
/// server to answer `PING`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Fresh ports tried before giving up when another process takes the chosen
/// port between our probe and the server's bind.
const PORT_ATTEMPTS: usize = 5;

/// The arguments every server gets before the caller's: no RDB snapshots,
/// no append-only file (a later `--appendonly yes` from the caller wins,
/// since redis-server applies arguments in order).
const DEFAULT_ARGS: &[&str] = &["--save", "", "--appendonly", "no"];

/// Starts the server (`$0`, arguments `$@`) without the descriptors 3 to
/// 9 a test binary may have inherited without close-on-exec: `flock
/// /tmp/cargo.lock cargo test` hands its lock down as descriptor 3, and a
/// server orphaned by a killed test would otherwise hold that lock for as
/// long as it lives. `exec` keeps the pid, so `kill` still reaches it.
const CLOSE_INHERITED: &str = "exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; exec \"$0\" \"$@\"";

/// Why a server could not be started or restarted.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisServerError {
    /// `redis-server` is not on the `PATH`.
    NotInstalled,
    /// Spawning the process, creating its directory or probing a port
    /// failed.
    Io(std::io::Error),
    /// The process exited before answering `PING`.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// The process did not answer `PING` within [`READY_TIMEOUT`].
    NotReady {
        /// The end of its log.
        log: String,
    },
}

impl fmt::Display for RedisServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled => f.write_str("redis-server not installed"),
            Self::Io(e) => write!(f, "cannot start redis-server: {e}"),
            Self::Exited { status, log } => {
                write!(f, "redis-server exited ({status}) before ready:\n{log}")
            }
            Self::NotReady { log } => write!(
                f,
                "redis-server did not answer PING within {READY_TIMEOUT:?}:\n{log}"
            ),
        }
    }
}

impl std::error::Error for RedisServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for RedisServerError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The path of the executable `name` on the `PATH`, if any (used for
/// `redis-server`, and by callers for `redis-cli` or `redis-benchmark`).
#[must_use]
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A `redis-server` child process owned by the test; killed on drop.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    extra: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .field("extra", &self.extra)
            .field("dir", &self.dir.path())
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl RedisServer {
    /// A server with persistence off (`--save "" --appendonly no`), or
    /// `None` after printing `skipped: redis-server not installed`.
    ///
    /// # Panics
    ///
    /// If `redis-server` is missing while the environment variable `CI` is
    /// set, or if it is installed but does not start.
    #[must_use]
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// [`RedisServer::start`] with `extra` arguments after the defaults,
    /// e.g. `["--appendonly", "yes", "--appendfsync", "always"]`. The data
    /// directory (`--dir`) is a fresh tempdir, [`RedisServer::dir`].
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    #[must_use]
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        match Self::try_start_with(extra) {
            Ok(s) => Some(s),
            Err(RedisServerError::NotInstalled) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: redis-server not installed");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// `n` servers as [`RedisServer::start_with`], each on its own port
    /// and data directory (for a cache spread over several nodes), or
    /// `None` after printing `skipped: redis-server not installed`.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    #[must_use]
    pub fn start_many(n: usize, extra: &[&str]) -> Option<Vec<Self>> {
        (0..n).map(|_| Self::start_with(extra)).collect()
    }

    /// [`RedisServer::start_with`] reporting every failure, a missing
    /// binary included, as an error.
    ///
    /// # Errors
    ///
    /// [`RedisServerError::NotInstalled`] without `redis-server` on the
    /// `PATH`; the others if it does not come up within [`READY_TIMEOUT`]
    /// on any of a few fresh ports.
    pub fn try_start_with(extra: &[&str]) -> Result<Self, RedisServerError> {
        let binary = find_binary("redis-server").ok_or(RedisServerError::NotInstalled)?;
        let dir = tempfile::Builder::new().prefix("redis-test").tempdir()?;
        let mut server = Self {
            binary,
            port: 0,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            dir,
            child: None,
        };
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port()?;
            match server.spawn() {
                Ok(()) => return Ok(server),
                // Most likely the port was taken meanwhile: try another.
                Err(e @ RedisServerError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The address clients connect to: `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port on 127.0.0.1 (the same across restarts).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's data directory (`--dir`), a tempdir kept across
    /// restarts and removed on drop.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id, while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process is running (started and not killed).
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it. Data
    /// not yet on disk is lost. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, then starts it again on the same port
    /// and data directory with the same arguments, and waits for `PING`.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::try_start_with`] (the port is not changed: a
    /// process that took it meanwhile makes this fail).
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.kill();
        self.spawn()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn spawn(&mut self) -> Result<(), RedisServerError> {
        let port = self.port.to_string();
        let mut command = if Path::new("/bin/sh").is_file() {
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", CLOSE_INHERITED]).arg(&self.binary);
            sh
        } else {
            Command::new(&self.binary)
        };
        let mut child = command
            .args(["--port", &port, "--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args(DEFAULT_ARGS)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait()? {
                return Err(RedisServerError::Exited {
                    status,
                    log: self.log_tail(),
                });
            }
            if ping(addr) {
                self.child = Some(child);
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RedisServerError::NotReady {
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port the OS reports free on 127.0.0.1 (bound and released at once).
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether a server at `addr` answers `PING` with `+PONG` within a short
/// time.
#[must_use]
pub fn ping(addr: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let timeout = Duration::from_millis(500);
        let mut s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.write_all(b"*1\r\n$4\r\nPING\r\n")?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf)?;
        Ok(&buf == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &RedisServer) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], s.port()))
    }

    /// Sends one inline command and returns the first line of the reply.
    fn command(s: &RedisServer, cmd: &str) -> String {
        let mut c = TcpStream::connect(addr(s)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).expect("reply");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn starts_answers_and_reports_its_url() {
        let Some(s) = RedisServer::start() else {
            return;
        };
        assert!(ping(addr(&s)));
        assert_eq!(s.url(), format!("redis://127.0.0.1:{}/", s.port()));
        assert!(command(&s, "CONFIG GET appendonly").contains("no"));
        assert!(command(&s, "CONFIG GET save").contains("save"));
    }

    #[test]
    fn kill_stops_it_and_restart_brings_it_back_on_the_same_port() {
        let Some(mut s) = RedisServer::start() else {
            return;
        };
        let port = s.port();
        assert!(command(&s, "SET k v").starts_with("+OK"));
        s.kill();
        assert!(!s.is_running());
        assert!(!ping(addr(&s)));
        s.restart().expect("restart");
        assert_eq!(s.port(), port);
        assert!(ping(addr(&s)));
        // Persistence off: the key died with the process.
        assert!(command(&s, "GET k").starts_with("$-1"));
    }

    #[test]
    fn extra_arguments_apply_and_data_survives_a_kill_with_fsync() {
        let Some(mut s) =
            RedisServer::start_with(&["--appendonly", "yes", "--appendfsync", "always"])
        else {
            return;
        };
        assert!(command(&s, "CONFIG GET appendonly").contains("yes"));
        assert!(command(&s, "SET k v").starts_with("+OK"));
        s.kill();
        s.restart().expect("restart");
        assert!(command(&s, "GET k").contains('v'));
        assert!(s.dir().read_dir().unwrap().count() > 1, "no data files");
    }

    #[test]
    fn drop_stops_the_process() {
        let Some(s) = RedisServer::start() else {
            return;
        };
        let a = addr(&s);
        let pid = s.pid().expect("running");
        drop(s);
        assert!(!ping(a));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_bad_argument_is_a_typed_failure() {
        if find_binary("redis-server").is_none() {
            eprintln!("skipped: redis-server not installed");
            return;
        }
        match RedisServer::try_start_with(&["--no-such-option", "1"]) {
            Err(RedisServerError::Exited { log, .. }) => {
                let _ = log;
            }
            other => panic!("expected Exited, got {other:?}"),
        }
    }
}
