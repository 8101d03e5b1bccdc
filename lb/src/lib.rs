#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(all(feature = "tokio", not(sysblocks_loom)))]
mod async_checker;
mod backend;
mod balancer;
mod builder;
#[cfg(not(sysblocks_loom))]
mod checker;
mod error;
mod health;
mod outlier;
mod pick;
mod priority;
#[cfg(all(feature = "tokio", not(sysblocks_loom)))]
pub mod probe;
mod rng;
#[cfg(all(feature = "tower", not(sysblocks_loom)))]
mod service;
mod slow_start;
mod strategy;
mod sync;
mod transitions;
mod view;

#[cfg(all(feature = "tokio", not(sysblocks_loom)))]
pub use async_checker::{AsyncHealthChecker, ProbeTiming};
pub use backend::{Backend, BackendId, BackendState};
pub use balancer::{BackendStats, Balancer};
pub use builder::{BalancerBuilder, DEFAULT_EJECTION_INTERVAL, DEFAULT_PANIC_THRESHOLD_PERCENT};
#[cfg(not(sysblocks_loom))]
pub use checker::HealthChecker;
pub use error::{BuildError, HashTableError};
pub use health::{HealthCheck, OutlierDetection};
pub use outlier::{FailurePercentageEjection, SuccessRateEjection};
pub use pick::{OwnedPick, Pick};
pub use priority::{health_score, priority_load, DEFAULT_OVERPROVISIONING_PERCENT};
#[cfg(all(feature = "tokio", not(sysblocks_loom)))]
pub use probe::{Probe, ProbeFuture};
#[cfg(all(feature = "tower", not(sysblocks_loom)))]
pub use service::{
    Balance, BoxError, Classify, Endpoint, EndpointBalancer, ErrorIsFailure, ResponseFuture,
    SharedEndpoint,
};
pub use slow_start::SlowStart;
pub use strategy::{
    Candidates, ConsistentHashing, Context, CumulativeWeights, HashAlgorithm, HashState,
    LeastConnections, PeakEwma, PowerOfTwoChoices, Random, Rotation, RoundRobin,
    SmoothWeightedRoundRobin, Strategy, SwrrState, DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY,
};
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
