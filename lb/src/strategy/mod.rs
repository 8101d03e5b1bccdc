//! The [`Strategy`] trait, what it is given ([`Candidates`], [`Context`]),
//! and the strategies that implement it, one per file.

use std::fmt;

use sysblocks_clock::Clock;

use crate::backend::{in_flight_weak, BackendState, Slot};
use crate::error::BuildError;
use crate::rng::FastMod;

mod hashing;
mod least_connections;
mod p2c;
mod peak_ewma;
mod random;
mod round_robin;
mod smooth_weighted;

pub use hashing::{ConsistentHashing, HashAlgorithm, HashState};
pub use least_connections::LeastConnections;
pub use p2c::PowerOfTwoChoices;
pub(crate) use peak_ewma::estimate_settings;
pub use peak_ewma::{PeakEwma, DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY};
pub use random::{CumulativeWeights, Random};
pub use round_robin::RoundRobin;
pub use smooth_weighted::{SmoothWeightedRoundRobin, SwrrState};

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

    /// Rejects a backend set whose state [`Strategy::prepare`] could not
    /// build (a hash table too large, say). `build()` and every
    /// [`Balancer::add`](crate::Balancer::add) call it, under the
    /// membership lock, with every backend the balancer would then hold;
    /// an error leaves the balancer unchanged. Each candidate set `prepare`
    /// is later given is a subset of a set this accepted, so a strategy
    /// whose limits only grow with the set (sizes, weight sums) checks
    /// them here once and `prepare` cannot fail.
    ///
    /// # Errors
    ///
    /// The [`BuildError`] saying why the backends cannot be served.
    fn check_backends<T>(&self, backends: Candidates<'_, T>) -> Result<(), BuildError> {
        let _ = backends;
        Ok(())
    }

    /// Whether the strategy routes by the latency estimate, so that the
    /// tower `Balance` must time every request (two clock
    /// reads); `false` by default, `true` for [`PeakEwma`].
    fn routes_by_latency(&self) -> bool {
        false
    }

    /// Precomputes the per-candidate-set state.
    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> Self::State;

    /// The index into `candidates` of the chosen backend, or `None` to
    /// refuse the request (an index out of range counts as a refusal).
    /// `candidates` is never empty. `clock` is the
    /// balancer's; reading it costs a little, so only strategies that need
    /// time read it.
    fn pick<T>(
        &self,
        state: &Self::State,
        candidates: Candidates<'_, T>,
        ctx: &Context,
        clock: &dyn Clock,
    ) -> Option<usize>;
}

/// The prepared state of the rotating strategies ([`RoundRobin`],
/// [`LeastConnections`]): the candidate count as a precomputed divisor, so
/// the rotation costs two multiplications rather than a division.
#[derive(Debug, Clone, Copy)]
pub struct Rotation(FastMod);

impl Rotation {
    /// The rotation over `candidates`.
    fn over<T>(candidates: Candidates<'_, T>) -> Self {
        Self(FastMod::new(len_u32(candidates.len())))
    }

    /// The position `ticket` (a cursor's next value) stands for.
    #[inline]
    fn at(&self, ticket: u32) -> usize {
        self.0.rem(ticket) as usize
    }
}

#[inline]
fn len_u32(c_len: usize) -> u32 {
    u32::try_from(c_len).unwrap_or(u32::MAX)
}
