//! A balancer's health transitions: the active check's verdicts, outlier
//! ejection (consecutive failures, and once per interval success rate and
//! failure percentage) and readmission, each republishing the snapshot
//! when it changes who takes traffic.

use sysblocks_clock::saturating_nanos;

use crate::backend::{Backend, BackendId, BackendState};
use crate::balancer::{Balancer, Inner};
use crate::health::OutlierDetection;
use crate::outlier::{outliers, Window};
use crate::strategy::Strategy;
use crate::sync::{Ordering, Shared};

impl<T: Send + Sync, S: Strategy> Balancer<T, S> {
    /// Runs the active health check: probes each backend whose probe is
    /// due (at most once per [`HealthCheck::interval`](crate::HealthCheck::interval)
    /// by the balancer's clock) and applies the thresholds. Call it from a
    /// timer or a simulation loop, or let
    /// [`Balancer::spawn_health_checker`] call it from a thread; calling it
    /// more often than the interval is cheap. The probe runs without any
    /// lock held, and counts as a request in flight to its backend while it
    /// runs. Returns how many backends were probed.
    pub fn check_health(&self, mut probe: impl FnMut(&T) -> bool) -> usize {
        let due = self.claim_due_probes();
        let mut changed = false;
        for b in &due {
            let ok = probe(b.value());
            changed |= self.apply_probe(b.state(), ok);
        }
        if changed {
            let inner = self.inner.lock();
            self.publish(&inner);
        }
        due.len()
    }

    /// The backends whose probe is due, each claimed (its next probe moved
    /// one interval on) so that no other round probes it meanwhile.
    pub(crate) fn claim_due_probes(&self) -> Vec<Shared<Backend<T>>> {
        let members: Vec<_> = self
            .inner
            .lock()
            .members
            .iter()
            .map(Shared::downgrade)
            .collect();
        let now = self.clock.now_nanos();
        let interval = saturating_nanos(self.settings.health.interval);
        members
            .iter()
            // Removed since the list was taken, and no longer in flight.
            .filter_map(|weak| weak.upgrade())
            .filter(|b| {
                let s = b.state();
                let due = s.next_probe_at.load(Ordering::Acquire);
                now >= due
                    && s.next_probe_at
                        .compare_exchange(
                            due,
                            now.saturating_add(interval),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
            })
            .collect()
    }

    /// Applies one probe's verdict to the thresholds; `true` when the
    /// backend's probe health changed (the caller republishes).
    pub(crate) fn apply_probe(&self, s: &BackendState, ok: bool) -> bool {
        let healthy = s.probe_healthy.load(Ordering::Acquire);
        if ok == healthy {
            s.probe_streak.store(0, Ordering::Relaxed);
            return false;
        }
        let streak = s.probe_streak.fetch_add(1, Ordering::AcqRel) + 1;
        let threshold = if healthy {
            self.settings.health.unhealthy_threshold
        } else {
            self.settings.health.healthy_threshold
        };
        if streak < threshold {
            return false;
        }
        if ok {
            s.warm_since
                .store(self.clock.now_nanos().max(1), Ordering::Relaxed);
        }
        s.probe_healthy.store(ok, Ordering::Release);
        s.probe_streak.store(0, Ordering::Relaxed);
        true
    }

    /// Readmits backends whose ejection has expired. Skipped when another
    /// thread holds the membership lock: `pick` must not block, and the
    /// current snapshot stays valid (it merely lacks the readmitted backend
    /// until a later pick succeeds).
    pub(crate) fn readmit(&self) {
        let Some(inner) = self.inner.try_lock() else {
            return;
        };
        let now = self.clock.now_nanos();
        let mut changed = false;
        for b in &inner.members {
            let s = b.state();
            let until = s.ejected_until.load(Ordering::Acquire);
            if until != 0 && until <= now {
                s.consecutive_failures.store(0, Ordering::Relaxed);
                s.warm_since.store(now.max(1), Ordering::Relaxed);
                s.ejected_until.store(0, Ordering::Release);
                changed = true;
            }
        }
        if changed {
            self.publish(&inner);
        }
    }

    /// Ejects backend `id` if its failure streak still reaches the
    /// threshold (another thread may have ejected it or reset the streak).
    pub(crate) fn eject(&self, od: &OutlierDetection, id: BackendId) {
        let inner = self.inner.lock();
        let Some(b) = inner.members.iter().find(|b| b.state().id() == id) else {
            return;
        };
        if b.state().consecutive_failures.load(Ordering::Acquire) < od.consecutive_failures {
            return;
        }
        if self.eject_locked(&inner, b.state(), od, self.clock.now_nanos()) {
            self.publish(&inner);
        }
    }

    /// Ejects `s` unless it is ejected already or the cap on ejections is
    /// reached; the n-th ejection lasts n base times, capped. Called with
    /// the membership lock held; `true` when it ejected (the caller
    /// republishes).
    fn eject_locked(
        &self,
        inner: &Inner<T>,
        s: &BackendState,
        od: &OutlierDetection,
        now: u64,
    ) -> bool {
        if s.is_ejected() {
            return false;
        }
        let ejected = inner
            .members
            .iter()
            .filter(|b| b.state().is_ejected())
            .count();
        if ejected >= od.max_ejected(inner.members.len()) {
            return false;
        }
        let times = s.times_ejected.load(Ordering::Relaxed).saturating_add(1);
        s.times_ejected.store(times, Ordering::Relaxed);
        let until = now
            .saturating_add(saturating_nanos(od.ejection_time(times)))
            .max(1);
        s.consecutive_failures.store(0, Ordering::Relaxed);
        s.ejected_until.store(until, Ordering::Release);
        true
    }

    /// Counts one outcome towards the interval's success rate and failure
    /// percentage, and runs the checks when the interval is over.
    #[inline]
    pub(crate) fn count_outcome(&self, s: &BackendState, failed: bool) {
        if !self.settings.counts_outcomes() {
            return;
        }
        s.window_counts
            .fetch_add(Window::increment(failed), Ordering::Relaxed);
        let now = self.clock.now_nanos();
        let due = self.next_sweep_at.load(Ordering::Acquire);
        if now >= due && self.claim_sweep(due, now) {
            self.sweep(now);
        }
    }

    fn claim_sweep(&self, due: u64, now: u64) -> bool {
        let next = now.saturating_add(saturating_nanos(self.settings.ejection_interval));
        self.next_sweep_at
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends the current outlier-detection interval now: runs Envoy's
    /// success-rate and failure-percentage checks (those configured) on
    /// each backend's requests and failures since the interval began,
    /// ejects the outliers (the lowest success rate first, within the
    /// ejection cap) and starts the next interval. The balancer does this
    /// by itself on the first outcome reported after an interval ends;
    /// call it from a timer to run the checks when traffic is sparse.
    /// Returns how many backends it ejected.
    pub fn sweep_outliers(&self) -> usize {
        let now = self.clock.now_nanos();
        let next = now.saturating_add(saturating_nanos(self.settings.ejection_interval));
        self.next_sweep_at.store(next, Ordering::Release);
        self.sweep(now)
    }

    fn sweep(&self, now: u64) -> usize {
        let Some(od) = &self.settings.outlier else {
            return 0;
        };
        let inner = self.inner.lock();
        let windows: Vec<Option<Window>> = inner
            .members
            .iter()
            .map(|b| {
                let s = b.state();
                let w = Window::unpack(s.window_counts.swap(0, Ordering::AcqRel));
                (!s.is_ejected()).then_some(w)
            })
            .collect();
        let found = outliers(
            &windows,
            self.settings.success_rate.as_ref(),
            self.settings.failure_percentage.as_ref(),
        );
        let ejected = found
            .into_iter()
            .filter(|&i| self.eject_locked(&inner, inner.members[i].state(), od, now))
            .count();
        if ejected > 0 {
            self.publish(&inner);
        }
        ejected
    }
}
