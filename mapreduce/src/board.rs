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
pub(crate) struct TaskBoard {
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
    pub(crate) fn new(tasks: usize, workers: usize) -> Self {
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
    pub(crate) fn claim(&self) -> Option<usize> {
        if self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        // Relaxed is enough: the cursor only has to hand out distinct
        // indices; results travel through the coordinator's lock.
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.tasks).then_some(i)
    }

    /// Records that one claimed task is finished.
    pub(crate) fn complete(&self) {
        self.completed.fetch_add(1, Ordering::Release);
    }

    /// How many tasks are finished.
    pub(crate) fn completed(&self) -> usize {
        self.completed.load(Ordering::Acquire)
    }

    /// Stops handing out tasks; tasks already claimed run to their end.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Records that one worker has exited. Extra calls are ignored.
    pub(crate) fn worker_exit(&self) {
        let mut live = self.live.lock();
        *live = live.saturating_sub(1);
        if *live == 0 {
            self.idle.notify_all();
        }
    }

    /// Blocks until every worker has exited (the runner polls with
    /// [`wait_for`](Self::wait_for) instead, to report progress meanwhile).
    #[cfg(all(test, sysblocks_loom))]
    fn wait(&self) {
        let mut live = self.live.lock();
        while *live > 0 {
            self.idle.wait(&mut live);
        }
    }

    /// Waits until every worker has exited or `timeout` passes (or a
    /// spurious wake-up); returns whether every worker has exited.
    pub(crate) fn wait_for(&self, timeout: Duration) -> bool {
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

/// loom models of the board: task hand-out (each index exactly once),
/// completion counting, cancellation, and the coordinator's wait for the
/// workers.
#[cfg(all(test, sysblocks_loom))]
mod loom_tests {
    use sysblocks_sync::{model, thread, Arc, AtomicUsize, Ordering};

    use super::TaskBoard;

    /// Two workers drain a board of two tasks: every task is claimed exactly
    /// once, both completions are counted, and the coordinator's wait returns
    /// only after both workers exited.
    #[test]
    fn loom_board_hands_out_each_task_once() {
        model(|| {
            let board = Arc::new(TaskBoard::new(2, 2));
            let claimed = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            let exited = Arc::new(AtomicUsize::new(0));
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    let (b, c, e) = (board.clone(), claimed.clone(), exited.clone());
                    thread::spawn(move || {
                        while let Some(i) = b.claim() {
                            c[i].fetch_add(1, Ordering::Relaxed);
                            b.complete();
                        }
                        e.fetch_add(1, Ordering::Relaxed);
                        b.worker_exit();
                    })
                })
                .collect();
            board.wait();
            assert_eq!(exited.load(Ordering::Relaxed), 2);
            assert_eq!(board.completed(), 2);
            assert_eq!(claimed[0].load(Ordering::Relaxed), 1);
            assert_eq!(claimed[1].load(Ordering::Relaxed), 1);
            for w in workers {
                w.join().unwrap();
            }
        });
    }

    /// A worker that fails its task cancels the board: no task is claimed twice,
    /// no task is claimed after the other worker has seen the cancellation, and
    /// the coordinator still wakes up.
    #[test]
    fn loom_board_cancel_stops_hand_out_and_wakes_coordinator() {
        model(|| {
            let board = Arc::new(TaskBoard::new(2, 2));
            let claimed = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
            let failing = {
                let (b, c) = (board.clone(), claimed.clone());
                thread::spawn(move || {
                    if let Some(i) = b.claim() {
                        c[i].fetch_add(1, Ordering::Relaxed);
                        b.complete();
                    }
                    // Its task failed for good (or there was none left).
                    b.cancel();
                    b.worker_exit();
                })
            };
            let other = {
                let (b, c) = (board.clone(), claimed.clone());
                thread::spawn(move || {
                    while let Some(i) = b.claim() {
                        c[i].fetch_add(1, Ordering::Relaxed);
                        b.complete();
                    }
                    assert!(b.claim().is_none());
                    b.worker_exit();
                })
            };
            board.wait();
            let total = claimed[0].load(Ordering::Relaxed) + claimed[1].load(Ordering::Relaxed);
            assert_eq!(board.completed(), total);
            assert!(claimed[0].load(Ordering::Relaxed) <= 1);
            assert!(claimed[1].load(Ordering::Relaxed) <= 1);
            failing.join().unwrap();
            other.join().unwrap();
            assert!(board.is_cancelled());
            assert!(board.claim().is_none());
        });
    }

    /// A worker slot the OS refused (the runner marks it exited at once,
    /// as `spawn_workers` does) while the one started worker runs: the
    /// started worker still does both tasks, and the coordinator wakes only
    /// after it exited.
    #[test]
    fn loom_board_refused_slot_leaves_tasks_to_the_others() {
        model(|| {
            let board = Arc::new(TaskBoard::new(2, 2));
            let done = Arc::new(AtomicUsize::new(0));
            let worker = {
                let (b, d) = (board.clone(), done.clone());
                thread::spawn(move || {
                    while b.claim().is_some() {
                        d.fetch_add(1, Ordering::Relaxed);
                        b.complete();
                    }
                    b.worker_exit();
                })
            };
            // The refused slot.
            board.worker_exit();
            board.wait();
            assert_eq!(done.load(Ordering::Relaxed), 2);
            assert_eq!(board.completed(), 2);
            worker.join().unwrap();
        });
    }
}
