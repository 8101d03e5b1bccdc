//! loom models of the runner's coordination primitive, [`TaskBoard`]: task
//! hand-out (each index exactly once), completion counting, cancellation,
//! and the coordinator's wait for the workers.
#![cfg(sysblocks_loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use sysblocks_mapreduce::TaskBoard;

/// Two workers drain a board of two tasks: every task is claimed exactly
/// once, both completions are counted, and the coordinator's wait returns
/// only after both workers exited.
#[test]
fn loom_board_hands_out_each_task_once() {
    sysblocks_sync::model(|| {
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
    sysblocks_sync::model(|| {
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
