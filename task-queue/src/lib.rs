#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod sync;

pub use error::BuildError;
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
