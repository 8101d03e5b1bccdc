//! The same [`Job`](crate::Job) on timely dataflow, across threads and
//! processes (feature `timely`).
//!
//! [`Runner::run_cluster`](crate::Runner::run_cluster) and
//! [`Runner::run_cluster_to_dir`](crate::Runner::run_cluster_to_dir) run
//! one job on `-n` processes × `-w` workers ([`ClusterConfig`]). Every
//! process plans the same splits from the shared input path; worker `w`
//! of `W` maps splits `w`, `w + W`, ... with the runner's map phase
//! (combining and spilling within its share of the memory budget), sends
//! each partition's sorted frames to the partition's owner (worker
//! `p mod W`) through a timely exchange, and merges and reduces the
//! partitions it owns in split order, as the single-process runner does.
//! So the partitions, concatenated in order, equal the single-process
//! runner's byte for byte.
//!
//! Failures: timely does not recover within a run. A task still retries
//! as in the runner; a task that fails for good fails the job on every
//! worker ([`ClusterError::PeerFailed`](crate::ClusterError::PeerFailed)
//! on the others). A process that goes away makes the others fail with
//! [`ClusterError::WorkerLost`](crate::ClusterError::WorkerLost) once
//! their workers next poll the exchange; processes that cannot connect
//! fail with [`ClusterError::Unreachable`](crate::ClusterError::Unreachable)
//! after the connect timeout (timely's threads keep trying in the
//! background, so the process should then exit). The local launcher
//! ([`launch_local`]) retries the whole job.

mod config;
pub(crate) mod execute;
pub(crate) mod inbox;
mod launch;

pub use config::ClusterConfig;
pub use launch::{free_ports, launch_local, LocalLaunch};

use crate::counters::Counters;

/// The result of a job on a cluster, as seen by one process.
#[derive(Debug)]
pub struct ClusterOutput<K, O> {
    /// The partitions this process reduced, each sorted by key, with their
    /// index, in partition order.
    pub partitions: Vec<(usize, Vec<(K, O)>)>,
    /// Counters summed over every worker of every process: the job's own
    /// (from successful attempts, see [`Counters`]) and the runner's:
    /// `mapreduce.input_bytes` and `mapreduce.input_records` (read),
    /// `mapreduce.exchange_bytes` (frame bytes sent through the exchange)
    /// and `mapreduce.exchange_remote_bytes` (those sent to another
    /// worker), and `mapreduce.worker_nanos`, the time each worker ran
    /// from the start (every worker of every process started) to its
    /// partitions reduced,
    /// by the runner's clock (summed: divide by the workers for the mean).
    pub counters: Counters,
}

impl<K: Ord, O> ClusterOutput<K, O> {
    /// Every key of this process's partitions with its output, sorted by
    /// key: on a single process, what [`Runner::run`](crate::Runner::run)
    /// returns.
    #[must_use]
    pub fn into_sorted(self) -> Vec<(K, O)> {
        crate::merge::merge_sorted(self.partitions.into_iter().map(|(_, v)| v).collect())
    }
}
