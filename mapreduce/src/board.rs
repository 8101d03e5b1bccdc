//! The coordination primitive of the runner: hands out task indices to
//! workers and lets the coordinator wait for the workers to finish.

use std::time::Duration;

use crate::sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Ordering};

/// Hands out the indices `0..tasks` to worker threads, each exactly once,
/// counts completions, and lets a coordinator wait until every worker has
/// exited (all tasks done, or the board cancelled after a failure).
///
/// A worker loops on [`claim`](Self::claim), calls
/// [`complete`](Self::complete) after each task, and calls
/// [`worker_exit`](Self::worker_exit) once when `claim` returns `None`
/// (the runner does it from a drop guard, so a panicking worker cannot leave
/// the coordinator waiting forever).
#[derive(Debug)]
pub struct TaskBoard {
    tasks: usize,
    next: AtomicUsize,
    completed: AtomicUsize,
    cancelled: AtomicBool,
    live: Mutex<usize>,
    idle: Condvar,
}

impl TaskBoard {
    /// A board for `tasks` tasks and `workers` worker threads.
    #[must_use]
    pub fn new(tasks: usize, workers: usize) -> Self {
        Self {
            tasks,
            next: AtomicUsize::new(0),
            completed: AtomicUsize::new(0),
            cancelled: AtomicBool::new(false),
            live: Mutex::new(workers),
            idle: Condvar::new(),
        }
    }

    /// The next unclaimed task, or `None` when all are claimed or the board
    /// is cancelled.
    pub fn claim(&self) -> Option<usize> {
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        // Relaxed is enough: the cursor only has to hand out distinct
        // indices; results travel through the coordinator's lock.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.tasks).then_some(i)
    }

    /// Records that one claimed task is finished.
    pub fn complete(&self) {
        self.completed.fetch_add(1, Ordering::Release);
    }

    /// How many tasks are finished.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::Acquire)
    }

    /// Stops handing out tasks; tasks already claimed run to their end.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Records that one worker has exited. Extra calls are ignored.
    pub fn worker_exit(&self) {
        let mut live = self.live.lock();
        *live = live.saturating_sub(1);
        if *live == 0 {
            self.idle.notify_all();
        }
    }

    /// Blocks until every worker has exited.
    pub fn wait(&self) {
        let mut live = self.live.lock();
        while *live > 0 {
            self.idle.wait(&mut live);
        }
    }

    /// Waits until every worker has exited or `timeout` passes (or a
    /// spurious wake-up); returns whether every worker has exited.
    pub fn wait_for(&self, timeout: Duration) -> bool {
        let mut live = self.live.lock();
        if *live > 0 {
            let _ = self.idle.wait_for(&mut live, timeout);
        }
        *live == 0
    }
}

/// Calls [`TaskBoard::worker_exit`] when dropped, also during a panic.
pub(crate) struct WorkerGuard<'a>(pub(crate) &'a TaskBoard);

impl Drop for WorkerGuard<'_> {
    fn drop(&mut self) {
        self.0.worker_exit();
    }
}
