//! Inputs and contender setups shared by the criterion benches and the
//! `compare` binary, so that both measure the same thing from one source.

pub mod consistent_hash;
pub mod mapreduce;
pub mod task_queue;
