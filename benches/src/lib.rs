//! Shared helpers for the sysblocks benches and the `compare` binary:
//! workload generators and the location of the shared data sets.

use std::path::PathBuf;

pub mod alloc;
pub mod compare;
pub mod harness;
pub mod report;
pub mod workloads;

/// Where the shared data sets live relative to the workspace root
/// (`../shared/data`), if they are present. A user's clone has no
/// `../shared`; callers print "skipped: ../shared/data not found" then.
#[must_use]
pub fn shared_data_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("../shared/data");
    dir.is_dir().then_some(dir)
}
