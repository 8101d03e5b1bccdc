//! The [`Strategy`] trait and the strategies that implement it.

use std::fmt;
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock};

use crate::backend::{in_flight_weak, BackendState, Ewma, Slot};
use crate::error::BuildError;
use crate::rng::{below, entropy_seed, Cursor, FastMod, SplitMix};
use crate::sync::Mutex;

/// What a request tells the balancer about itself: for now, the key that
/// hash-based strategies route by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    key: Option<u64>,
}

impl Context {
    /// A context carrying `key` (a user id, a session id, a hash of a URL):
    /// [`ConsistentHashing`](crate::ConsistentHashing) sends equal keys to the same backend.
    #[must_use]
    pub const fn with_key(key: u64) -> Self {
        Self { key: Some(key) }
    }

    /// The routing key, if any.
    #[must_use]
    pub const fn key(&self) -> Option<u64> {
        self.key
    }
}

/// The backends a strategy chooses among: the healthy backends of the
/// highest live tier (or, in panic mode, every backend of the first tier).
/// Never empty when a strategy is asked to pick.
pub struct Candidates<'a, T> {
    backends: &'a [Slot<T>],
}

impl<T> Clone for Candidates<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Candidates<'_, T> {}

impl<T> fmt::Debug for Candidates<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.backends.iter().map(|b| b.state.id()))
            .finish()
    }
}

impl<'a, T> Candidates<'a, T> {
    pub(crate) fn new(backends: &'a [Slot<T>]) -> Self {
        Self { backends }
    }

    /// How many candidates there are.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.backends.len()
    }

    /// Whether there are none.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The state of candidate `i`.
    ///
    /// # Panics
    ///
    /// Panics if `i >= self.len()`.
    #[inline]
    #[must_use]
    pub fn get(&self, i: usize) -> &'a BackendState {
        &self.backends[i].state
    }

    /// Requests in flight on candidate `i`: picks taken and not yet dropped
    /// (plus an active probe while one runs).
    ///
    /// # Panics
    ///
    /// Panics if `i >= self.len()`.
    #[inline]
    #[must_use]
    pub fn in_flight(&self, i: usize) -> u64 {
        in_flight_weak(&self.backends[i].backend)
    }

    /// The candidates' states in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a BackendState> + 'a {
        self.backends.iter().map(|b| &*b.state)
    }
}

/// A load-balancing algorithm: given the candidates, choose one.
///
/// [`Strategy::prepare`] runs whenever the candidate set changes (a backend
/// is added, removed, ejected, readmitted, or fails or passes its probes) and
/// builds whatever the algorithm precomputes (weight sums, a hash ring);
/// [`Strategy::pick`] runs for every request and should neither lock nor
/// allocate.
pub trait Strategy: Send + Sync + 'static {
    /// What `prepare` builds for one candidate set.
    type State: Send + Sync + 'static;

    /// Rejects settings the strategy cannot honour; `build()` calls it.
    ///
    /// # Errors
    ///
    /// The [`BuildError`] naming the bad setting.
    fn validate(&self) -> Result<(), BuildError> {
        Ok(())
    }

    /// Precomputes the per-candidate-set state.
    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Self::State;

    /// The index into `candidates` of the chosen backend, or `None` to
    /// refuse the request. `candidates` is never empty. `clock` is the
    /// balancer's; reading it costs a little, so only strategies that need
    /// time read it.
    fn pick<T>(
        &self,
        state: &Self::State,
        candidates: Candidates<'_, T>,
        ctx: &Context,
        clock: &dyn Clock,
    ) -> Option<usize>;

    /// The time constant with which a faster latency sample decays into a
    /// backend's estimate. Every balancer keeps the estimate (it is reported
    /// in [`BackendStats`](crate::BackendStats)); [`PeakEwma`] routes by it.
    fn latency_decay(&self) -> Duration {
        DEFAULT_DECAY
    }

    /// The estimate a backend starts with, before its first sample.
    fn initial_latency(&self) -> Duration {
        DEFAULT_INITIAL_LATENCY
    }
}

/// Finagle's and linkerd's default decay time constant for peak EWMA.
pub const DEFAULT_DECAY: Duration = Duration::from_secs(10);
/// linkerd's default RTT estimate for an endpoint with no samples yet.
pub const DEFAULT_INITIAL_LATENCY: Duration = Duration::from_millis(30);

/// The prepared state of the rotating strategies ([`RoundRobin`],
/// [`LeastConnections`]): the candidate count as a precomputed divisor, so
/// the rotation costs two multiplications rather than a division.
#[derive(Debug, Clone, Copy)]
pub struct Rotation(FastMod);

#[inline]
fn len_u32(c_len: usize) -> u32 {
    u32::try_from(c_len).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------

/// Plain round robin: each candidate in turn, weights ignored. Each thread
/// keeps its own cursor (as each Envoy worker keeps its own balancer): on
/// one thread the rotation is exact and starts at the first candidate;
/// every later thread starts at a different point of the rotation, so
/// threads share no written cache line and do not walk the backends in
/// step. A cursor wraps at `2^32` picks, where the rotation skips once
/// unless the candidate count divides `2^32`.
#[derive(Debug, Default)]
pub struct RoundRobin {
    cursor: Cursor,
}

impl RoundRobin {
    /// Round robin starting at the first candidate.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for RoundRobin {
    type State = Rotation;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Rotation {
        Rotation(FastMod::new(len_u32(candidates.len())))
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &Rotation,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        Some(state.0.rem(self.cursor.next()) as usize)
    }
}

// ---------------------------------------------------------------------------

/// nginx's smooth weighted round robin: every pick adds each candidate's
/// weight to its current weight, chooses the largest current weight (the
/// first on ties), and subtracts the total weight from the chosen one.
/// Weights {5, 1, 1} give `a a b a c a a`, spread instead of bunched.
///
/// The current weights live under a lock (nginx keeps them under the
/// upstream's lock too); they restart from zero when the candidate set
/// changes.
#[derive(Debug, Default)]
pub struct SmoothWeightedRoundRobin {
    _private: (),
}

impl SmoothWeightedRoundRobin {
    /// The strategy.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// The state of [`SmoothWeightedRoundRobin`] for one candidate set.
#[derive(Debug)]
pub struct SwrrState {
    weights: Vec<i64>,
    total: i64,
    current: Mutex<Vec<i64>>,
}

impl Strategy for SmoothWeightedRoundRobin {
    type State = SwrrState;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> SwrrState {
        let weights: Vec<i64> = candidates.iter().map(|s| i64::from(s.weight())).collect();
        let total = weights.iter().sum();
        SwrrState {
            current: Mutex::new(vec![0; weights.len()]),
            weights,
            total,
        }
    }

    fn pick<T>(
        &self,
        state: &SwrrState,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let mut current = state.current.lock();
        let mut best = None;
        let mut best_weight = i64::MIN;
        for (i, (c, w)) in current.iter_mut().zip(&state.weights).enumerate() {
            *c += *w;
            if *c > best_weight {
                best_weight = *c;
                best = Some(i);
            }
        }
        let best = best?;
        current[best] -= state.total;
        Some(best)
    }
}

// ---------------------------------------------------------------------------

/// Random choice, weighted by the backends' weights (uniform when they are
/// equal). Seedable for reproducible runs.
#[derive(Debug)]
pub struct Random {
    rng: SplitMix,
}

impl Random {
    /// Random choice from a fixed seed: the same seed and the same sequence
    /// of candidate sets give the same picks (on one thread).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }
}

impl Default for Random {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

/// The state of [`Random`] for one candidate set.
#[derive(Debug)]
pub struct RandomState {
    /// Cumulative weights (`cumulative[i]` = sum of weights `0..=i`); empty
    /// when all weights are equal and the choice is uniform.
    cumulative: Vec<u64>,
    n: u32,
}

impl Strategy for Random {
    type State = RandomState;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> RandomState {
        let first = candidates.iter().next().map(BackendState::weight);
        let uniform = candidates.iter().all(|s| Some(s.weight()) == first);
        let mut cumulative = Vec::new();
        if !uniform {
            let mut sum = 0u64;
            for s in candidates.iter() {
                sum += u64::from(s.weight());
                cumulative.push(sum);
            }
        }
        RandomState {
            cumulative,
            n: len_u32(candidates.len()),
        }
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &RandomState,
        _candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let r = self.rng.next_u64();
        match state.cumulative.last() {
            None => Some(below(r as u32, state.n) as usize),
            Some(&total) => {
                // The total is at most u32::MAX (checked when backends are
                // added), so the multiply-shift below stays in range.
                let x = ((u128::from(r) * u128::from(total)) >> 64) as u64;
                Some(state.cumulative.partition_point(|&c| c <= x))
            }
        }
    }
}

// ---------------------------------------------------------------------------

/// Least connections: the candidate with the fewest requests in flight
/// relative to its weight (nginx's `least_conn` comparison,
/// `in_flight_a * weight_b < in_flight_b * weight_a`). The scan starts at a
/// rotating position so ties go round robin, and stops at the first idle
/// candidate (nothing can beat zero), so an idle set costs one probe while a
/// busy one costs a scan of every candidate.
#[derive(Debug, Default)]
pub struct LeastConnections {
    cursor: Cursor,
}

impl LeastConnections {
    /// The strategy.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Strategy for LeastConnections {
    type State = Rotation;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Rotation {
        Rotation(FastMod::new(len_u32(candidates.len())))
    }

    #[inline]
    fn pick<T>(
        &self,
        state: &Rotation,
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let n = candidates.len();
        let start = state.0.rem(self.cursor.next()) as usize;
        let mut best = start;
        let mut best_load = candidates.in_flight(start);
        if best_load == 0 {
            return Some(start);
        }
        let mut best_weight = candidates.get(start).weight();
        let mut i = start;
        for _ in 1..n {
            i += 1;
            if i == n {
                i = 0;
            }
            let load = candidates.in_flight(i);
            if load == 0 {
                return Some(i);
            }
            let s = candidates.get(i);
            if u128::from(load) * u128::from(best_weight)
                < u128::from(best_load) * u128::from(s.weight())
            {
                best = i;
                best_load = load;
                best_weight = s.weight();
            }
        }
        Some(best)
    }
}

// ---------------------------------------------------------------------------

/// Two distinct candidates at random; the one with fewer requests in flight
/// per unit of weight wins (`(in_flight + 1) / weight`, ties to the first
/// drawn). Mitzenmacher's "power of two choices"; with equal weights it is
/// tower's `p2c::Balance` over `PendingRequests`.
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: SplitMix,
}

impl PowerOfTwoChoices {
    /// From a fixed seed (reproducible on one thread).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
        }
    }
}

impl Default for PowerOfTwoChoices {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

/// Two distinct indices in `0..n` (`n >= 2`) from one random word.
#[inline]
fn two_distinct(r: u64, n: u32) -> (usize, usize) {
    let a = below(r as u32, n);
    let mut b = below((r >> 32) as u32, n - 1);
    if b >= a {
        b += 1;
    }
    (a as usize, b as usize)
}

/// The step both two-choice strategies share: with one candidate, it; else
/// two distinct candidates `a`, `b` at random, and `b` only if
/// `b_is_better(a, b)` (ties go to the first drawn).
#[inline]
fn better_of_two(rng: &SplitMix, n: u32, b_is_better: impl FnOnce(usize, usize) -> bool) -> usize {
    if n < 2 {
        return 0;
    }
    let (a, b) = two_distinct(rng.next_u64(), n);
    if b_is_better(a, b) {
        b
    } else {
        a
    }
}

impl Strategy for PowerOfTwoChoices {
    type State = u32;

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> u32 {
        len_u32(candidates.len())
    }

    #[inline]
    fn pick<T>(
        &self,
        &n: &u32,
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        // (in_flight_b + 1) / w_b < (in_flight_a + 1) / w_a, cross-multiplied.
        Some(better_of_two(&self.rng, n, |a, b| {
            let (wa, wb) = (candidates.get(a).weight(), candidates.get(b).weight());
            u128::from(candidates.in_flight(b) + 1) * u128::from(wa)
                < u128::from(candidates.in_flight(a) + 1) * u128::from(wb)
        }))
    }
}

// ---------------------------------------------------------------------------

/// Power of two choices over the peak-EWMA cost, as Finagle, linkerd and
/// tower's `PeakEwma` define it: `cost = estimate * (in_flight + 1)`, where
/// the estimate jumps to any slower latency sample at once, blends a faster
/// one in with weight `1 - exp(-elapsed / decay)`, and, between samples,
/// decays towards zero with the same time constant so that an idle backend
/// is tried again. Weights are ignored, as in tower.
#[derive(Debug)]
pub struct PeakEwma {
    rng: SplitMix,
    decay: Duration,
    initial: Duration,
}

impl PeakEwma {
    /// From a fixed seed, with the default decay (10 s) and initial
    /// estimate (30 ms).
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Self {
            rng: SplitMix::new(seed),
            decay: DEFAULT_DECAY,
            initial: DEFAULT_INITIAL_LATENCY,
        }
    }

    /// Sets the decay time constant (`tau`). Zero is rejected by `build()`.
    #[must_use]
    pub fn decay(mut self, tau: Duration) -> Self {
        self.decay = tau;
        self
    }

    /// Sets the estimate of a backend with no samples yet.
    #[must_use]
    pub fn initial_latency(mut self, estimate: Duration) -> Self {
        self.initial = estimate;
        self
    }

    #[inline]
    fn cost<T>(c: Candidates<'_, T>, i: usize, now: u64, tau: f64) -> f64 {
        let (estimate, stamp) = c.get(i).latency_estimate();
        Ewma::decayed(estimate, stamp, now, tau) * (c.in_flight(i) as f64 + 1.0)
    }
}

impl Default for PeakEwma {
    /// Seeded from the process's hash randomness.
    fn default() -> Self {
        Self::with_seed(entropy_seed())
    }
}

impl Strategy for PeakEwma {
    /// Candidate count and the time constant in nanoseconds.
    type State = (u32, f64);

    fn validate(&self) -> Result<(), BuildError> {
        if self.decay.is_zero() {
            return Err(BuildError::Zero {
                setting: "PeakEwma::decay",
            });
        }
        Ok(())
    }

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> (u32, f64) {
        (
            len_u32(candidates.len()),
            saturating_nanos(self.decay) as f64,
        )
    }

    #[inline]
    fn pick<T>(
        &self,
        &(n, tau): &(u32, f64),
        candidates: Candidates<'_, T>,
        _ctx: &Context,
        clock: &dyn Clock,
    ) -> Option<usize> {
        Some(better_of_two(&self.rng, n, |a, b| {
            let now = clock.now_nanos();
            Self::cost(candidates, b, now, tau) < Self::cost(candidates, a, now, tau)
        }))
    }

    fn latency_decay(&self) -> Duration {
        self.decay
    }

    fn initial_latency(&self) -> Duration {
        self.initial
    }
}
