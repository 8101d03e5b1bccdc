//! The async active health check: a tokio task that, every interval (plus
//! jitter), starts a [`Probe`] of each due backend on a task of its own,
//! under a timeout, and applies the verdicts.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::balancer::Balancer;
use crate::error::BuildError;
use crate::probe::Probe;
use crate::rng::{entropy_seed, SplitMix};
use crate::strategy::Strategy;
use crate::sync::StdArc;

/// The async checker's timing beyond
/// [`HealthCheck`](crate::HealthCheck)'s interval and thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTiming {
    /// How long a probe may take; one still running then is cut off and
    /// counts as failed (default 1 s, Envoy's usual setting).
    pub timeout: Duration,
    /// Up to this much (uniformly drawn, per round) is added to each
    /// interval, so that many balancers do not probe in step (default 0).
    pub jitter: Duration,
}

impl Default for ProbeTiming {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            jitter: Duration::ZERO,
        }
    }
}

impl ProbeTiming {
    fn validate(&self) -> Result<(), BuildError> {
        if self.timeout.is_zero() {
            return Err(BuildError::Zero {
                setting: "ProbeTiming::timeout",
            });
        }
        Ok(())
    }
}

/// The handle of the task started by
/// [`Balancer::spawn_async_health_checker`]; dropping it (or
/// [`AsyncHealthChecker::stop`]) stops the task. Probes already started
/// finish or time out on their own tasks.
#[must_use = "the health checker stops when its handle is dropped"]
pub struct AsyncHealthChecker {
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for AsyncHealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncHealthChecker")
            .field("running", &!self.task.is_finished())
            .finish()
    }
}

impl AsyncHealthChecker {
    /// Stops the checker (what dropping the handle does).
    pub fn stop(self) {}
}

impl Drop for AsyncHealthChecker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T: Send + Sync + 'static, S: Strategy> Balancer<T, S> {
    /// Runs the active health check on the current tokio runtime: a round
    /// at once, then one every [`HealthCheck::interval`](crate::HealthCheck::interval)
    /// plus up to `timing.jitter`. Each round starts `probe` on every
    /// backend whose probe is due (by the balancer's clock), each on a task
    /// of its own, so probes run concurrently and a slow one delays no
    /// other; a probe that panics, or has not answered within
    /// `timing.timeout`, counts as failed. Verdicts go through the
    /// thresholds as in [`Balancer::check_health`]. No lock is held while
    /// a probe runs, so `pick` never waits for one.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero `timing.timeout`.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn_async_health_checker(
        self: &StdArc<Self>,
        timing: ProbeTiming,
        probe: impl Probe<T>,
    ) -> Result<AsyncHealthChecker, BuildError> {
        timing.validate()?;
        let balancer = StdArc::clone(self);
        let probe = StdArc::new(probe);
        let interval = self.health_interval();
        let jitter_nanos = u64::try_from(timing.jitter.as_nanos()).unwrap_or(u64::MAX);
        let task = tokio::spawn(async move {
            let rng = SplitMix::new(entropy_seed());
            loop {
                for backend in balancer.claim_due_probes() {
                    // Only the start runs here; a panic in it is a failure.
                    let started = catch_unwind(AssertUnwindSafe(|| probe.probe(backend.value())));
                    let balancer = StdArc::clone(&balancer);
                    tokio::spawn(async move {
                        let ok = match started {
                            Ok(future) => {
                                let mut run = tokio::spawn(future);
                                match tokio::time::timeout(timing.timeout, &mut run).await {
                                    Ok(Ok(ok)) => ok,
                                    // Panicked.
                                    Ok(Err(_)) => false,
                                    Err(_) => {
                                        run.abort();
                                        false
                                    }
                                }
                            }
                            Err(_) => false,
                        };
                        if balancer.apply_probe(backend.state(), ok) {
                            let inner = balancer.inner.lock();
                            balancer.publish(&inner);
                        }
                    });
                }
                let extra = match jitter_nanos {
                    0 => 0,
                    j => rng.next_u64() % j.saturating_add(1),
                };
                tokio::time::sleep(interval.saturating_add(Duration::from_nanos(extra))).await;
            }
        });
        Ok(AsyncHealthChecker { task })
    }
}
