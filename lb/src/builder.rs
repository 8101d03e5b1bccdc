//! [`BalancerBuilder`]: a balancer's backends and settings, checked once
//! by `build()`.

use std::fmt;
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock, MonotonicClock, SharedClock};

use crate::backend::{Backend, BackendId, BackendState, Slot};
use crate::balancer::{Balancer, Inner};
use crate::error::BuildError;
use crate::health::{HealthCheck, OutlierDetection};
use crate::outlier::{FailurePercentageEjection, SuccessRateEjection};
use crate::priority::DEFAULT_OVERPROVISIONING_PERCENT;
use crate::rng::{entropy_seed, SplitMix};
use crate::slow_start::SlowStart;
use crate::strategy::{estimate_settings, Candidates, Strategy};
use crate::sync::{Arc, ArcCell, AtomicU64, Mutex, PerThread, Shared, StdArc};
use crate::view::build_view;

/// Envoy's default panic threshold, in percent of a tier's backends.
pub const DEFAULT_PANIC_THRESHOLD_PERCENT: u8 = 50;

/// Envoy's default outlier-detection interval.
pub const DEFAULT_EJECTION_INTERVAL: Duration = Duration::from_secs(10);

/// Every setting of a balancer besides its strategy and clock.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) outlier: Option<OutlierDetection>,
    pub(crate) success_rate: Option<SuccessRateEjection>,
    pub(crate) failure_percentage: Option<FailurePercentageEjection>,
    pub(crate) ejection_interval: Duration,
    pub(crate) health: HealthCheck,
    pub(crate) panic_mode: bool,
    pub(crate) panic_threshold: u8,
    /// The overprovisioning factor in percent (140 for 1.4); saturates at
    /// `u64::MAX` for an infinite factor.
    pub(crate) overprovisioning: u64,
    /// The factor as given, for `build()` to check.
    overprovisioning_factor: f64,
    pub(crate) slow_start: Option<SlowStart>,
}

impl Settings {
    /// Whether outcomes are counted per interval (for the statistical
    /// ejections).
    pub(crate) fn counts_outcomes(&self) -> bool {
        self.outlier.is_some() && (self.success_rate.is_some() || self.failure_percentage.is_some())
    }

    fn validate(&self) -> Result<(), BuildError> {
        if let Some(od) = &self.outlier {
            od.validate()?;
        }
        if let Some(sr) = &self.success_rate {
            sr.validate()?;
        }
        if let Some(fp) = &self.failure_percentage {
            fp.validate()?;
        }
        if self.ejection_interval.is_zero() {
            return Err(BuildError::Zero {
                setting: "ejection_interval",
            });
        }
        self.health.validate()?;
        if self.panic_threshold > 100 {
            return Err(BuildError::OutOfRange {
                setting: "panic_threshold",
                expected: "0..=100",
            });
        }
        let f = self.overprovisioning_factor;
        // NaN fails the comparison; below 0.005 the factor rounds to 0 %.
        if f.is_nan() || (f * 100.0).round() < 1.0 {
            return Err(BuildError::OutOfRange {
                setting: "overprovisioning_factor",
                expected: "0.01 or more (infinity for all-or-nothing)",
            });
        }
        if let Some(s) = &self.slow_start {
            s.validate()?;
        }
        Ok(())
    }
}

/// Builds a [`Balancer`]; see [`Balancer::builder`].
#[must_use]
pub struct BalancerBuilder<T, S> {
    strategy: S,
    backends: Vec<(T, u32, u32)>,
    clock: Option<SharedClock>,
    settings: Settings,
    seed: Option<u64>,
}

impl<T, S: fmt::Debug> fmt::Debug for BalancerBuilder<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancerBuilder")
            .field("strategy", &self.strategy)
            .field("backends", &self.backends.len())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync, S: Strategy> Balancer<T, S> {
    /// Starts a builder for a balancer using `strategy`.
    pub fn builder(strategy: S) -> BalancerBuilder<T, S> {
        BalancerBuilder {
            strategy,
            backends: Vec::new(),
            clock: None,
            settings: Settings {
                outlier: Some(OutlierDetection::default()),
                success_rate: None,
                failure_percentage: None,
                ejection_interval: DEFAULT_EJECTION_INTERVAL,
                health: HealthCheck::default(),
                panic_mode: true,
                panic_threshold: DEFAULT_PANIC_THRESHOLD_PERCENT,
                overprovisioning: DEFAULT_OVERPROVISIONING_PERCENT,
                overprovisioning_factor: DEFAULT_OVERPROVISIONING_PERCENT as f64 / 100.0,
                slow_start: None,
            },
            seed: None,
        }
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

    /// Seeds the balancer's own random draws (which tier takes a request
    /// when tiers share the traffic, and slow start's acceptance test);
    /// default: the process's hash randomness. The strategy has its own
    /// seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Passive outlier detection settings (default: enabled with Envoy's
    /// defaults, [`OutlierDetection::default`]). Their ejection times and
    /// cap apply to every kind of ejection.
    pub fn outlier_detection(mut self, settings: OutlierDetection) -> Self {
        self.settings.outlier = Some(settings);
        self
    }

    /// Turns passive outlier detection off, the statistical ejections
    /// included: failures are counted but never eject.
    pub fn without_outlier_detection(mut self) -> Self {
        self.settings.outlier = None;
        self
    }

    /// Adds Envoy's success-rate ejection (off by default; Envoy turns it
    /// on with [`SuccessRateEjection::default`]). Checked once per
    /// [`BalancerBuilder::ejection_interval`].
    pub fn success_rate_ejection(mut self, settings: SuccessRateEjection) -> Self {
        self.settings.success_rate = Some(settings);
        self
    }

    /// Adds Envoy's failure-percentage ejection (off by default, as in
    /// Envoy). Checked once per [`BalancerBuilder::ejection_interval`].
    pub fn failure_percentage_ejection(mut self, settings: FailurePercentageEjection) -> Self {
        self.settings.failure_percentage = Some(settings);
        self
    }

    /// The interval of the success-rate and failure-percentage checks
    /// (default 10 s, Envoy's): each backend's requests and failures are
    /// counted over one interval, and the first outcome reported after it
    /// ends (or a call to [`Balancer::sweep_outliers`]) runs the checks
    /// and starts the next.
    pub fn ejection_interval(mut self, interval: Duration) -> Self {
        self.settings.ejection_interval = interval;
        self
    }

    /// Active health check settings used by [`Balancer::check_health`]
    /// (default: [`HealthCheck::default`]).
    pub fn health_check(mut self, settings: HealthCheck) -> Self {
        self.settings.health = settings;
        self
    }

    /// Whether to balance over unhealthy backends when too few are healthy
    /// (default `true`); with `false`, `pick` only ever yields healthy
    /// backends, and returns `None` when none is.
    pub fn panic_mode(mut self, enabled: bool) -> Self {
        self.settings.panic_mode = enabled;
        self
    }

    /// Envoy's panic threshold, in percent (default 50): when the tiers
    /// together cannot take all the traffic (their overprovisioned health
    /// adds up to less than 100 %), a tier whose healthy share is below
    /// the threshold balances over all its backends, healthy or not. With
    /// 0, only a balancer with no healthy backend at all panics.
    pub fn panic_threshold(mut self, percent: u8) -> Self {
        self.settings.panic_threshold = percent;
        self
    }

    /// Envoy's overprovisioning factor (default 1.4): a tier's share of the
    /// traffic is its healthy fraction times the factor, capped at 100 %,
    /// and the rest spills to the next tiers ([`priority_load`](crate::priority_load)).
    /// `f64::INFINITY` gives all-or-nothing failover: a tier with one
    /// healthy backend takes all the traffic.
    pub fn overprovisioning_factor(mut self, factor: f64) -> Self {
        self.settings.overprovisioning_factor = factor;
        // `as` saturates: infinity becomes u64::MAX; NaN is refused by build.
        self.settings.overprovisioning = (factor * 100.0).round() as u64;
        self
    }

    /// Slow start for backends that join or return (off by default).
    pub fn slow_start(mut self, settings: SlowStart) -> Self {
        self.settings.slow_start = Some(settings);
        self
    }

    /// Builds the balancer. No backends is allowed (`pick` returns `None`
    /// until one is added).
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero weight or a zero setting (a window,
    /// an interval, a threshold), [`BuildError::WeightOverflow`] when the
    /// weights add up to more than `u32::MAX`, [`BuildError::OutOfRange`]
    /// for a setting out of its range (a factor that is NaN or negative, a
    /// percentage over 100), or whatever the strategy's
    /// [`Strategy::validate`] and [`Strategy::check_backends`] report (for
    /// [`ConsistentHashing`](crate::ConsistentHashing),
    /// [`BuildError::HashTable`] when its table cannot hold the backends).
    pub fn build(self) -> Result<Balancer<T, S>, BuildError> {
        self.strategy.validate()?;
        self.settings.validate()?;
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
        let view = build_view(&self.strategy, &inner, &self.settings, now);
        let next_sweep = now.saturating_add(saturating_nanos(self.settings.ejection_interval));
        Ok(Balancer {
            strategy: self.strategy,
            view: ArcCell::new(Arc::new(view)),
            generation: AtomicU64::new(0),
            cache: PerThread::new(),
            inner: Mutex::new(inner),
            clock,
            settings: self.settings,
            rng: SplitMix::new(self.seed.unwrap_or_else(entropy_seed)),
            next_sweep_at: AtomicU64::new(next_sweep),
            tau_nanos,
            initial_nanos,
        })
    }
}

/// Adds `weight` to the running total of the weights.
pub(crate) fn add_weight(total: u64, weight: u32) -> Result<u64, BuildError> {
    if weight == 0 {
        return Err(BuildError::Zero { setting: "weight" });
    }
    let total = total + u64::from(weight);
    if total > u64::from(u32::MAX) {
        return Err(BuildError::WeightOverflow);
    }
    Ok(total)
}
