//! Running a closure on every worker of this process under timely, with
//! the connect timeout and a worker's panic turned into typed errors.

use std::panic::{catch_unwind, AssertUnwindSafe};

use timely::worker::Worker;

use crate::cluster::ClusterConfig;
use crate::error::{ClusterError, JobError};
use crate::sync::mpsc;

/// Runs `f` on every worker of this process under timely; waits at most
/// the connect timeout for the processes to connect. A worker that panics
/// (timely's does when a peer's connection breaks) is reported as
/// [`ClusterError::WorkerLost`].
pub(crate) fn execute<T, F>(cluster: &ClusterConfig, f: F) -> Result<Vec<T>, JobError>
where
    T: Send + 'static,
    F: Fn(&mut Worker) -> Result<T, JobError> + Send + Sync + 'static,
{
    cluster.validate()?;
    let config = cluster.to_timely();
    let local = cluster.threads_per_process();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<T, JobError>)>();
    let (start_tx, start_rx) = mpsc::channel::<String>();
    std::thread::Builder::new()
        .name("mapreduce-cluster".into())
        .spawn(move || {
            // Each worker sends its result before returning: dropping
            // timely's guards may panic too (its network threads do when a
            // peer goes away), which only this thread sees.
            let r = catch_unwind(AssertUnwindSafe(|| {
                timely::execute(config, move |worker| {
                    let _ = started_tx.send(());
                    let index = worker.index();
                    let r = match catch_unwind(AssertUnwindSafe(|| f(worker))) {
                        Ok(r) => r,
                        Err(p) => Err(JobError::Cluster(ClusterError::WorkerLost {
                            worker: index,
                            message: crate::runner::panic_message(&*p),
                        })),
                    };
                    let _ = done_tx.send((index, r));
                })
                .map(|guards| drop(guards.join()))
            }));
            if let Ok(Err(message)) = r {
                let _ = start_tx.send(message);
            }
        })
        .map_err(|source| JobError::Spawn { source })?;
    let timeout = cluster.connect_timeout_value();
    match started_rx.recv_timeout(timeout) {
        Ok(()) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(ClusterError::Unreachable { timeout }.into())
        }
        // timely returned before starting any worker: its error follows.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let message = start_rx
                .recv()
                .unwrap_or_else(|_| "timely stopped before starting".into());
            return Err(ClusterError::Start { message }.into());
        }
    }
    let mut results: Vec<(usize, Result<T, JobError>)> = done_rx.iter().take(local).collect();
    if results.len() < local {
        return Err(ClusterError::Start {
            message: "a worker ended without a result".into(),
        }
        .into());
    }
    results.sort_unstable_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(local);
    let mut first_err = None;
    for (_, r) in results {
        match r {
            Ok(v) => out.push(v),
            Err(e) => {
                // A worker lost is the cause; the others' errors follow it.
                let lost = matches!(e, JobError::Cluster(ClusterError::WorkerLost { .. }));
                if first_err.is_none() || lost {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
