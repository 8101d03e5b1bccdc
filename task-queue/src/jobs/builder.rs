//! `TaskQueueBuilder`: the queue's settings, checked at `build`, which
//! also recovers what the store holds.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use sysblocks_clock::{saturating_nanos, Clock, MonotonicClock, SharedClock};

use super::recovery::{recover, Recovery};
use super::{Core, Inner, TaskQueue};
use crate::backoff::Backoff;
use crate::error::BuildError;
use crate::store::{MemoryStore, Store};
use crate::sync::{Arc, Condvar, Mutex};

/// Configures a [`TaskQueue`].
#[derive(Debug)]
pub struct TaskQueueBuilder {
    capacity: usize,
    max_attempts: u32,
    max_restarts: u32,
    lease: Duration,
    backoff: Backoff,
    clock: Option<SharedClock>,
    store: Option<Box<dyn Store>>,
    seed: Option<u64>,
}

impl Default for TaskQueueBuilder {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_attempts: 5,
            max_restarts: 100,
            lease: Duration::from_secs(30),
            backoff: Backoff::default(),
            clock: None,
            store: None,
            seed: None,
        }
    }
}

impl TaskQueueBuilder {
    /// The most live tasks (waiting, delayed or running; dead letters do
    /// not count) the queue holds; `submit` returns
    /// [`SubmitError::Full`](crate::SubmitError::Full) beyond it. Default 10 000.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// How many failed attempts a task gets before it goes to the
    /// dead-letter queue. An attempt fails when its handler returns `Err`
    /// or panics, or when its lease runs out while the queue runs. A
    /// delivery cut short by a restart (the task is found leased when a
    /// queue starts over the store) is no failure of the task and does not
    /// count here: see [`TaskQueueBuilder::max_restarts`]. Without restarts
    /// this is the most deliveries a task gets. Default 5.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// How many deliveries of a task may be cut short by a restart before
    /// it goes to the dead-letter queue: a task that keeps being found
    /// leased at start-up may be what crashes the process. Kept apart from
    /// [`TaskQueueBuilder::max_attempts`] and higher by default, so that a
    /// crash loop does not dead-letter healthy tasks. Default 100.
    #[must_use]
    pub fn max_restarts(mut self, restarts: u32) -> Self {
        self.max_restarts = restarts;
        self
    }

    /// The lease (visibility timeout): a delivery not completed within it
    /// counts as failed and the task is delivered again. Default 30 s. A
    /// lease whose end does not fit the clock's `u64` nanoseconds
    /// (`Duration::MAX`, or a clock near its end) never expires.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The retry schedule. Default [`Backoff::default`].
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The clock that times leases, delays and backoff. Default a
    /// [`MonotonicClock`].
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(crate::sync::StdArc::new(clock));
        self
    }

    /// Where tasks are kept. Default a fresh [`MemoryStore`].
    #[must_use]
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Seeds the jitter of the retry schedule, for reproducible runs.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the queue, claims its store (one queue per store) and
    /// recovers whatever the store holds: pending tasks wait again (a delay
    /// keeps what remained of it when it was written), leased tasks are
    /// delivered again and count a restart (the process that held them is
    /// gone), dead letters stay dead.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for a zero capacity, max attempts, max restarts
    /// or lease; [`BuildError::Zero`] or [`BuildError::Invalid`] for a
    /// backoff that [`Backoff::exponential`] or [`Backoff::polynomial`]
    /// would refuse; [`BuildError::Store`] if the store cannot be read, and
    /// [`BuildError::Store`] with [`StoreError::InUse`](crate::StoreError::InUse)
    /// if another queue holds the store.
    pub fn build(self) -> Result<TaskQueue, BuildError> {
        if self.capacity == 0 {
            return Err(BuildError::Zero {
                setting: "capacity",
            });
        }
        if self.max_attempts == 0 {
            return Err(BuildError::Zero {
                setting: "max_attempts",
            });
        }
        if self.max_restarts == 0 {
            return Err(BuildError::Zero {
                setting: "max_restarts",
            });
        }
        if self.lease.is_zero() {
            return Err(BuildError::Zero { setting: "lease" });
        }
        self.backoff.check()?;
        let clock: SharedClock = self
            .clock
            .unwrap_or_else(|| crate::sync::StdArc::new(MonotonicClock::new()));
        let store = self
            .store
            .unwrap_or_else(|| Box::new(MemoryStore::new()) as Box<dyn Store>);
        let seed = self.seed.unwrap_or_else(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        });
        store.claim()?;
        let core = match start(&*store, &*clock, seed, self.max_restarts) {
            Ok(core) => core,
            Err(e) => {
                store.release();
                return Err(e);
            }
        };
        Ok(TaskQueue {
            inner: Arc::new(Inner {
                id: crate::sync::unique_id(),
                core: Mutex::new(core),
                work: Condvar::new(),
                store,
                clock,
                capacity: self.capacity,
                max_attempts: self.max_attempts,
                lease_nanos: saturating_nanos(self.lease),
                backoff: self.backoff,
            }),
        })
    }
}

/// Loads the claimed `store` and makes durable what recovery changed.
fn start(
    store: &dyn Store,
    clock: &dyn Clock,
    seed: u64,
    max_restarts: u32,
) -> Result<Core, BuildError> {
    let recovered = store.load()?;
    let now = clock.now_nanos();
    let Recovery {
        waiting,
        dead,
        next_id,
        recovered_leases,
        fixes,
    } = recover(recovered, now, max_restarts);
    let mut core = Core::new(next_id, seed);
    core.stats.recovered_leases = recovered_leases;
    for w in waiting {
        core.insert(w.id.0, w.task, (w.attempts, w.restarts), w.run_at, now);
    }
    for d in dead {
        core.dead.insert(d.id.0, d);
    }
    if !fixes.is_empty() {
        let ticket = store.append(fixes)?;
        store.wait(ticket)?;
    }
    Ok(core)
}
