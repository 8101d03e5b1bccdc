//! Passive outlier detection per node, as the `lb` crate does it: a node
//! that fails `consecutive_failures` operations in a row is ejected (its
//! keys go to the next node, or miss) for a back-off that grows with each
//! ejection, then re-admitted on trial; one success clears its count.

use std::time::Duration;

use sysblocks_clock::saturating_nanos;

use crate::error::BuildError;
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// When a failing node is ejected and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejection {
    /// Failures in a row (timeouts, connection or server errors,
    /// unexpected replies) that eject a node.
    pub consecutive_failures: u32,
    /// The first ejection's length; the n-th lasts n times as long.
    pub base_ejection_time: Duration,
    /// The cap on an ejection's length.
    pub max_ejection_time: Duration,
}

impl Default for Ejection {
    /// 3 failures in a row; 1 s, growing to at most 30 s.
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(30),
        }
    }
}

impl Ejection {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if self.consecutive_failures == 0 {
            return Err(BuildError::Zero {
                setting: "Ejection::consecutive_failures",
            });
        }
        if self.base_ejection_time.is_zero() {
            return Err(BuildError::Zero {
                setting: "Ejection::base_ejection_time",
            });
        }
        if self.max_ejection_time < self.base_ejection_time {
            return Err(BuildError::Invalid {
                setting: "Ejection::max_ejection_time",
                reason: "must be at least base_ejection_time",
            });
        }
        Ok(())
    }

    fn length(&self, times: u32) -> u64 {
        let base = saturating_nanos(self.base_ejection_time);
        base.saturating_mul(u64::from(times))
            .min(saturating_nanos(self.max_ejection_time))
    }
}

/// One node's failure count and ejection.
#[derive(Debug, Default)]
pub(crate) struct Health {
    consecutive: AtomicU32,
    /// Clock reading until which the node is ejected; 0 when it is not.
    ejected_until: AtomicU64,
    times_ejected: AtomicU32,
}

impl Health {
    /// Whether the node takes traffic at `now`; re-admits it (on trial)
    /// once its ejection has run out.
    pub(crate) fn is_available(&self, now: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        if self
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.consecutive.store(0, Ordering::Relaxed);
        }
        true
    }

    /// Whether the node is ejected right now (without re-admitting it).
    pub(crate) fn is_ejected(&self, now: u64) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        until != 0 && now < until
    }

    pub(crate) fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    pub(crate) fn on_success(&self) {
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    /// Counts a failure at `now`; ejects the node when the count reaches
    /// the threshold. Returns whether this call ejected it.
    pub(crate) fn on_failure(&self, now: u64, policy: &Ejection) -> bool {
        let n = self.consecutive.fetch_add(1, Ordering::AcqRel) + 1;
        if n < policy.consecutive_failures || self.ejected_until.load(Ordering::Acquire) != 0 {
            return false;
        }
        // Counted only by the call that ejects: two failures that reach
        // the threshold together make one ejection, not two.
        let times = self.times_ejected.load(Ordering::Relaxed) + 1;
        let until = now.saturating_add(policy.length(times)).max(1);
        let ejected = self
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if ejected {
            self.times_ejected.fetch_add(1, Ordering::Relaxed);
        }
        self.consecutive.store(0, Ordering::Relaxed);
        ejected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn ejects_after_consecutive_failures_and_readmits_after_the_back_off() {
        let p = Ejection::default();
        let h = Health::default();
        assert!(!h.on_failure(0, &p));
        h.on_success();
        assert!(!h.on_failure(0, &p));
        assert!(!h.on_failure(0, &p));
        assert!(h.on_failure(0, &p));
        assert!(!h.is_available(S / 2));
        assert!(h.is_available(S));
        // The second ejection lasts twice as long.
        for _ in 0..3 {
            h.on_failure(S, &p);
        }
        assert!(h.is_ejected(2 * S));
        assert!(h.is_available(3 * S));
        assert_eq!(h.times_ejected(), 2);
    }

    #[test]
    fn bad_settings_are_refused() {
        let p = Ejection {
            consecutive_failures: 0,
            ..Ejection::default()
        };
        assert!(p.validate().is_err());
        let p = Ejection {
            max_ejection_time: Duration::from_millis(1),
            ..Ejection::default()
        };
        assert!(p.validate().is_err());
    }
}

/// loom models of the ejection state: concurrent failures eject once, and a
/// re-admission racing new failures leaves a consistent state.
#[cfg(all(test, sysblocks_loom))]
mod loom_models {
    use super::{Ejection, Health};
    use crate::sync::{model, thread, Arc};
    use std::time::Duration;

    const S: u64 = 1_000_000_000;

    fn policy(consecutive_failures: u32) -> Ejection {
        Ejection {
            consecutive_failures,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(30),
        }
    }

    /// Two threads each count one failure at time 0 on a fresh node;
    /// exactly one of them reports the ejection, and it is counted once.
    fn two_failures_at_once(threshold: u32) -> Arc<Health> {
        let h = Arc::new(Health::default());
        let p = policy(threshold);
        let other = {
            let h = Arc::clone(&h);
            thread::spawn(move || h.on_failure(0, &p))
        };
        let mine = h.on_failure(0, &p);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "ejected by {mine} / {theirs}");
        assert_eq!(h.times_ejected(), 1);
        h
    }

    /// Two failures that both reach a threshold of one: exactly one call
    /// reports the ejection, and it is counted once.
    #[test]
    fn loom_concurrent_failures_eject_once() {
        model(|| {
            let h = two_failures_at_once(1);
            assert!(h.is_ejected(0));
            assert!(!h.is_available(S / 2));
            assert!(h.is_available(S));
        });
    }

    /// With a threshold of two, two concurrent failures eject exactly once
    /// (whichever counts second), never zero times.
    #[test]
    fn loom_failures_reaching_the_threshold_together_eject() {
        model(|| {
            let h = two_failures_at_once(2);
            assert!(h.is_ejected(S / 2));
        });
    }

    /// Two readers find the back-off over at the same time: both see the
    /// node available, and it is re-admitted (not ejected) afterwards,
    /// while a failure counted meanwhile is either cleared or kept, never
    /// turned into an ejection by one failure under a threshold of two.
    #[test]
    fn loom_readmission_races_readers_and_a_failure() {
        model(|| {
            let h = Arc::new(Health::default());
            let p = policy(2);
            assert!(!h.on_failure(0, &p));
            assert!(h.on_failure(0, &p));
            let reader = {
                let h = Arc::clone(&h);
                thread::spawn(move || h.is_available(S))
            };
            let failer = {
                let h = Arc::clone(&h);
                thread::spawn(move || h.on_failure(S, &p))
            };
            assert!(h.is_available(S));
            assert!(reader.join().unwrap());
            let ejected_again = failer.join().unwrap();
            assert!(!ejected_again, "one failure under a threshold of two");
            assert!(!h.is_ejected(S));
            assert_eq!(h.times_ejected(), 1);
        });
    }
}
