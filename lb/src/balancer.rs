//! The [`Balancer`]: membership, the lock-free snapshot `pick` reads, health
//! transitions, and the outcomes a [`Pick`] reports.

use std::fmt;
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock, MonotonicClock, SharedClock};

use crate::backend::{in_flight_of, Backend, BackendId, BackendState, Slot};
use crate::error::BuildError;
use crate::health::{HealthCheck, OutlierDetection};
use crate::pick::{Outcomes, OwnedPick, Pick, SharedOutcomes};
use crate::strategy::{estimate_settings, Candidates, Context, Strategy};
use crate::sync::{spin_loop, Arc, ArcCell, AtomicU64, Mutex, Ordering, PerThread, Shared, StdArc};

/// What `pick` reads: the candidates of the live tier and the strategy's
/// state for exactly that set, replaced whole whenever either changes.
struct View<T, St> {
    eligible: Vec<Slot<T>>,
    /// The strategy's `State` for `eligible`.
    state: St,
    /// The earliest clock reading at which an ejected backend returns;
    /// `u64::MAX` when none is ejected, so `pick` reads the clock only when
    /// there is something to readmit.
    readmit_at: u64,
    panicking: bool,
    tier: Option<u32>,
}

/// A thread's cached snapshot and the generation it was loaded under.
type Cached<T, St> = Option<(u64, Arc<View<T, St>>)>;

struct Inner<T> {
    members: Vec<Shared<Backend<T>>>,
    next_id: u64,
    total_weight: u64,
}

/// A set of backends and a [`Strategy`] that picks one per request.
///
/// `Send + Sync` (its values must be): share it (`Arc<Balancer<..>>` or a `&`) and
/// call [`Balancer::pick`] from any number of threads. `pick` takes no lock:
/// each thread keeps the immutable snapshot of the candidates it last
/// loaded, and checks it against the balancer's generation counter (one
/// atomic load) before using it; the chosen backend's handle is then
/// taken, one atomic increment that is also its in-flight count. Adding,
/// removing, ejecting or readmitting a backend builds a new snapshot under
/// a lock that only those operations take, publishes it and bumps the
/// generation before returning, so no pick that starts afterwards uses an
/// older snapshot. A [`Pick`] owns its backend's handle, which keeps a
/// removed backend alive until the last pick of it is dropped. Each thread
/// that has picked holds on to one snapshot until its next pick (the
/// snapshot holds the backends weakly, so it keeps their values alive for no
/// longer than that).
///
/// Failover: each backend has a tier (0 by default, lower is preferred).
/// Traffic goes to the healthy backends of the lowest tier that has one
/// (active-active inside the tier) and falls to the next tier when every
/// backend of a tier is ejected or fails its probes (active-passive across
/// tiers). When no backend at all is healthy the balancer is in *panic
/// mode* (on by default, as in Envoy): it ignores health and balances over
/// every backend of the lowest tier, on the grounds that a request to a
/// possibly-sick backend beats a certain failure. With panic mode off it
/// returns `None` instead.
pub struct Balancer<T: Send + Sync, S: Strategy> {
    strategy: S,
    view: ArcCell<View<T, S::State>>,
    /// Bumped after every publication of `view`.
    generation: AtomicU64,
    /// Per thread: the generation and snapshot it last loaded.
    cache: PerThread<Cached<T, S::State>>,
    inner: Mutex<Inner<T>>,
    clock: SharedClock,
    outlier: Option<OutlierDetection>,
    health: HealthCheck,
    panic_mode: bool,
    tau_nanos: f64,
    initial_nanos: f64,
}

impl<T: Send + Sync, S: Strategy + fmt::Debug> fmt::Debug for Balancer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("strategy", &self.strategy)
            .field("backends", &self.len())
            .field("outlier", &self.outlier)
            .field("health", &self.health)
            .field("panic_mode", &self.panic_mode)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Balancer`]; see [`Balancer::builder`].
#[must_use]
pub struct BalancerBuilder<T, S> {
    strategy: S,
    backends: Vec<(T, u32, u32)>,
    clock: Option<SharedClock>,
    outlier: Option<OutlierDetection>,
    health: HealthCheck,
    panic_mode: bool,
}

impl<T, S: fmt::Debug> fmt::Debug for BalancerBuilder<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancerBuilder")
            .field("strategy", &self.strategy)
            .field("backends", &self.backends.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync, S: Strategy> BalancerBuilder<T, S> {
    /// Adds a backend in tier 0 with `weight` (must be at least 1; the
    /// strategies that ignore weights still require one).
    pub fn backend(self, value: T, weight: u32) -> Self {
        self.backend_in_tier(value, weight, 0)
    }

    /// Adds a backend in failover tier `tier` (0 is the most preferred).
    pub fn backend_in_tier(mut self, value: T, weight: u32, tier: u32) -> Self {
        self.backends.push((value, weight, tier));
        self
    }

    /// The clock for latency decay, ejection times and probe intervals
    /// (default: a [`MonotonicClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(StdArc::new(clock));
        self
    }

    /// Passive outlier detection settings (default: enabled with Envoy's
    /// defaults, [`OutlierDetection::default`]).
    pub fn outlier_detection(mut self, settings: OutlierDetection) -> Self {
        self.outlier = Some(settings);
        self
    }

    /// Turns passive outlier detection off: failures are counted but never
    /// eject.
    pub fn without_outlier_detection(mut self) -> Self {
        self.outlier = None;
        self
    }

    /// Active health check settings used by [`Balancer::check_health`]
    /// (default: [`HealthCheck::default`]).
    pub fn health_check(mut self, settings: HealthCheck) -> Self {
        self.health = settings;
        self
    }

    /// Whether to balance over unhealthy backends when none is healthy
    /// (default `true`); with `false`, `pick` returns `None` then.
    pub fn panic_mode(mut self, enabled: bool) -> Self {
        self.panic_mode = enabled;
        self
    }

    /// Builds the balancer. No backends is allowed (`pick` returns `None`
    /// until one is added).
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero weight or a zero setting,
    /// [`BuildError::WeightOverflow`] when the weights add up to more than
    /// `u32::MAX`, [`BuildError::OutOfRange`] for a setting out of its range,
    /// or whatever the strategy's [`Strategy::validate`] and
    /// [`Strategy::check_backends`] report (for
    /// [`ConsistentHashing`](crate::ConsistentHashing),
    /// [`BuildError::HashTable`] when its table cannot hold the backends).
    pub fn build(self) -> Result<Balancer<T, S>, BuildError> {
        self.strategy.validate()?;
        if let Some(od) = &self.outlier {
            od.validate()?;
        }
        self.health.validate()?;
        let mut total = 0u64;
        for (_, w, _) in &self.backends {
            total = add_weight(total, *w)?;
        }
        let clock = self
            .clock
            .unwrap_or_else(|| StdArc::new(MonotonicClock::new()));
        let (decay, initial) = estimate_settings(&self.strategy);
        let tau_nanos = saturating_nanos(decay) as f64;
        let initial_nanos = saturating_nanos(initial) as f64;
        let now = clock.now_nanos();
        let mut members = Vec::with_capacity(self.backends.len());
        for (i, (value, weight, tier)) in self.backends.into_iter().enumerate() {
            let state = BackendState::new(BackendId(i as u64), weight, tier, initial_nanos, now);
            members.push(Shared::new(Backend::new(value, state)));
        }
        let slots: Vec<Slot<T>> = members.iter().map(Slot::new).collect();
        self.strategy.check_backends(Candidates::new(&slots))?;
        drop(slots);
        let next_id = members.len() as u64;
        let inner = Inner {
            members,
            next_id,
            total_weight: total,
        };
        let view = build_view(&self.strategy, &inner, self.panic_mode);
        Ok(Balancer {
            strategy: self.strategy,
            view: ArcCell::new(Arc::new(view)),
            generation: AtomicU64::new(0),
            cache: PerThread::new(),
            inner: Mutex::new(inner),
            clock,
            outlier: self.outlier,
            health: self.health,
            panic_mode: self.panic_mode,
            tau_nanos,
            initial_nanos,
        })
    }
}

fn add_weight(total: u64, weight: u32) -> Result<u64, BuildError> {
    if weight == 0 {
        return Err(BuildError::Zero { setting: "weight" });
    }
    let total = total + u64::from(weight);
    if total > u64::from(u32::MAX) {
        return Err(BuildError::WeightOverflow);
    }
    Ok(total)
}

fn build_view<T, S: Strategy>(
    strategy: &S,
    inner: &Inner<T>,
    panic_mode: bool,
) -> View<T, S::State> {
    let members: Vec<&Shared<Backend<T>>> = inner
        .members
        .iter()
        .filter(|b| b.state().is_ready())
        .collect();
    let best = members
        .iter()
        .filter(|b| b.state().is_healthy())
        .map(|b| b.state().tier())
        .min();
    let (eligible, panicking, tier): (Vec<&Shared<Backend<T>>>, bool, Option<u32>) = match best {
        Some(t) => (
            members
                .iter()
                .filter(|b| b.state().tier() == t && b.state().is_healthy())
                .copied()
                .collect(),
            false,
            Some(t),
        ),
        None => match members.iter().map(|b| b.state().tier()).min() {
            Some(t) if panic_mode => (
                members
                    .iter()
                    .filter(|b| b.state().tier() == t)
                    .copied()
                    .collect(),
                true,
                Some(t),
            ),
            Some(_) => (Vec::new(), true, None),
            None => (Vec::new(), false, None),
        },
    };
    let readmit_at = inner
        .members
        .iter()
        .map(|b| b.state().ejected_until.load(Ordering::Acquire))
        .filter(|&u| u != 0)
        .min()
        .unwrap_or(u64::MAX);
    let eligible: Vec<Slot<T>> = eligible.into_iter().map(Slot::new).collect();
    let state = strategy.prepare(Candidates::new(&eligible));
    View {
        eligible,
        state,
        readmit_at,
        panicking,
        tier,
    }
}

/// A snapshot of one backend's state, from [`Balancer::stats`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackendStats {
    /// The backend's identity.
    pub id: BackendId,
    /// Its weight.
    pub weight: u32,
    /// Its failover tier.
    pub tier: u32,
    /// Requests in flight.
    pub in_flight: u64,
    /// The peak-EWMA latency estimate as last updated (not decayed). Kept
    /// under every strategy; it starts and decays as [`PeakEwma`]'s settings
    /// say, or with [`DEFAULT_INITIAL_LATENCY`] and [`DEFAULT_DECAY`] under
    /// any other strategy.
    ///
    /// [`PeakEwma`]: crate::PeakEwma
    /// [`DEFAULT_INITIAL_LATENCY`]: crate::DEFAULT_INITIAL_LATENCY
    /// [`DEFAULT_DECAY`]: crate::DEFAULT_DECAY
    pub latency_estimate: Duration,
    /// Ejected by outlier detection.
    pub ejected: bool,
    /// Healthy according to the active health check.
    pub probe_healthy: bool,
    /// How many times outlier detection has ejected it.
    pub times_ejected: u32,
}

impl<T: Send + Sync, S: Strategy> Balancer<T, S> {
    /// Starts a builder for a balancer using `strategy`.
    pub fn builder(strategy: S) -> BalancerBuilder<T, S> {
        BalancerBuilder {
            strategy,
            backends: Vec::new(),
            clock: None,
            outlier: Some(OutlierDetection::default()),
            health: HealthCheck::default(),
            panic_mode: true,
        }
    }

    /// Adds a backend in tier 0 while other threads keep picking.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for weight 0, [`BuildError::WeightOverflow`] when
    /// the total weight would exceed `u32::MAX`, or what the strategy's
    /// [`Strategy::check_backends`] reports for the backends with this one
    /// added (for [`ConsistentHashing`](crate::ConsistentHashing),
    /// [`BuildError::HashTable`] when its table cannot hold them). On an
    /// error nothing changes.
    pub fn add(&self, value: T, weight: u32) -> Result<BackendId, BuildError> {
        self.add_in_tier(value, weight, 0)
    }

    /// Adds a backend in failover tier `tier`.
    ///
    /// # Errors
    ///
    /// As [`Balancer::add`].
    pub fn add_in_tier(&self, value: T, weight: u32, tier: u32) -> Result<BackendId, BuildError> {
        let mut inner = self.inner.lock();
        let total = add_weight(inner.total_weight, weight)?;
        let id = BackendId(inner.next_id);
        let state = BackendState::new(id, weight, tier, self.initial_nanos, self.clock.now_nanos());
        let backend = Shared::new(Backend::new(value, state));
        let slots: Vec<Slot<T>> = inner
            .members
            .iter()
            .chain(std::iter::once(&backend))
            .map(Slot::new)
            .collect();
        self.strategy.check_backends(Candidates::new(&slots))?;
        drop(slots);
        inner.members.push(backend);
        inner.next_id += 1;
        inner.total_weight = total;
        self.publish(&inner);
        Ok(id)
    }

    /// Removes a backend; `false` if there was none with this id. Once this
    /// returns, no `pick` that starts afterwards yields it; picks already
    /// holding it keep it alive and in flight until they are dropped.
    pub fn remove(&self, id: BackendId) -> bool {
        let mut inner = self.inner.lock();
        let Some(pos) = inner.members.iter().position(|b| b.state().id() == id) else {
            return false;
        };
        let b = inner.members.remove(pos);
        inner.total_weight -= u64::from(b.state().weight());
        // Publishing bumps the generation: every pick that starts after this
        // returns loads the new snapshot. The flag goes before the handle so
        // that a concurrent in-flight read is high, never low.
        self.publish(&inner);
        b.state().member.store(false, Ordering::Release);
        drop(b);
        true
    }

    /// How many backends there are (healthy or not).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().members.len()
    }

    /// Whether there are no backends.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of every backend's state, in the order they were added.
    #[must_use]
    pub fn stats(&self) -> Vec<BackendStats> {
        let inner = self.inner.lock();
        inner
            .members
            .iter()
            .map(|b| {
                let s = b.state();
                BackendStats {
                    id: s.id(),
                    weight: s.weight(),
                    tier: s.tier(),
                    in_flight: in_flight_of(b),
                    latency_estimate: Duration::from_nanos(s.latency_estimate().0 as u64),
                    ejected: s.is_ejected(),
                    probe_healthy: s.is_probe_healthy(),
                    times_ejected: s.times_ejected.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Requests in flight at backend `id` (`None` if it is not a member).
    #[must_use]
    pub fn in_flight(&self, id: BackendId) -> Option<u64> {
        let inner = self.inner.lock();
        inner
            .members
            .iter()
            .find(|b| b.state().id() == id)
            .map(in_flight_of)
    }

    /// The ids of the backends `pick` currently chooses among.
    #[must_use]
    pub fn candidates(&self) -> Vec<BackendId> {
        self.view
            .load()
            .eligible
            .iter()
            .map(|b| b.state.id())
            .collect()
    }

    /// The tier traffic currently goes to (`None` with no candidates).
    #[must_use]
    pub fn active_tier(&self) -> Option<u32> {
        self.view.load().tier
    }

    /// Whether no backend is healthy (see the panic mode in the type docs).
    #[must_use]
    pub fn is_panicking(&self) -> bool {
        self.view.load().panicking
    }

    /// Runs the active health check: probes each backend whose probe is
    /// due (at most once per [`HealthCheck::interval`] by the balancer's
    /// clock) and applies the thresholds. Call it from a timer or a
    /// simulation loop, or let [`Balancer::spawn_health_checker`] call it
    /// from a thread; calling it more often than the interval is cheap.
    /// The probe runs without any lock held, and counts as a request in
    /// flight to its backend while it runs. Returns how many backends were
    /// probed.
    pub fn check_health(&self, mut probe: impl FnMut(&T) -> bool) -> usize {
        let members: Vec<_> = self
            .inner
            .lock()
            .members
            .iter()
            .map(Shared::downgrade)
            .collect();
        let now = self.clock.now_nanos();
        let interval = saturating_nanos(self.health.interval);
        let mut probed = 0;
        let mut changed = false;
        for weak in &members {
            // Removed since the list was taken, and no longer in flight.
            let Some(b) = weak.upgrade() else { continue };
            let s = b.state();
            let due = s.next_probe_at.load(Ordering::Acquire);
            if now < due
                || s.next_probe_at
                    .compare_exchange(
                        due,
                        now.saturating_add(interval),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    )
                    .is_err()
            {
                continue;
            }
            probed += 1;
            let ok = probe(b.value());
            let healthy = s.probe_healthy.load(Ordering::Acquire);
            if ok == healthy {
                s.probe_streak.store(0, Ordering::Relaxed);
                continue;
            }
            let streak = s.probe_streak.fetch_add(1, Ordering::AcqRel) + 1;
            let threshold = if healthy {
                self.health.unhealthy_threshold
            } else {
                self.health.healthy_threshold
            };
            if streak >= threshold {
                s.probe_healthy.store(ok, Ordering::Release);
                s.probe_streak.store(0, Ordering::Relaxed);
                changed = true;
            }
        }
        if changed {
            let inner = self.inner.lock();
            self.publish(&inner);
        }
        probed
    }

    /// The active health check's interval.
    #[cfg(not(sysblocks_loom))]
    pub(crate) fn health_interval(&self) -> Duration {
        self.health.interval
    }

    /// Builds and stores a new snapshot, then bumps the generation (the
    /// order matters: a pick that sees the new generation sees the new
    /// snapshot). Called with the membership lock held.
    fn publish(&self, inner: &Inner<T>) {
        let view = build_view(&self.strategy, inner, self.panic_mode);
        self.view.store(Arc::new(view));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Marks backend `id` ready or not; a backend that is not ready is no
    /// candidate. Republishes only on a change.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn set_ready(&self, id: BackendId, ready: bool) {
        let inner = self.inner.lock();
        let Some(b) = inner.members.iter().find(|b| b.state().id() == id) else {
            return;
        };
        if b.state().ready.swap(ready, Ordering::AcqRel) != ready {
            self.publish(&inner);
        }
    }

    /// Readmits backends whose ejection has expired. Skipped when another
    /// thread holds the membership lock: `pick` must not block, and the
    /// current snapshot stays valid (it merely lacks the readmitted backend
    /// until a later pick succeeds).
    fn readmit(&self) {
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
                s.ejected_until.store(0, Ordering::Release);
                changed = true;
            }
        }
        if changed {
            self.publish(&inner);
        }
    }

    fn eject(&self, od: &OutlierDetection, id: BackendId) {
        let inner = self.inner.lock();
        let Some(b) = inner.members.iter().find(|b| b.state().id() == id) else {
            return;
        };
        let s = b.state();
        if s.is_ejected()
            || s.consecutive_failures.load(Ordering::Acquire) < od.consecutive_failures
        {
            return;
        }
        let ejected = inner
            .members
            .iter()
            .filter(|b| b.state().is_ejected())
            .count();
        if ejected >= od.max_ejected(inner.members.len()) {
            return;
        }
        let times = s.times_ejected.load(Ordering::Relaxed).saturating_add(1);
        s.times_ejected.store(times, Ordering::Relaxed);
        let now = self.clock.now_nanos();
        let until = now
            .saturating_add(saturating_nanos(od.ejection_time(times)))
            .max(1);
        s.consecutive_failures.store(0, Ordering::Relaxed);
        s.ejected_until.store(until, Ordering::Release);
        self.publish(&inner);
    }
}

/// Why a pick from a snapshot must be retried.
enum Retry {
    /// An ejection has expired: readmit, then pick from the new snapshot.
    Readmit,
    /// The chosen backend was removed and is no longer in flight: the
    /// snapshot is stale, a newer one is published.
    Stale,
}

impl<T: Send + Sync, S: Strategy> Balancer<T, S> {
    /// Chooses a backend for one request. The returned [`Pick`] derefs to
    /// the backend's value and counts as in flight until dropped; report the
    /// outcome with [`Pick::success`] or [`Pick::failure`].
    ///
    /// Returns `None` when there are no backends, when none is healthy and
    /// panic mode is off, or when the strategy refuses. Never blocks: the
    /// only lock it may touch is taken with `try_lock`, to readmit a backend
    /// whose ejection has expired.
    #[inline]
    pub fn pick(&self, ctx: &Context) -> Option<Pick<'_, T>> {
        let fast = self.cache.with(|slot| {
            // The generation first, then (if it moved) the snapshot: a
            // snapshot cached under generation g is at least as new as the
            // one whose publication bumped the counter to g.
            let generation = self.generation.load(Ordering::Acquire);
            let view = match slot {
                Some((g, v)) if *g == generation => v,
                _ => &slot.insert((generation, self.view.load_full())).1,
            };
            self.pick_in(view, ctx, true)
        });
        match fast {
            Some(Ok(pick)) => pick,
            // Re-entered from inside a strategy, or a retry.
            _ => self.pick_slow(ctx),
        }
    }

    /// As [`Balancer::pick`], but the returned [`OwnedPick`] holds the
    /// balancer through its `Arc` instead of borrowing it, so it can be kept
    /// in a future or sent to another thread. It also notes the time (one
    /// clock read), so [`OwnedPick::finish`] can record the latency.
    #[must_use]
    pub fn pick_owned(self: &StdArc<Self>, ctx: &Context) -> Option<OwnedPick<T>>
    where
        T: 'static,
    {
        let backend = self.pick(ctx)?.into_backend();
        let hooks: SharedOutcomes = StdArc::clone(self) as SharedOutcomes;
        Some(OwnedPick::new(backend, hooks))
    }

    #[cold]
    fn pick_slow(&self, ctx: &Context) -> Option<Pick<'_, T>> {
        let mut readmit = true;
        loop {
            let view = self.view.load();
            match self.pick_in(&view, ctx, readmit) {
                Ok(pick) => return pick,
                Err(Retry::Readmit) => {
                    // Once: if another thread holds the lock, pick from the
                    // current snapshot rather than wait.
                    self.readmit();
                    readmit = false;
                }
                Err(Retry::Stale) => spin_loop(),
            }
        }
    }

    #[inline]
    fn pick_in(
        &self,
        view: &View<T, S::State>,
        ctx: &Context,
        readmit: bool,
    ) -> Result<Option<Pick<'_, T>>, Retry> {
        if readmit && view.readmit_at != u64::MAX && self.clock.now_nanos() >= view.readmit_at {
            return Err(Retry::Readmit);
        }
        if view.eligible.is_empty() {
            return Ok(None);
        }
        let Some(idx) = self.strategy.pick(
            &view.state,
            Candidates::new(&view.eligible),
            ctx,
            &*self.clock,
        ) else {
            return Ok(None);
        };
        let Some(slot) = view.eligible.get(idx) else {
            return Ok(None);
        };
        match slot.backend.upgrade() {
            Some(backend) => Ok(Some(Pick::new(backend, self))),
            None => Err(Retry::Stale),
        }
    }
}

impl<T: Send + Sync, S: Strategy> Outcomes for Balancer<T, S> {
    fn on_success(&self, s: &BackendState, nanos: f64) {
        if s.consecutive_failures.load(Ordering::Relaxed) != 0 {
            s.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if nanos.is_finite() && nanos > 0.0 {
            s.observe_latency(nanos, self.clock.now_nanos(), self.tau_nanos);
        }
    }

    fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    fn on_failure(&self, s: &BackendState) {
        let Some(od) = &self.outlier else {
            return;
        };
        let streak = s
            .consecutive_failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if streak >= od.consecutive_failures && !s.is_ejected() {
            self.eject(od, s.id());
        }
    }
}
