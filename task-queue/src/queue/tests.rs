use super::*;
use std::time::Duration;

/// Counts its drops in a shared counter.
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn every_item_is_dropped_exactly_once() {
    // Slots are `MaybeUninit`: an item popped must not be dropped again
    // by the queue, and an item still queued when the last handle goes
    // must be dropped by it, including after the ring wrapped around.
    for (cap, pushed, popped) in [(1, 1, 0), (3, 3, 1), (4, 11, 9), (5, 12, 12), (7, 30, 25)] {
        let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let q = BoundedQueue::new(cap).unwrap();
        let (mut pushes, mut pops) = (0, 0);
        while pushes < pushed {
            while pushes < pushed && q.len() < cap {
                assert!(q.try_push(Counted(drops.clone())).is_ok());
                pushes += 1;
            }
            while pops < popped && (q.len() == cap || pushes == pushed) {
                drop(q.try_pop().unwrap());
                pops += 1;
            }
        }
        let full = q.try_push(Counted(drops.clone()));
        let refused = usize::from(full.is_err());
        drop(full);
        let load = drops.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            load,
            popped + refused,
            "cap {cap}: only popped or refused items dropped"
        );
        let second = q.clone();
        drop(q);
        assert_eq!(
            drops.load(std::sync::atomic::Ordering::Relaxed),
            load,
            "a handle remains"
        );
        drop(second);
        // The extra item was either refused (and dropped above) or is
        // queued: `pushed + 1` items in all, each dropped once.
        let total = drops.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(total, pushed + 1, "cap {cap}: queued items dropped once");
    }
}

#[test]
fn zero_capacity_is_an_error() {
    assert_eq!(
        BoundedQueue::<u8>::new(0).unwrap_err(),
        BuildError::Zero {
            setting: "capacity"
        }
    );
}

/// A capacity whose slot array does not fit the address space is a typed
/// error, checked before anything is allocated (it used to panic with
/// "capacity overflow" inside the allocation).
#[test]
fn an_impossible_capacity_is_an_error() {
    let max = BoundedQueue::<u64>::max_capacity();
    assert_eq!(
        max,
        (isize::MAX as usize / std::mem::size_of::<Slot<u64>>()).min(usize::MAX / 4)
    );
    for cap in [usize::MAX / 4, usize::MAX / 4 + 1, usize::MAX, max + 1] {
        assert_eq!(
            BoundedQueue::<u64>::new(cap).unwrap_err(),
            BuildError::TooLarge {
                setting: "capacity",
                max: max as u64
            },
            "capacity {cap}"
        );
    }
    // Large items lower the maximum.
    assert!(BoundedQueue::<[u8; 4096]>::max_capacity() < max);
}

#[test]
fn fifo_and_full_for_several_laps() {
    for cap in [1usize, 2, 3, 4, 7] {
        let q = BoundedQueue::new(cap).unwrap();
        let mut next_in = 0u32;
        let mut next_out = 0u32;
        for round in 0..20 {
            let burst = 1 + (round % (cap + 1));
            for _ in 0..burst {
                match q.try_push(next_in) {
                    Ok(()) => next_in += 1,
                    Err(PushError::Full(v)) => {
                        assert_eq!(v, next_in);
                        assert_eq!(q.len(), cap);
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            assert_eq!(q.len() as u32, next_in - next_out);
            while let Ok(v) = q.try_pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
            assert_eq!(q.len(), 0);
        }
        assert_eq!(next_in, next_out);
    }
}

#[test]
fn close_drains_then_reports_closed() {
    let q = BoundedQueue::new(4).unwrap();
    q.try_push(1).unwrap();
    assert!(q.close());
    assert!(!q.close());
    assert_eq!(q.try_push(2), Err(PushError::Closed(2)));
    assert_eq!(q.push(3), Err(PushError::Closed(3)));
    assert_eq!(q.try_pop(), Ok(1));
    assert_eq!(q.try_pop(), Err(PopError::Closed));
    assert_eq!(q.pop(), None);
}

#[test]
fn timeouts_report_full_and_empty() {
    let q = BoundedQueue::new(1).unwrap();
    assert_eq!(
        q.pop_timeout(Duration::from_millis(5)),
        Err(PopError::Empty)
    );
    q.push(1).unwrap();
    assert_eq!(
        q.push_timeout(2, Duration::from_millis(5)),
        Err(PushError::Full(2))
    );
    assert_eq!(q.pop_timeout(Duration::from_millis(5)), Ok(1));
}

#[test]
fn threads_deliver_everything_exactly_once() {
    let q = BoundedQueue::new(3).unwrap();
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    q.push(p * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(v) = q.pop() {
                    got.push(v);
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    q.close();
    let mut all: Vec<u64> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    all.sort_unstable();
    let mut want: Vec<u64> = (0..3u64)
        .flat_map(|p| (0..2000).map(move |i| p * 1_000_000 + i))
        .collect();
    want.sort_unstable();
    assert_eq!(all, want);
}

#[test]
fn close_wakes_blocked_pop_and_push() {
    let q = BoundedQueue::<u8>::new(1).unwrap();
    let q2 = q.clone();
    let popper = std::thread::spawn(move || q2.pop());
    let full = BoundedQueue::new(1).unwrap();
    full.push(0u8).unwrap();
    let f2 = full.clone();
    let pusher = std::thread::spawn(move || f2.push(9));
    std::thread::sleep(Duration::from_millis(20));
    q.close();
    full.close();
    assert_eq!(popper.join().unwrap(), None);
    assert_eq!(pusher.join().unwrap(), Err(PushError::Closed(9)));
}
