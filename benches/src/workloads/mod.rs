//! Inputs and contender setups shared by the criterion benches and the
//! `compare` binary, so that both measure the same thing from one source.

pub mod consistent_hash;
pub mod lb;
pub mod lru_ttl_cache;
pub mod mapreduce;
pub mod rate_limiter;
pub mod rate_limiter_redis;
pub mod task_queue;
pub mod task_queue_redis;
