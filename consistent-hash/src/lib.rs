#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod error;
mod sync;

pub use error::BuildError;
