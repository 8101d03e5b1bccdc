#![doc = include_str!("../README.md")]
// `unsafe` is denied except in `queue.rs`'s ring slots, where the bench
// shows it pays; every block there carries a `// SAFETY:` comment.
#![deny(unsafe_code)]

mod backend;
mod backoff;
mod crc;
mod error;
mod jobs;
mod pool;
mod queue;
mod record;
mod redb_store;
#[cfg(feature = "redis")]
mod redis;
mod store;
mod sync;
mod task;
#[cfg(feature = "serde")]
mod typed;

pub use backend::{Backend, Session};
pub use backoff::Backoff;
#[cfg(feature = "serde")]
pub use error::PayloadError;
#[cfg(feature = "redis")]
pub use error::RedisQueueError;
pub use error::{
    BuildError, PopError, PushError, StoreError, SubmitBatchError, SubmitError, TaskError,
    UnknownPriority,
};
pub use jobs::{DeadLetter, Delivery, Outcome, PendingSubmit, Stats, TaskQueue, TaskQueueBuilder};
pub use pool::{Handler, ShutdownReport, WorkerPool};
pub use queue::{BoundedQueue, Drain, IntoIter, Iter, Receiver, Sender};
#[cfg(any(feature = "async", sysblocks_loom))]
pub use queue::{PopFuture, PushFuture};
#[cfg(feature = "async")]
pub use queue::{RecvStream, SendSink};
pub use record::{RecordState, TaskRecord};
pub use redb_store::RedbStore;
#[cfg(feature = "redis")]
pub use redis::{Durability, RedisDeadLetter, RedisQueue, RedisQueueBuilder, RedisStats};
pub use store::{MemoryStore, Recovered, Store, StoreOp, Ticket};
pub use sysblocks_clock::{Clock, ManualClock, MonotonicClock, SharedClock};
pub use task::{Priority, Task, TaskId};
