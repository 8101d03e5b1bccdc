//! Inputs and contender setups for `rate-limiter`, shared by its criterion bench
//! and the `compare` binary.
