//! The `Store` trait and the in-memory store.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::StoreError;
use crate::record::TaskRecord;
use crate::sync::{Arc, Mutex};
use crate::task::TaskId;

/// One change to the stored tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert or replace the record with this id.
    Put(TaskRecord),
    /// Remove the record (the task completed, or was purged).
    Delete(TaskId),
}

/// A position in a store's write order: [`Store::append`] hands one out and
/// [`Store::wait`] blocks until everything up to it is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// What a store holds when a queue starts over it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Every stored task.
    pub records: Vec<TaskRecord>,
    /// No id below this has ever been handed out.
    pub next_id: u64,
}

/// Where a [`TaskQueue`](crate::TaskQueue) keeps its tasks.
///
/// Every state change of a task is appended as a [`StoreOp`], in the order
/// the queue made it; the queue calls [`Store::wait`] only where it promises
/// durability (before `submit` returns `Ok`). Appends from many threads may
/// be made durable together (group commit). Implementations must apply ops
/// in append order and must never apply a later op without the earlier ones.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Everything stored, for a queue starting over the store.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be read or is damaged.
    fn load(&self) -> Result<Recovered, StoreError>;

    /// Queues `ops` to be stored after every earlier append. Cheap: it must
    /// not wait for the disk.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store is closed or has failed.
    fn append(&self, ops: Vec<StoreOp>) -> Result<Ticket, StoreError>;

    /// Blocks until `ticket` (and everything appended before it) is
    /// durable.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the write failed; the ops of the ticket are then
    /// not stored.
    fn wait(&self, ticket: Ticket) -> Result<(), StoreError>;
}

/// A store in memory: fast, and gone with the process. Clones share the
/// same records, so a test can drop a queue and start another over the same
/// store to exercise recovery.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryState>>,
}

#[derive(Default)]
struct MemoryState {
    records: BTreeMap<TaskId, TaskRecord>,
    next_id: u64,
    appends: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records the store holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().records.len()
    }

    /// Whether the store holds no record.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish()
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Recovered, StoreError> {
        let s = self.inner.lock();
        Ok(Recovered {
            records: s.records.values().cloned().collect(),
            next_id: s.next_id,
        })
    }

    fn append(&self, ops: Vec<StoreOp>) -> Result<Ticket, StoreError> {
        let mut s = self.inner.lock();
        for op in ops {
            match op {
                StoreOp::Put(rec) => {
                    s.next_id = s.next_id.max(rec.id.0.saturating_add(1));
                    s.records.insert(rec.id, rec);
                }
                StoreOp::Delete(id) => {
                    s.records.remove(&id);
                }
            }
        }
        s.appends += 1;
        Ok(Ticket(s.appends))
    }

    fn wait(&self, _ticket: Ticket) -> Result<(), StoreError> {
        Ok(())
    }
}
