//! The local launcher: N processes of one program on 127.0.0.1, to try a
//! cluster job on one machine, retrying the whole job when a process
//! fails (timely does not recover within a run).

use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use sysblocks_clock::{Clock, MonotonicClock};

use crate::error::ClusterError;

/// `n` TCP ports free on 127.0.0.1 at the time of the call (the OS
/// chooses them; another program may take one before it is used, which
/// fails that attempt).
///
/// # Errors
///
/// [`ClusterError::Launch`] when no port can be bound.
pub fn free_ports(n: usize) -> Result<Vec<u16>, ClusterError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| ClusterError::Launch { source })?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|source| ClusterError::Launch { source })
}

/// Settings of [`launch_local`].
#[derive(Debug, Clone)]
pub struct LocalLaunch {
    /// Processes to start.
    pub processes: usize,
    /// Worker threads per process (`-w`).
    pub threads: usize,
    /// Whole-job retries after a failed attempt.
    pub retries: u32,
    /// Once one process has failed, how long the others get to exit on
    /// their own (they should, with a typed error) before they are killed.
    pub grace: Duration,
    /// The pause between starting one process and the next. timely's
    /// process `i` connects to the processes below it and retries a
    /// refused connection only after a second, so a lower process that is
    /// listening before the higher ones start saves that second.
    pub stagger: Duration,
    /// The clock `grace` is measured on ([`MonotonicClock`] by default).
    pub clock: Arc<dyn Clock>,
}

impl LocalLaunch {
    /// `processes` processes of `threads` workers, one retry, 30 s grace,
    /// started 50 ms apart.
    #[must_use]
    pub fn new(processes: usize, threads: usize) -> Self {
        Self {
            processes,
            threads,
            retries: 1,
            grace: Duration::from_secs(30),
            stagger: Duration::from_millis(50),
            clock: Arc::new(MonotonicClock::new()),
        }
    }
}

/// Runs one job as `settings.processes` processes on 127.0.0.1.
///
/// For each attempt, it chooses free ports, writes a hostfile, and starts
/// process `i` as `command(flags)`, where `flags` are timely's standard
/// flags for it (`-w T -n N -p i -h HOSTFILE`). The attempt succeeds when
/// every process exits with success. When one fails, the others are given
/// `settings.grace` to exit, then killed, and the whole job starts again,
/// up to `settings.retries` times (a job's output directory is published
/// only by a successful attempt, so a retry starts clean). Returns the
/// number of attempts made.
///
/// # Errors
///
/// [`ClusterError::Launch`] when a process cannot be started or waited
/// for, [`ClusterError::ProcessFailed`] naming the first process that
/// failed in the last attempt, [`ClusterError::Flag`] for zero processes
/// or threads.
pub fn launch_local(
    settings: &LocalLaunch,
    mut command: impl FnMut(&[String]) -> Command,
) -> Result<u32, ClusterError> {
    if settings.processes == 0 || settings.threads == 0 {
        return Err(ClusterError::Flag {
            flag: "--processes".into(),
            reason: "processes and threads must be at least 1".into(),
        });
    }
    let dir = tempfile::tempdir().map_err(|source| ClusterError::Launch { source })?;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let ports = free_ports(settings.processes)?;
        let hostfile = dir.path().join(format!("hosts-{attempt}"));
        let lines: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
        std::fs::write(&hostfile, lines).map_err(|source| ClusterError::Launch { source })?;
        let mut children: Vec<Child> = Vec::new();
        for i in 0..settings.processes {
            if i > 0 {
                std::thread::sleep(settings.stagger);
            }
            let flags = [
                "-w".to_string(),
                settings.threads.to_string(),
                "-n".into(),
                settings.processes.to_string(),
                "-p".into(),
                i.to_string(),
                "-h".into(),
                hostfile.display().to_string(),
            ];
            match command(&flags).spawn() {
                Ok(c) => children.push(c),
                Err(source) => {
                    kill_all(&mut children);
                    return Err(ClusterError::Launch { source });
                }
            }
        }
        match wait_all(&mut children, settings.grace, &*settings.clock) {
            Ok(()) => return Ok(attempt),
            Err(e) if attempt > settings.retries => return Err(e),
            Err(_) => {}
        }
    }
}

fn kill_all(children: &mut [Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Waits for every child; after the first failure, gives the others
/// `grace` and then kills them.
fn wait_all(
    children: &mut [Child],
    grace: Duration,
    clock: &dyn Clock,
) -> Result<(), ClusterError> {
    let mut done = vec![false; children.len()];
    let mut failed: Option<ClusterError> = None;
    let mut deadline: Option<Duration> = None;
    loop {
        for (i, c) in children.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            match c.try_wait() {
                Ok(Some(status)) => {
                    done[i] = true;
                    if !status.success() && failed.is_none() {
                        failed = Some(ClusterError::ProcessFailed {
                            process: i,
                            status: status.to_string(),
                        });
                        deadline = Some(clock.now().saturating_add(grace));
                    }
                }
                Ok(None) => {}
                Err(source) => {
                    kill_all(children);
                    return Err(ClusterError::Launch { source });
                }
            }
        }
        if done.iter().all(|d| *d) {
            return failed.map_or(Ok(()), Err);
        }
        if deadline.is_some_and(|d| clock.now() >= d) {
            kill_all(children);
            return Err(failed.expect("a deadline is set after a failure"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
