//! One backend: the user's value plus the state every strategy and the
//! health machinery read (weight, tier, in-flight count, latency estimate,
//! ejection and probe state).

use std::fmt;

use crate::sync::{
    fence, Arc, AtomicBool, AtomicU32, AtomicU64, Mutex, Ordering, Shared, WeakShared,
};

/// A backend's identity inside one [`Balancer`](crate::Balancer): assigned in
/// the order backends are added, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendId(pub u64);

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend#{}", self.0)
    }
}

/// The peak-EWMA latency estimate: a slower sample replaces the estimate at
/// once, a faster one is blended in with weight `1 - exp(-elapsed / tau)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ewma {
    /// Estimate in nanoseconds; always finite and non-negative.
    pub(crate) estimate: f64,
    /// Clock reading (nanoseconds) of the last update.
    pub(crate) stamp: u64,
}

impl Ewma {
    /// Decay factor `exp(-elapsed / tau)`; a clock that went backwards counts
    /// as no time passed.
    #[inline]
    pub(crate) fn decay(stamp: u64, now: u64, tau_nanos: f64) -> f64 {
        let elapsed = now.saturating_sub(stamp) as f64;
        (-elapsed / tau_nanos).exp()
    }

    /// Folds in one sample (nanoseconds, finite and positive) taken at `now`.
    pub(crate) fn observe(&mut self, sample: f64, now: u64, tau_nanos: f64) {
        if sample > self.estimate {
            self.estimate = sample;
        } else {
            let w = Self::decay(self.stamp, now, tau_nanos);
            self.estimate = self.estimate * w + sample * (1.0 - w);
        }
        self.stamp = self.stamp.max(now);
    }

    /// The estimate as seen at `now` when nothing was observed since the
    /// last update: decayed towards zero, as tower's `PeakEwma::load` does,
    /// so an idle backend becomes attractive again over time.
    #[inline]
    pub(crate) fn decayed(estimate: f64, stamp: u64, now: u64, tau_nanos: f64) -> f64 {
        estimate * Self::decay(stamp, now, tau_nanos)
    }
}

/// The per-backend state the strategies read: weight, tier, the latency
/// estimate and the health state. Obtained from a
/// [`Candidates`](crate::Candidates) slice inside a strategy (which also
/// gives the in-flight count, [`Candidates::in_flight`](crate::Candidates::in_flight)),
/// or as a [`BackendStats`](crate::BackendStats) snapshot from the balancer.
///
/// Aligned to 128 bytes so that two backends' estimates never share a cache
/// line (x86 prefetches lines in pairs).
#[repr(align(128))]
#[derive(Debug)]
pub struct BackendState {
    id: BackendId,
    weight: u32,
    tier: u32,
    /// Still a member of its balancer (cleared by `remove` before the
    /// membership reference is dropped, so a count read meanwhile is high,
    /// never low).
    pub(crate) member: AtomicBool,
    /// Bits of the `f64` estimate (nanoseconds), read without a lock.
    ewma_bits: AtomicU64,
    /// Clock reading of the last estimate update.
    ewma_stamp: AtomicU64,
    /// Serialises writers of the two fields above.
    ewma_lock: Mutex<()>,
    pub(crate) consecutive_failures: AtomicU32,
    /// Clock reading until which the backend is ejected; 0 when it is not.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) times_ejected: AtomicU32,
    /// The active health check's verdict (true until a probe says otherwise).
    pub(crate) probe_healthy: AtomicBool,
    /// Consecutive probe results that disagree with `probe_healthy`.
    pub(crate) probe_streak: AtomicU32,
    /// Clock reading at which the next probe is due.
    pub(crate) next_probe_at: AtomicU64,
    /// Able to take a request (cleared while a tower backend's
    /// `poll_ready` is pending); a backend that is not is no candidate.
    pub(crate) ready: AtomicBool,
    /// Clock reading (at least 1) at which the backend joined or returned
    /// to service, from which its slow start runs; 0 when it started warm.
    pub(crate) warm_since: AtomicU64,
    /// Requests (high half) and failures (low half) in the current
    /// outlier-detection interval.
    pub(crate) window_counts: AtomicU64,
}

// One backend's state is one 128-byte block (a pair of 64-byte lines) and
// shares it with no other backend's. Under loom the atomics are larger.
const _: () = assert!(std::mem::align_of::<BackendState>() == 128);
#[cfg(not(sysblocks_loom))]
const _: () = assert!(std::mem::size_of::<BackendState>() == 128);

impl BackendState {
    pub(crate) fn new(
        id: BackendId,
        weight: u32,
        tier: u32,
        initial_estimate: f64,
        now: u64,
    ) -> Self {
        Self {
            id,
            weight,
            tier,
            member: AtomicBool::new(true),
            ewma_bits: AtomicU64::new(initial_estimate.to_bits()),
            ewma_stamp: AtomicU64::new(now),
            ewma_lock: Mutex::new(()),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            probe_healthy: AtomicBool::new(true),
            probe_streak: AtomicU32::new(0),
            next_probe_at: AtomicU64::new(now),
            ready: AtomicBool::new(true),
            warm_since: AtomicU64::new(0),
            window_counts: AtomicU64::new(0),
        }
    }

    /// The backend's identity.
    #[inline]
    #[must_use]
    pub fn id(&self) -> BackendId {
        self.id
    }

    /// The weight given when the backend was added (at least 1).
    #[inline]
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The failover tier: 0 is the most preferred.
    #[inline]
    #[must_use]
    pub fn tier(&self) -> u32 {
        self.tier
    }

    /// The peak-EWMA latency estimate in nanoseconds as stored (not decayed
    /// to the present), with the clock reading of its last update.
    #[inline]
    #[must_use]
    pub fn latency_estimate(&self) -> (f64, u64) {
        (
            f64::from_bits(self.ewma_bits.load(Ordering::Relaxed)),
            self.ewma_stamp.load(Ordering::Relaxed),
        )
    }

    /// Records one latency sample (nanoseconds). Samples that are zero,
    /// negative or not finite are ignored.
    pub(crate) fn observe_latency(&self, sample: f64, now: u64, tau_nanos: f64) {
        if !(sample.is_finite() && sample > 0.0) {
            return;
        }
        let _g = self.ewma_lock.lock();
        let (estimate, stamp) = self.latency_estimate();
        let mut e = Ewma { estimate, stamp };
        e.observe(sample, now, tau_nanos);
        self.ewma_bits
            .store(e.estimate.to_bits(), Ordering::Relaxed);
        self.ewma_stamp.store(e.stamp, Ordering::Relaxed);
    }

    /// Whether outlier detection has this backend ejected (its ejection may
    /// already have expired and be waiting for the next pick to notice).
    #[inline]
    #[must_use]
    pub fn is_ejected(&self) -> bool {
        self.ejected_until.load(Ordering::Acquire) != 0
    }

    /// Whether the active health check currently considers it healthy.
    #[inline]
    #[must_use]
    pub fn is_probe_healthy(&self) -> bool {
        self.probe_healthy.load(Ordering::Acquire)
    }

    /// Whether the backend can take a request now (false while a tower
    /// backend's `poll_ready` is pending). A backend that is not ready is
    /// not a candidate, in panic mode neither.
    #[inline]
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Eligible for traffic outside panic mode: not ejected, probe healthy.
    #[inline]
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        !self.is_ejected() && self.is_probe_healthy()
    }
}

/// A backend: the user's value and its [`BackendState`].
///
/// The balancer keeps each backend in a strong handle (`Arc`) of which it
/// owns exactly one while the backend is a member; every [`Pick`](crate::Pick)
/// owns one more. The handle's strong count is therefore the in-flight count
/// plus one, and taking or dropping a pick is one atomic increment or
/// decrement: there is no separate counter to keep in step. Aligned to 128
/// bytes so that the counter (at the start of the allocation) has its cache
/// lines to itself.
#[repr(align(128))]
#[derive(Debug)]
pub struct Backend<T> {
    state: Arc<BackendState>,
    value: T,
}

// The value starts 128 bytes into the handle's allocation, after the
// reference counts, so the counts have their lines to themselves.
const _: () = assert!(std::mem::align_of::<Backend<()>>() == 128);

impl<T> Backend<T> {
    pub(crate) fn new(value: T, state: BackendState) -> Self {
        Self {
            state: Arc::new(state),
            value,
        }
    }

    pub(crate) fn shared_state(&self) -> &Arc<BackendState> {
        &self.state
    }

    /// The user's value.
    #[inline]
    #[must_use]
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The state strategies read.
    #[inline]
    #[must_use]
    pub fn state(&self) -> &BackendState {
        &self.state
    }
}

/// One candidate in a snapshot: the state strategies read and a weak handle
/// that `pick` upgrades into the [`Pick`](crate::Pick)'s strong one.
pub(crate) struct Slot<T> {
    pub(crate) state: Arc<BackendState>,
    pub(crate) backend: WeakShared<Backend<T>>,
}

impl<T> Slot<T> {
    pub(crate) fn new(b: &Shared<Backend<T>>) -> Self {
        Self {
            state: Arc::clone(b.shared_state()),
            backend: Shared::downgrade(b),
        }
    }
}

/// Requests in flight on a backend, from its strong handle: the count less
/// the balancer's own reference while it is a member.
#[inline]
pub(crate) fn in_flight_of<T>(b: &Shared<Backend<T>>) -> u64 {
    // The count first, then the flag: `remove` clears the flag before it
    // drops its reference, so a count that no longer includes that reference
    // is followed (through the fence) by a cleared flag. The other order
    // could subtract a reference that is already gone.
    let n = Shared::strong_count(b) as u64;
    fence(Ordering::Acquire);
    let member = b.state().member.load(Ordering::Relaxed);
    n.saturating_sub(u64::from(member))
}

/// The same from a weak handle held by a snapshot. The snapshot only holds
/// members, so the balancer's reference is subtracted unconditionally (a
/// backend removed while a stale snapshot is read counts one low; such a
/// snapshot is replaced before the next pick after the removal).
#[inline]
pub(crate) fn in_flight_weak<T>(b: &WeakShared<Backend<T>>) -> u64 {
    (b.strong_count() as u64).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: f64 = 10e9;

    #[test]
    fn slower_sample_replaces_at_once() {
        let mut e = Ewma {
            estimate: 5.0e6,
            stamp: 0,
        };
        e.observe(9.0e6, 1, TAU);
        assert_eq!(e.estimate, 9.0e6);
    }

    #[test]
    fn faster_sample_decays_in_with_time_constant() {
        let mut e = Ewma {
            estimate: 10.0e6,
            stamp: 0,
        };
        // One time constant later the old estimate keeps weight 1/e.
        e.observe(2.0e6, 10_000_000_000, TAU);
        let w = (-1.0f64).exp();
        let expect = 10.0e6 * w + 2.0e6 * (1.0 - w);
        assert!(
            (e.estimate - expect).abs() < 1e-6,
            "{} vs {expect}",
            e.estimate
        );
        // No time passed: a faster sample changes nothing.
        let before = e.estimate;
        e.observe(1.0, 10_000_000_000, TAU);
        assert_eq!(e.estimate, before);
    }

    #[test]
    fn clock_going_back_counts_as_no_time() {
        let mut e = Ewma {
            estimate: 10.0,
            stamp: 100,
        };
        e.observe(1.0, 50, TAU);
        assert_eq!(e.estimate, 10.0);
        assert_eq!(e.stamp, 100);
    }

    #[test]
    fn bad_latency_samples_are_ignored() {
        let s = BackendState::new(BackendId(0), 1, 0, 7.0, 0);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            s.observe_latency(bad, 10, TAU);
            assert_eq!(s.latency_estimate(), (7.0, 0));
        }
        s.observe_latency(9.0, 10, TAU);
        assert_eq!(s.latency_estimate(), (9.0, 10));
    }
}
