#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod backend;
mod balancer;
#[cfg(not(sysblocks_loom))]
mod checker;
mod error;
mod health;
mod pick;
mod priority;
mod rng;
#[cfg(all(feature = "tower", not(sysblocks_loom)))]
mod service;
mod strategy;
mod sync;

pub use backend::{Backend, BackendId, BackendState};
pub use balancer::{BackendStats, Balancer, BalancerBuilder};
#[cfg(not(sysblocks_loom))]
pub use checker::HealthChecker;
pub use error::{BuildError, HashTableError};
pub use health::{HealthCheck, OutlierDetection};
pub use pick::{OwnedPick, Pick};
pub use priority::{health_score, priority_load, DEFAULT_OVERPROVISIONING_PERCENT};
#[cfg(all(feature = "tower", not(sysblocks_loom)))]
pub use service::{
    Balance, BoxError, Classify, Endpoint, EndpointBalancer, ErrorIsFailure, ResponseFuture,
    SharedEndpoint,
};
pub use strategy::{
    Candidates, ConsistentHashing, Context, CumulativeWeights, HashAlgorithm, HashState,
    LeastConnections, PeakEwma, PowerOfTwoChoices, Random, Rotation, RoundRobin,
    SmoothWeightedRoundRobin, Strategy, SwrrState, DEFAULT_DECAY, DEFAULT_INITIAL_LATENCY,
};
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
