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
    /// No id below this has ever been handed out. `u64::MAX` is never an
    /// id: at `u64::MAX` every id has been used.
    pub next_id: u64,
}

/// Where a [`TaskQueue`](crate::TaskQueue) keeps its tasks.
///
/// Every state change of a task is appended as a [`StoreOp`], in the order
/// the queue made it; the queue calls [`Store::wait`] only where it promises
/// durability (before `submit` returns `Ok`). Appends from many threads may
/// be made durable together (group commit). Implementations must apply ops
/// in append order and must never apply a later op without the earlier ones.
///
/// A store serves one queue at a time: a queue [`claim`](Store::claim)s it
/// before it loads anything and [`release`](Store::release)s it when its
/// last handle is dropped. Two queues over one store would both hand out
/// the next id and overwrite each other's tasks, and each would take the
/// other's leased tasks for ones a dead process left behind.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Makes the caller the store's only queue, until
    /// [`release`](Store::release). Clones of a store share its claim.
    ///
    /// # Errors
    ///
    /// [`StoreError::InUse`] if the store (or a clone of it) is claimed
    /// already; other [`StoreError`]s if the store has failed.
    fn claim(&self) -> Result<(), StoreError>;

    /// Ends the claim taken by [`claim`](Store::claim). Never fails.
    fn release(&self);

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
    /// durable. Returns at once for a ticket the store never handed out.
    ///
    /// # Errors
    ///
    /// [`StoreError::UnknownTicket`] for a ticket the store never handed
    /// out; another [`StoreError`] if the write failed, and the ops of the
    /// ticket are then not stored.
    fn wait(&self, ticket: Ticket) -> Result<(), StoreError>;
}

/// A store in memory: fast, and gone with the process. Clones share the
/// same records, so a test can drop a queue and start another over the same
/// store to exercise recovery (one queue at a time: see [`Store::claim`]).
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryState>>,
}

#[derive(Default)]
struct MemoryState {
    records: BTreeMap<TaskId, TaskRecord>,
    next_id: u64,
    appends: u64,
    claimed: bool,
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
    fn claim(&self) -> Result<(), StoreError> {
        let mut s = self.inner.lock();
        if s.claimed {
            return Err(StoreError::InUse);
        }
        s.claimed = true;
        Ok(())
    }

    fn release(&self) {
        self.inner.lock().claimed = false;
    }

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

    fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        if ticket.0 > self.inner.lock().appends {
            return Err(StoreError::UnknownTicket { ticket: ticket.0 });
        }
        Ok(())
    }
}
