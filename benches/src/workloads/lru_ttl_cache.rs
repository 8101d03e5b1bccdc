//! Inputs and contender setups for `lru-ttl-cache`, shared by its criterion bench
//! and the `compare` binary.
