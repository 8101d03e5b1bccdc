//! The [`Balancer`]: membership, the lock-free snapshot `pick` reads, health
//! transitions, and the outcomes a [`Pick`] reports.

use std::fmt;
use std::time::Duration;

use sysblocks_clock::SharedClock;

use crate::backend::{in_flight_of, Backend, BackendId, BackendState, Slot};
use crate::builder::{add_weight, Settings};
use crate::error::BuildError;
use crate::pick::{Outcomes, OwnedPick, Pick, SharedOutcomes};
use crate::rng::{below, SplitMix};
use crate::slow_start::SlowStart;
use crate::strategy::{Candidates, Context, Strategy};
use crate::sync::{spin_loop, Arc, ArcCell, AtomicU64, Mutex, Ordering, PerThread, Shared, StdArc};
use crate::view::{build_view, TierView, View};

/// A thread's cached snapshot and the generation it was loaded under.
type Cached<T, St> = Option<(u64, Arc<View<T, St>>)>;

pub(crate) struct Inner<T> {
    pub(crate) members: Vec<Shared<Backend<T>>>,
    pub(crate) next_id: u64,
    pub(crate) total_weight: u64,
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
/// Failover: each backend has a tier (0 by default, lower is preferred),
/// and the tiers share the traffic as Envoy's priority levels do. A tier's
/// health is its healthy fraction times the overprovisioning factor (1.4),
/// capped at 100 %; the first tier takes its health's share, the next the
/// rest up to its own health, and so on ([`priority_load`](crate::priority_load)),
/// so a tier with 72 % or more of its backends healthy keeps all the
/// traffic, and one with half of them 70 %. Inside a tier the strategy
/// picks among the healthy backends. When the tiers together fall short of
/// 100 %, a tier whose healthy share is under the *panic threshold* (50 %)
/// balances over all its backends, healthy or not; when no backend at all
/// is healthy, the lowest tier does (*panic mode*, on by default, as in
/// Envoy), on the grounds that a request to a possibly-sick backend beats
/// a certain failure. With panic mode off `pick` only yields healthy
/// backends and returns `None` when none is. An infinite
/// overprovisioning factor gives all-or-nothing failover.
pub struct Balancer<T: Send + Sync, S: Strategy> {
    pub(crate) strategy: S,
    pub(crate) view: ArcCell<View<T, S::State>>,
    /// Bumped after every publication of `view`.
    pub(crate) generation: AtomicU64,
    /// Per thread: the generation and snapshot it last loaded.
    pub(crate) cache: PerThread<Cached<T, S::State>>,
    pub(crate) inner: Mutex<Inner<T>>,
    pub(crate) clock: SharedClock,
    pub(crate) settings: Settings,
    /// The tier draw and slow start's acceptance test.
    pub(crate) rng: SplitMix,
    /// Clock reading at which the current outlier-detection interval ends.
    pub(crate) next_sweep_at: AtomicU64,
    pub(crate) tau_nanos: f64,
    pub(crate) initial_nanos: f64,
}

impl<T: Send + Sync, S: Strategy + fmt::Debug> fmt::Debug for Balancer<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("strategy", &self.strategy)
            .field("backends", &self.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
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
        let now = self.clock.now_nanos();
        let state = BackendState::new(id, weight, tier, self.initial_nanos, now);
        // A backend that joins ramps up (when slow start is on).
        state.warm_since.store(now.max(1), Ordering::Relaxed);
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

    /// The ids of the backends `pick` currently chooses among, in every
    /// tier that takes traffic.
    #[must_use]
    pub fn candidates(&self) -> Vec<BackendId> {
        self.view
            .load()
            .tiers
            .iter()
            .flat_map(|t| t.eligible.iter().map(|b| b.state.id()))
            .collect()
    }

    /// The most preferred tier that takes traffic (`None` with no
    /// candidates).
    #[must_use]
    pub fn active_tier(&self) -> Option<u32> {
        self.view.load().tiers.first().map(|t| t.tier)
    }

    /// Each tier that takes traffic, with its share in percent (Envoy's
    /// priority load; the shares add up to 100).
    #[must_use]
    pub fn tier_loads(&self) -> Vec<(u32, u32)> {
        self.view
            .load()
            .tiers
            .iter()
            .map(|t| (t.tier, t.load))
            .collect()
    }

    /// Whether some tier balances over unhealthy backends, or none is
    /// healthy (see the panic mode in the type docs).
    #[must_use]
    pub fn is_panicking(&self) -> bool {
        self.view.load().panicking
    }

    /// The active health check's interval.
    #[cfg(not(sysblocks_loom))]
    pub(crate) fn health_interval(&self) -> Duration {
        self.settings.health.interval
    }

    /// Builds and stores a new snapshot, then bumps the generation (the
    /// order matters: a pick that sees the new generation sees the new
    /// snapshot). Called with the membership lock held.
    pub(crate) fn publish(&self, inner: &Inner<T>) {
        let view = build_view(
            &self.strategy,
            inner,
            &self.settings,
            self.clock.now_nanos(),
        );
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
        self.pick_owned_timed(ctx, true)
    }

    /// As [`Balancer::pick_owned`]; `timed: false` skips the clock read,
    /// and `finish` then records no latency.
    pub(crate) fn pick_owned_timed(
        self: &StdArc<Self>,
        ctx: &Context,
        timed: bool,
    ) -> Option<OwnedPick<T>>
    where
        T: 'static,
    {
        let backend = self.pick(ctx)?.into_backend();
        let hooks: SharedOutcomes = StdArc::clone(self) as SharedOutcomes;
        Some(OwnedPick::new(backend, hooks, timed))
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
        let tier = match view.tiers.as_slice() {
            [] => return Ok(None),
            [only] => only,
            tiers => {
                let r = below(self.rng.next_u64() as u32, 100);
                tiers
                    .iter()
                    .find(|t| r < t.load_end)
                    .unwrap_or(&tiers[tiers.len() - 1])
            }
        };
        let mut redraws = 0;
        let slot = loop {
            let Some(slot) = self.choose(tier, ctx) else {
                return Ok(None);
            };
            if view.warm_until == 0 || redraws == SlowStart::MAX_REDRAWS || ctx.key().is_some() {
                break slot;
            }
            if self.accepts_warming(slot.state.as_ref(), view.warm_until) {
                break slot;
            }
            redraws += 1;
        };
        match slot.backend.upgrade() {
            Some(backend) => Ok(Some(Pick::new(backend, self))),
            None => Err(Retry::Stale),
        }
    }

    /// The strategy's choice in `tier`.
    #[inline]
    fn choose<'v>(&self, tier: &'v TierView<T, S::State>, ctx: &Context) -> Option<&'v Slot<T>> {
        let idx = self.strategy.pick(
            &tier.state,
            Candidates::new(&tier.eligible),
            ctx,
            &*self.clock,
        )?;
        tier.eligible.get(idx)
    }

    /// Slow start's acceptance test: a warming backend is taken with
    /// probability equal to its weight factor.
    #[cold]
    fn accepts_warming(&self, s: &BackendState, warm_until: u64) -> bool {
        let Some(slow) = &self.settings.slow_start else {
            return true;
        };
        let now = self.clock.now_nanos();
        let since = s.warm_since.load(Ordering::Acquire);
        if now >= warm_until || since == 0 {
            return true;
        }
        let factor = slow.weight_factor(Duration::from_nanos(now.saturating_sub(since)));
        factor >= 1.0 || ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < factor
    }
}

impl<T: Send + Sync, S: Strategy> Balancer<T, S> {
    /// A success: the failure streak resets, a valid latency feeds the
    /// estimate (read the clock only then, unless the caller has).
    #[inline]
    fn record_success(&self, s: &BackendState, nanos: f64, now: Option<u64>) {
        if s.consecutive_failures.load(Ordering::Relaxed) != 0 {
            s.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if nanos.is_finite() && nanos > 0.0 {
            let now = now.unwrap_or_else(|| self.clock.now_nanos());
            s.observe_latency(nanos, now, self.tau_nanos);
        }
        self.count_outcome(s, false);
    }
}

impl<T: Send + Sync, S: Strategy> Outcomes for Balancer<T, S> {
    fn on_success(&self, s: &BackendState, nanos: f64) {
        self.record_success(s, nanos, None);
    }

    fn on_success_at(&self, s: &BackendState, nanos: f64, now: u64) {
        self.record_success(s, nanos, Some(now));
    }

    fn now_nanos(&self) -> u64 {
        self.clock.now_nanos()
    }

    fn on_failure(&self, s: &BackendState) {
        let Some(od) = &self.settings.outlier else {
            return;
        };
        let streak = s
            .consecutive_failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if streak >= od.consecutive_failures && !s.is_ejected() {
            self.eject(od, s.id());
        }
        self.count_outcome(s, true);
    }
}
