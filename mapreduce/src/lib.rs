#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod board;
mod buffer;
#[cfg(feature = "timely")]
pub mod cluster;
mod codec;
mod compress;
mod counters;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod input;
mod job;
mod merge;
mod partition;
mod progress;
mod runner;
#[cfg(feature = "serde")]
mod serde_codec;
mod spill;
mod sync;
mod word;
pub mod word_count;

#[cfg(feature = "timely")]
pub use cluster::{ClusterConfig, ClusterOutput};
pub use codec::Codec;
pub use compress::Compression;
pub use counters::Counters;
pub use error::{BuildError, ClusterError, DecodeError, JobError, TaskError};
pub use input::TextInput;
pub use job::{Emitter, Job, Origin, Values};
pub use partition::{HashPartitioner, Partitioner, RangePartitioner};
pub use progress::{Phase, Progress};
pub use runner::{Outputs, ProgressFn, Runner, RunnerBuilder};
#[cfg(feature = "serde")]
pub use serde_codec::Bincode;
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock};
pub use word::Word;
