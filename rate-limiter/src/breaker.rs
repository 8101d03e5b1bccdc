//! `Breaker`: no round trips to a store that has just failed.
//!
//! Without it, every check made while Redis is down waits the limiter's
//! whole timeout before its failure policy decides: a gateway in front of
//! a dead Redis adds the timeout to every request. With it, a failed round
//! trip opens the breaker for a cooldown, during which checks decide by
//! the policy at once; then the first check to claim it probes Redis
//! (the others keep skipping for another cooldown), and a success closes
//! the breaker.

// Only the Redis limiters use it; the loom build models it without them.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use crate::sync::{AtomicU64, Ordering};

/// A circuit breaker on one local clock (nanoseconds), lock-free.
pub(crate) struct Breaker {
    /// 0 while closed; otherwise the instant until which checks skip the
    /// store (never 0 once open).
    open_until: AtomicU64,
    /// How long a failure keeps it open; 0 turns the breaker off.
    cooldown: u64,
}

impl Breaker {
    /// A closed breaker that stays open `cooldown_ns` after a failure (0:
    /// never opens).
    pub(crate) fn new(cooldown_ns: u64) -> Self {
        Self {
            open_until: AtomicU64::new(0),
            cooldown: cooldown_ns,
        }
    }

    /// The instant a failure or a probe at `now` keeps it open until.
    fn until(&self, now: u64) -> u64 {
        now.saturating_add(self.cooldown).max(1)
    }

    /// Whether a check at `now` may make a round trip: always while
    /// closed, never before the cooldown ends, and after it for exactly
    /// one check (the probe), which moves the end a cooldown further for
    /// the others.
    #[inline]
    pub(crate) fn admit(&self, now: u64) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        self.open_until
            .compare_exchange(until, self.until(now), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// A round trip succeeded: the breaker closes.
    #[inline]
    pub(crate) fn success(&self) {
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
        }
    }

    /// A round trip at `now` failed for want of the store: the breaker
    /// opens (again) for a cooldown.
    pub(crate) fn failure(&self, now: u64) {
        if self.cooldown > 0 {
            self.open_until.store(self.until(now), Ordering::Release);
        }
    }

    /// How long a check at `now` still skips, 0 if it would not.
    pub(crate) fn remaining(&self, now: u64) -> u64 {
        self.open_until.load(Ordering::Acquire).saturating_sub(now)
    }
}

#[cfg(test)]
mod tests {
    use super::Breaker;

    #[test]
    fn opens_for_a_cooldown_then_lets_one_probe_through() {
        let b = Breaker::new(100);
        assert!(b.admit(0) && b.admit(5));
        b.failure(10);
        assert!(!b.admit(10) && !b.admit(109));
        assert_eq!(b.remaining(60), 50);
        // The cooldown is over: one probe, the others skip meanwhile.
        assert!(b.admit(110));
        assert!(!b.admit(110) && !b.admit(209));
        b.success();
        assert!(b.admit(111) && b.admit(112));
        assert_eq!(b.remaining(112), 0);
    }

    #[test]
    fn a_zero_cooldown_never_opens() {
        let b = Breaker::new(0);
        b.failure(10);
        assert!(b.admit(10) && b.admit(11));
    }

    #[test]
    fn a_failure_at_the_start_of_the_clock_still_opens() {
        let b = Breaker::new(5);
        b.failure(0);
        assert!(!b.admit(0) && !b.admit(4));
        assert!(b.admit(5));
    }
}

#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use super::Breaker;
    use crate::sync::{thread, Arc, AtomicU64, Ordering};

    /// Two checks find the cooldown over at once: exactly one probes, in
    /// every interleaving, and the other sees the breaker open.
    #[test]
    fn loom_one_probe_when_the_cooldown_ends() {
        sysblocks_sync::model(|| {
            let b = Arc::new(Breaker::new(10));
            b.failure(0);
            let probes = Arc::new(AtomicU64::new(0));
            let (b2, p2) = (Arc::clone(&b), Arc::clone(&probes));
            let t = thread::spawn(move || {
                if b2.admit(10) {
                    p2.fetch_add(1, Ordering::Relaxed);
                }
            });
            if b.admit(10) {
                probes.fetch_add(1, Ordering::Relaxed);
            }
            t.join().unwrap();
            assert_eq!(probes.load(Ordering::Relaxed), 1);
            assert!(!b.admit(15));
        });
    }

    /// A probe's success races another check's failure: the breaker ends
    /// either closed or open for a cooldown from the failure, never stuck
    /// open with an instant no failure set.
    #[test]
    fn loom_success_and_failure_race_to_a_state_one_of_them_set() {
        sysblocks_sync::model(|| {
            let b = Arc::new(Breaker::new(10));
            b.failure(0);
            let b2 = Arc::clone(&b);
            let t = thread::spawn(move || b2.success());
            b.failure(3);
            t.join().unwrap();
            let until = b.open_until.load(Ordering::Relaxed);
            assert!(until == 0 || until == 13, "{until}");
        });
    }
}
