//! Property tests against plain reference models: `BoundedQueue` against a
//! `VecDeque`, `TaskQueue` against a ledger of what was submitted, leased
//! and completed, and the retry schedules against their stated bounds.
#![cfg(not(sysblocks_loom))]

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use proptest::prelude::*;
use sysblocks_task_queue::{
    Backoff, BoundedQueue, Clock, Delivery, ManualClock, Outcome, PopError, Priority, PushError,
    SubmitError, Task, TaskError, TaskId, TaskQueue,
};

const SEC: Duration = Duration::from_secs(1);

// ---- BoundedQueue against a VecDeque ----------------------------------

/// A queued value that counts its drops and owns a heap allocation (so a
/// double drop is also a double free, which valgrind reports).
#[derive(Debug)]
struct Item {
    id: usize,
    _heap: Box<usize>,
    drops: Rc<Cell<u32>>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// Every item made so far, by id: its drop count.
#[derive(Default)]
struct Items(Vec<Rc<Cell<u32>>>);

impl Items {
    fn make(&mut self) -> Item {
        let drops = Rc::new(Cell::new(0));
        self.0.push(Rc::clone(&drops));
        let id = self.0.len() - 1;
        Item {
            id,
            _heap: Box::new(id),
            drops,
        }
    }

    /// Items still in the model queue were never dropped; every other item
    /// (popped, or refused and handed back) was dropped exactly once.
    fn check(&self, queued: &VecDeque<usize>) -> Result<(), TestCaseError> {
        for (id, drops) in self.0.iter().enumerate() {
            let want = u32::from(!queued.contains(&id));
            prop_assert_eq!(
                drops.get(),
                want,
                "item {} dropped {} times",
                id,
                drops.get()
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum QueueOp {
    TryPush,
    TryPop,
    Len,
    Close,
    /// `push_timeout` with a zero timeout: the blocking path, never waiting.
    PushTimeout,
    /// `pop_timeout` with a zero timeout.
    PopTimeout,
    /// Blocking `push`, issued only when it cannot block (room, or closed).
    Push,
    /// Blocking `pop`, issued only when it cannot block (an item, or closed).
    Pop,
    /// A second handle, dropped at once: the items stay.
    CloneAndDrop,
}

fn queue_op() -> impl Strategy<Value = QueueOp> {
    prop_oneof![
        10 => Just(QueueOp::TryPush),
        8 => Just(QueueOp::TryPop),
        2 => Just(QueueOp::Len),
        1 => Just(QueueOp::Close),
        2 => Just(QueueOp::PushTimeout),
        2 => Just(QueueOp::PopTimeout),
        2 => Just(QueueOp::Push),
        2 => Just(QueueOp::Pop),
        1 => Just(QueueOp::CloneAndDrop),
    ]
}

/// What a push must return, by the model: closed wins over full.
fn expect_push(
    got: Result<(), PushError<Item>>,
    id: usize,
    model: &mut VecDeque<usize>,
    cap: usize,
    closed: bool,
) -> Result<(), TestCaseError> {
    match got {
        Err(PushError::Closed(item)) => {
            prop_assert!(closed, "Closed from an open queue");
            prop_assert_eq!(item.id, id, "handed back another item");
        }
        Err(PushError::Full(item)) => {
            prop_assert!(!closed, "Full from a closed queue");
            prop_assert_eq!(model.len(), cap, "Full below capacity");
            prop_assert_eq!(item.id, id, "handed back another item");
        }
        Ok(()) => {
            prop_assert!(!closed, "pushed into a closed queue");
            prop_assert!(model.len() < cap, "pushed beyond capacity");
            model.push_back(id);
        }
    }
    Ok(())
}

/// What a pop must return, by the model: the oldest item; once empty,
/// `Closed` if closed and `Empty` if not.
fn expect_pop(
    got: Result<Item, PopError>,
    model: &mut VecDeque<usize>,
    closed: bool,
) -> Result<(), TestCaseError> {
    match (got, model.pop_front()) {
        (Ok(item), Some(id)) => prop_assert_eq!(item.id, id, "not FIFO"),
        (Err(PopError::Empty), None) => prop_assert!(!closed, "Empty from a closed queue"),
        (Err(PopError::Closed), None) => prop_assert!(closed, "Closed from an open queue"),
        (got, want) => prop_assert!(false, "popped {:?}, model has {:?}", got, want),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Single-threaded, `BoundedQueue` behaves as a `VecDeque` with a
    /// capacity and a closed flag: every return value, the order of the
    /// items, `len`, `is_empty` and `is_closed` agree with the model after
    /// every operation, across many laps of the ring. An item is dropped
    /// exactly once: when popped or handed back, or, if still queued, when
    /// the last handle goes (and not before).
    #[test]
    fn bounded_queue_matches_a_vecdeque(
        cap in 1usize..8,
        ops in proptest::collection::vec(queue_op(), 1..300),
    ) {
        let mut items = Items::default();
        let q = BoundedQueue::new(cap).unwrap();
        let mut model: VecDeque<usize> = VecDeque::new();
        let mut closed = false;
        for op in ops {
            match op {
                QueueOp::TryPush => {
                    let item = items.make();
                    let id = item.id;
                    expect_push(q.try_push(item), id, &mut model, cap, closed)?;
                }
                QueueOp::PushTimeout => {
                    let item = items.make();
                    let id = item.id;
                    let got = q.push_timeout(item, Duration::ZERO);
                    expect_push(got, id, &mut model, cap, closed)?;
                }
                QueueOp::Push if closed || model.len() < cap => {
                    let item = items.make();
                    let id = item.id;
                    expect_push(q.push(item), id, &mut model, cap, closed)?;
                }
                QueueOp::TryPop => expect_pop(q.try_pop(), &mut model, closed)?,
                QueueOp::PopTimeout => {
                    expect_pop(q.pop_timeout(Duration::ZERO), &mut model, closed)?;
                }
                QueueOp::Pop if closed || !model.is_empty() => {
                    let got = q.pop().ok_or(PopError::Closed);
                    expect_pop(got, &mut model, closed)?;
                }
                QueueOp::Push | QueueOp::Pop => {}
                QueueOp::Len => prop_assert_eq!(q.len(), model.len()),
                QueueOp::Close => {
                    prop_assert_eq!(q.close(), !closed, "close reports whether it closed");
                    closed = true;
                }
                QueueOp::CloneAndDrop => drop(q.clone()),
            }
            prop_assert_eq!(q.len(), model.len());
            prop_assert_eq!(q.is_empty(), model.is_empty());
            prop_assert_eq!(q.is_closed(), closed);
            prop_assert_eq!(q.capacity(), cap);
            items.check(&model)?;
        }
        // The queued items go with the last handle, not with another one.
        let last = q.clone();
        drop(q);
        items.check(&model)?;
        drop(last);
        items.check(&VecDeque::new())?;
    }
}

// ---- TaskQueue against a ledger ---------------------------------------

#[derive(Debug, Clone)]
enum JobOp {
    Submit(u8, u8),
    Lease,
    Complete(usize, bool),
    Advance(u8),
}

fn job_op() -> impl Strategy<Value = JobOp> {
    prop_oneof![
        3 => (0u8..3, 0u8..4).prop_map(|(p, d)| JobOp::Submit(p, d)),
        3 => Just(JobOp::Lease),
        3 => (0usize..8, any::<bool>()).prop_map(|(i, ok)| JobOp::Complete(i, ok)),
        2 => (0u8..20).prop_map(JobOp::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Against a plain model: no task is delivered more than max_attempts
    /// times, none is lost (each ends completed, dead, or still live), and
    /// every retry waits within the backoff's bounds.
    #[test]
    fn never_beyond_max_attempts_never_lost(
        ops in proptest::collection::vec(job_op(), 1..80),
        max_attempts in 1u32..4,
        capacity in 1usize..6,
        seed in any::<u64>(),
    ) {
        let clock = ManualClock::new();
        let backoff = Backoff::exponential(SEC, 8 * SEC).unwrap();
        let q = TaskQueue::builder()
            .clock(clock.clone())
            .seed(seed)
            .lease(10 * SEC)
            .backoff(backoff)
            .max_attempts(max_attempts)
            .capacity(capacity)
            .build()
            .unwrap();
        let mut submitted = BTreeSet::new();
        let mut deliveries: BTreeMap<TaskId, u32> = BTreeMap::new();
        let mut held: Vec<Delivery> = Vec::new();
        let mut completed = BTreeSet::new();
        for op in ops {
            match op {
                JobOp::Submit(p, d) => {
                    let prio = [Priority::High, Priority::Normal, Priority::Low][p as usize];
                    let live = q.len();
                    match q.submit_after(Task::new(vec![p]).with_priority(prio), u32::from(d) * SEC) {
                        Ok(id) => { prop_assert!(live < capacity); submitted.insert(id); }
                        Err(SubmitError::Full(_)) => prop_assert_eq!(live, capacity),
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                }
                JobOp::Lease => {
                    if let Some(d) = q.lease() {
                        let n = deliveries.entry(d.id()).or_default();
                        *n += 1;
                        prop_assert_eq!(*n, d.attempt());
                        prop_assert!(d.attempt() <= max_attempts);
                        held.push(d);
                    }
                }
                JobOp::Complete(i, ok) => {
                    if !held.is_empty() {
                        let d = held.remove(i % held.len());
                        let now = clock.now_nanos();
                        let res = if ok { Ok(()) } else { Err(TaskError::new("x")) };
                        match q.complete(&d, res) {
                            Outcome::Completed => { prop_assert!(ok); completed.insert(d.id()); }
                            Outcome::Retry { at } => {
                                let (lo, hi) = backoff.bounds_nanos(d.attempt() - 1);
                                prop_assert!(now + lo <= at && at <= now + hi);
                            }
                            Outcome::Dead => prop_assert_eq!(d.attempt(), max_attempts),
                            Outcome::Stale => {}
                            Outcome::Foreign => prop_assert!(false, "our own delivery refused"),
                        }
                    }
                }
                JobOp::Advance(s) => clock.advance(u32::from(s) * SEC / 2),
            }
        }
        // Drain: everything still live completes eventually.
        for _ in 0..1000 {
            if q.is_empty() { break; }
            clock.advance(10 * SEC);
            while let Some(d) = q.lease() {
                prop_assert!(d.attempt() <= max_attempts);
                *deliveries.entry(d.id()).or_default() += 1;
                if q.complete(&d, Ok(())) == Outcome::Completed { completed.insert(d.id()); }
            }
        }
        prop_assert!(q.is_empty());
        let dead: BTreeSet<TaskId> = q.dead_letters().into_iter().map(|d| d.id).collect();
        prop_assert!(completed.is_disjoint(&dead));
        let ended: BTreeSet<TaskId> = completed.union(&dead).copied().collect();
        prop_assert_eq!(&ended, &submitted);
        for n in deliveries.values() {
            prop_assert!(*n <= max_attempts);
        }
        let s = q.stats();
        prop_assert_eq!(s.completed as usize, completed.len());
        prop_assert_eq!(s.submitted as usize, submitted.len());
    }
}

// ---- Retry schedules against their bounds -----------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn delays_stay_within_bounds(
        base in 1u64..1_000_000_000,
        extra in 0u64..10_000_000_000,
        unit in 1u64..2_000_000_000,
        retry in 0u32..100,
        random in any::<u64>(),
    ) {
        let schedules = [
            Backoff::exponential(Duration::from_nanos(base), Duration::from_nanos(base + extra)).unwrap(),
            Backoff::polynomial(Duration::from_nanos(unit)).unwrap(),
            Backoff::Fixed(Duration::from_nanos(base)),
        ];
        for b in schedules {
            let (lo, hi) = b.bounds_nanos(retry);
            let d = b.delay_nanos(retry, random);
            prop_assert!(lo <= d && d <= hi, "{b:?} retry {retry}: {lo} <= {d} <= {hi}");
        }
    }
}
