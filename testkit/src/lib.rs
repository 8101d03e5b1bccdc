//! Test-only helpers shared by the sysblocks crates (never published; the
//! crates take it as a path-only dev-dependency, which `cargo package`
//! drops).
//!
//! - [`run_isolated`] runs each bad-input case in a child process of the
//!   test binary, under an address-space limit and a wall-clock timeout, so
//!   that a panic, an abort on a runaway allocation or a hang fails that
//!   case instead of stalling or killing the whole suite.
//! - [`shared_data`] finds a file under `../shared/data`, skipping visibly
//!   only when `../shared` itself is absent (a user's clone).
//! - [`redis::RedisServer`] starts a private `redis-server` for a test
//!   binary (OS-chosen port, fresh data directory), with `kill` and
//!   `restart` for failure tests; it skips visibly where none is installed.
#![forbid(unsafe_code)]

pub mod redis;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One bad-input case: a name and a body that must return normally. The
/// body asserts the typed error or the documented behaviour; a panic, an
/// abort or a hang fails the case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Unique within its suite; shown in the report.
    pub name: &'static str,
    /// The case itself.
    pub run: fn(),
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

/// Limits a child process runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Address-space limit (`RLIMIT_AS`), bytes.
    pub address_space: u64,
    /// Wall-clock time after which the child is killed and the case fails.
    pub timeout: Duration,
}

impl Default for Limits {
    /// 2 GiB of address space and 20 s: far above what any case needs and
    /// far below what a runaway allocation asks for.
    fn default() -> Self {
        Self {
            address_space: 2 << 30,
            timeout: Duration::from_secs(20),
        }
    }
}

const CASE_ENV: &str = "SYSBLOCKS_TESTKIT_CASE";

/// Runs every case of `cases` in its own child process and panics, listing
/// them, if any failed. `test_name` is the full libtest name of the calling
/// `#[test]` function (for a top-level function of an integration test
/// file, just its name): the child re-runs this binary filtered to it.
///
/// In the child (recognised by an environment variable) it runs only the
/// named case, after lowering its own address-space limit.
///
/// # Panics
///
/// If a case fails, times out or cannot be started, or if two cases share
/// a name.
pub fn run_isolated(test_name: &str, cases: &[Case], limits: Limits) {
    if let Ok(which) = std::env::var(CASE_ENV) {
        let case = cases
            .iter()
            .find(|c| c.name == which)
            .unwrap_or_else(|| panic!("no case named {which:?} in {test_name}"));
        rlimit::setrlimit(
            rlimit::Resource::AS,
            limits.address_space,
            limits.address_space,
        )
        .expect("set RLIMIT_AS");
        (case.run)();
        return;
    }
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("two cases named {:?}", w[0]);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut failed = Vec::new();
    for case in cases {
        if let Err(why) = run_child(&exe, test_name, case.name, limits) {
            eprintln!("bad input case {}: FAILED: {why}", case.name);
            failed.push(case.name);
        }
    }
    eprintln!(
        "{test_name}: {} bad-input cases, {} passed, {} failed",
        cases.len(),
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "failed bad-input cases: {failed:?}");
}

fn run_child(exe: &Path, test_name: &str, case: &str, limits: Limits) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args([
            test_name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(CASE_ENV, case)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if start.elapsed() > limits.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "did not finish within {:?} (a hang)",
                limits.timeout
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{status}\n{stdout}{stderr}"));
    }
    // The filter must have selected exactly the calling test, or the case
    // never ran and the pass would mean nothing.
    if !stdout.contains("1 passed") {
        return Err(format!(
            "the child did not run {test_name:?} exactly once:\n{stdout}"
        ));
    }
    Ok(())
}

/// The path of `relative` under the workspace's `../shared/data`, found
/// from the calling crate's manifest directory (`env!("CARGO_MANIFEST_DIR")`).
///
/// Returns `None`, after printing `skipped: ../shared/data not found`, only
/// when the `shared` folder beside the workspace does not exist (a user's
/// clone).
///
/// # Panics
///
/// When `../shared` exists but the file does not: there, as in CI, the
/// tests that need it must run.
pub fn shared_data(manifest_dir: &str, relative: &str) -> Option<PathBuf> {
    let shared = Path::new(manifest_dir).join("../../shared");
    if !shared.is_dir() {
        eprintln!("skipped: ../shared/data not found (looking for {relative})");
        return None;
    }
    let path = shared.join("data").join(relative);
    assert!(
        path.exists(),
        "../shared exists but {} does not: the data set is missing",
        path.display()
    );
    Some(path)
}
