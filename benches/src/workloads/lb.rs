//! Inputs and contender setups for `lb`, shared by its criterion bench
//! and the `compare` binary.
