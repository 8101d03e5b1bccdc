//! The interval-driven runner of the active health check: a background
//! thread that calls [`Balancer::check_health`] every
//! [`HealthCheck::interval`](crate::HealthCheck::interval) until its handle
//! is dropped.

use std::fmt;
use std::time::Duration;

use crate::balancer::Balancer;
use crate::strategy::Strategy;
use crate::sync::{Arc, Condvar, Mutex};

/// The handle of a health-check thread started by
/// [`Balancer::spawn_health_checker`]. Dropping it (or calling
/// [`HealthChecker::stop`]) wakes the thread, lets a probe round in progress
/// finish, and joins it.
#[must_use = "the health checker stops when its handle is dropped"]
pub struct HealthChecker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthChecker")
            .field("running", &self.thread.is_some())
            .finish()
    }
}

impl HealthChecker {
    /// Stops the thread and waits for it (what dropping the handle does).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        // A probe that panicked has already ended the thread; nothing to
        // report from a destructor.
        let _ = thread.join();
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl<T: Send + Sync + 'static, S: Strategy> Balancer<T, S> {
    /// Runs the active health check on a background thread: a round of
    /// [`Balancer::check_health`] with `probe` at once, then one every
    /// [`HealthCheck::interval`](crate::HealthCheck::interval) of real time
    /// (which backends are due is still decided by the balancer's clock).
    /// The thread holds the balancer through `self`'s `Arc` and stops when
    /// the returned handle is dropped.
    ///
    /// # Panics
    ///
    /// If the operating system cannot start a thread. A panic inside
    /// `probe` ends the thread (the balancer keeps the last verdicts).
    pub fn spawn_health_checker<P>(self: &Arc<Self>, mut probe: P) -> HealthChecker
    where
        P: FnMut(&T) -> bool + Send + 'static,
    {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let balancer = Arc::clone(self);
        let period: Duration = self.health_interval();
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lb-health-check".to_owned())
            .spawn(move || loop {
                balancer.check_health(&mut probe);
                let mut stopped = flag.0.lock();
                if !*stopped {
                    // Spurious or early wake-ups only cause an extra round,
                    // which `check_health` skips for backends not yet due.
                    let _ = flag.1.wait_for(&mut stopped, period);
                }
                if *stopped {
                    return;
                }
            })
            .expect("spawn the health-check thread");
        HealthChecker {
            stop,
            thread: Some(thread),
        }
    }
}
