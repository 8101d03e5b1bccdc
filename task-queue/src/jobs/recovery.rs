//! Recovery: what a queue starting over a store makes of the records it
//! finds there. A pure function of the records, the clock's time and the
//! attempt limit, so it is tested without a store or a clock.
//!
//! Pending tasks wait again (a delay keeps what remained of it when it was
//! written), leased tasks are ready at once and count a restart (the
//! process that held them is gone; that is no failure of the task, so it
//! costs no attempt), dead letters stay dead. A task whose restarts reach
//! `max_restarts` is dead-lettered.

use super::DeadLetter;
use crate::record::{RecordState, TaskRecord};
use crate::store::{Recovered, StoreOp};
use crate::task::{Task, TaskId};

/// A live task to put back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Waiting {
    pub(super) id: TaskId,
    pub(super) task: Task,
    /// Deliveries so far.
    pub(super) attempts: u32,
    /// Deliveries cut short by a restart.
    pub(super) restarts: u32,
    /// Earliest start, in clock nanoseconds (at or before `now`: ready).
    pub(super) run_at: u64,
}

/// The state a queue starts from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Recovery {
    /// Live tasks, in the store's order (ready ones run in this order).
    pub(super) waiting: Vec<Waiting>,
    /// Dead letters, in the store's order.
    pub(super) dead: Vec<DeadLetter>,
    /// The next id to hand out: above every stored id and the store's own.
    pub(super) next_id: u64,
    /// Leased tasks found (their process died).
    pub(super) recovered_leases: u64,
    /// What to write (durably) before the queue starts: every recovered
    /// lease becomes pending again with one more restart, or dead at
    /// `max_restarts`.
    pub(super) fixes: Vec<StoreOp>,
}

/// Recovers the queue state from `stored` at clock time `now`; a task
/// found leased for the `max_restarts`-th time is dead-lettered.
pub(super) fn recover(stored: Recovered, now: u64, max_restarts: u32) -> Recovery {
    let mut out = Recovery {
        next_id: stored.next_id,
        ..Recovery::default()
    };
    for rec in stored.records {
        out.next_id = out.next_id.max(rec.id.0.saturating_add(1));
        match rec.state {
            RecordState::Dead { error } => {
                out.dead.push(DeadLetter {
                    id: rec.id,
                    task: rec.task,
                    attempts: rec.attempts,
                    error,
                });
            }
            RecordState::Pending { run_at } => {
                let run_at = if now < rec.written_at {
                    now.saturating_add(run_at.saturating_sub(rec.written_at))
                } else {
                    run_at
                };
                out.waiting.push(Waiting {
                    id: rec.id,
                    task: rec.task,
                    attempts: rec.attempts,
                    restarts: rec.restarts,
                    run_at,
                });
            }
            RecordState::Leased { .. } => {
                out.recovered_leases += 1;
                // Saturating is exact here: `max_restarts` is at most
                // `u32::MAX`, so the limit is reached before it would wrap.
                let restarts = rec.restarts.saturating_add(1);
                if restarts >= max_restarts {
                    let dead = DeadLetter {
                        id: rec.id,
                        task: rec.task,
                        attempts: rec.attempts,
                        error: format!("lease lost in {restarts} restarts (max_restarts)"),
                    };
                    out.fixes.push(StoreOp::Put(dead.record(now)));
                    out.dead.push(dead);
                } else {
                    out.fixes.push(StoreOp::Put(TaskRecord {
                        id: rec.id,
                        task: rec.task.clone(),
                        attempts: rec.attempts,
                        restarts,
                        state: RecordState::Pending { run_at: now },
                        written_at: now,
                    }));
                    out.waiting.push(Waiting {
                        id: rec.id,
                        task: rec.task,
                        attempts: rec.attempts,
                        restarts,
                        run_at: now,
                    });
                }
            }
        }
    }
    out
}

#[cfg(all(test, not(sysblocks_loom)))]
mod tests {
    use super::*;

    fn rec(id: u64, attempts: u32, state: RecordState, written_at: u64) -> TaskRecord {
        TaskRecord {
            id: TaskId(id),
            task: Task::new(format!("t{id}")),
            attempts,
            restarts: 0,
            state,
            written_at,
        }
    }

    #[test]
    fn an_empty_store_keeps_its_next_id() {
        let r = recover(
            Recovered {
                records: Vec::new(),
                next_id: 42,
            },
            7,
            3,
        );
        assert_eq!(
            r,
            Recovery {
                next_id: 42,
                ..Recovery::default()
            }
        );
    }

    #[test]
    fn each_state_is_recovered_from_records_alone() {
        let records = vec![
            // Written by a process whose clock was ahead of ours: 30 of
            // its delay remained, so it runs at now + 30.
            rec(3, 0, RecordState::Pending { run_at: 130 }, 100),
            // Written at or before now: the delay is kept as it was.
            rec(1, 1, RecordState::Pending { run_at: 8 }, 2),
            // Leased: ready at once, rewritten as pending with a restart.
            rec(5, 2, RecordState::Leased { until: 999 }, 1),
            // Leased on its last attempt: a restart is no failure, so it
            // runs again all the same.
            rec(9, 3, RecordState::Leased { until: 999 }, 1),
            // Leased for the third time with max_restarts 3: dead,
            // rewritten as dead.
            TaskRecord {
                restarts: 2,
                ..rec(7, 5, RecordState::Leased { until: 999 }, 1)
            },
            rec(
                4,
                3,
                RecordState::Dead {
                    error: "boom".into(),
                },
                1,
            ),
        ];
        let now = 5;
        let r = recover(
            Recovered {
                records,
                next_id: 2,
            },
            now,
            3,
        );
        let waiting: Vec<(u64, u32, u32, u64)> = r
            .waiting
            .iter()
            .map(|w| (w.id.0, w.attempts, w.restarts, w.run_at))
            .collect();
        assert_eq!(
            waiting,
            [(3, 0, 0, 35), (1, 1, 0, 8), (5, 2, 1, now), (9, 3, 1, now)]
        );
        assert_eq!(r.waiting[0].task, Task::new("t3"));
        let dead: Vec<(u64, u32, &str)> = r
            .dead
            .iter()
            .map(|d| (d.id.0, d.attempts, d.error.as_str()))
            .collect();
        assert_eq!(
            dead,
            [
                (7, 5, "lease lost in 3 restarts (max_restarts)"),
                (4, 3, "boom"),
            ]
        );
        assert_eq!(r.next_id, 10);
        assert_eq!(r.recovered_leases, 3);
        let pending = |id: u64, attempts: u32| {
            StoreOp::Put(TaskRecord {
                id: TaskId(id),
                task: Task::new(format!("t{id}")),
                attempts,
                restarts: 1,
                state: RecordState::Pending { run_at: now },
                written_at: now,
            })
        };
        assert_eq!(
            r.fixes,
            [
                pending(5, 2),
                pending(9, 3),
                StoreOp::Put(TaskRecord {
                    id: TaskId(7),
                    task: Task::new("t7"),
                    attempts: 5,
                    restarts: 0,
                    state: RecordState::Dead {
                        error: "lease lost in 3 restarts (max_restarts)".into(),
                    },
                    written_at: now,
                }),
            ]
        );
    }
}
