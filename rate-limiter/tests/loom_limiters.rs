//! loom models of the lock-free paths: concurrent checks never admit more
//! than the quota allows. Run with `--cfg sysblocks_loom`.
#![cfg(sysblocks_loom)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc as StdArc;

use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

use sysblocks_rate_limiter::{
    Algorithm, ConcurrencyLimiter, FixedWindow, Gcra, Keyed, LeakyBucket, ManualClock, Quota,
    RateLimiter, TokenBucket,
};

/// A keyed store of `template`s, one shard, room for two `u8` keys.
fn one_shard<A: Algorithm>(template: A) -> Arc<Keyed<u8, A>> {
    Arc::new(
        Keyed::builder(template)
            .max_keys(2)
            .shards(1)
            .build::<u8>()
            .unwrap(),
    )
}

/// Three threads each check once against a burst of 2 with the clock held
/// still: exactly two are admitted, in every interleaving.
#[test]
fn loom_gcra_never_over_admits() {
    sysblocks_sync::model(|| {
        let g = Arc::new(Gcra::with_clock(Quota::per_second(2), ManualClock::new()).unwrap());
        let admitted = StdArc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let g = Arc::clone(&g);
                let a = StdArc::clone(&admitted);
                thread::spawn(move || {
                    if g.check().is_allowed() {
                        a.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        if g.check().is_allowed() {
            admitted.fetch_add(1, Ordering::Relaxed);
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::Relaxed), 2);
    });
}

/// Two threads take 1 and 2 tokens from a bucket of 2: never both.
#[test]
fn loom_token_bucket_never_over_admits() {
    sysblocks_sync::model(|| {
        let b = Arc::new(
            TokenBucket::builder()
                .capacity(2)
                .refill(1, std::time::Duration::from_secs(1))
                .clock(ManualClock::new())
                .build()
                .unwrap(),
        );
        let b2 = Arc::clone(&b);
        let t = thread::spawn(move || b2.check_n(2).unwrap().is_allowed() as u32 * 2);
        let mine = b.check_n(1).unwrap().is_allowed() as u32;
        let theirs = t.join().unwrap();
        assert!(mine + theirs <= 2);
        assert!(mine + theirs >= 1, "one of them fits");
    });
}

/// Two threads hold permits of a limit of 1: never both at once.
#[test]
fn loom_concurrency_limiter_caps_in_flight() {
    sysblocks_sync::model(|| {
        let c = Arc::new(ConcurrencyLimiter::new(1).unwrap());
        let c2 = Arc::clone(&c);
        let t = thread::spawn(move || {
            if let Some(p) = c2.try_acquire() {
                assert_eq!(c2.in_flight(), 1);
                drop(p);
            }
        });
        if let Some(p) = c.try_acquire() {
            assert_eq!(c.in_flight(), 1);
            drop(p);
        }
        t.join().unwrap();
        assert_eq!(c.in_flight(), 0);
    });
}

/// Two threads check the same new key of a keyed GCRA with burst 1: both
/// miss under the read lock and race to insert under the write lock;
/// exactly one is admitted.
#[test]
fn loom_keyed_same_key_admits_once() {
    sysblocks_sync::model(|| {
        let g = Gcra::with_clock(Quota::per_second(1), ManualClock::new()).unwrap();
        let k = one_shard(g);
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&7).is_allowed() as u32);
        let mine = k.check_key(&7).is_allowed() as u32;
        assert_eq!(mine + t.join().unwrap(), 1);
    });
}

/// A present key checked by two threads at once under the shard's read
/// lock (a CAS on the key's state word each): with one cell left of a burst
/// of 2, exactly one is admitted.
#[test]
fn loom_keyed_present_key_concurrent_checks_admit_the_quota() {
    sysblocks_sync::model(|| {
        let g = Gcra::with_clock(Quota::per_second(2), ManualClock::new()).unwrap();
        let k = one_shard(g);
        assert!(k.check_key(&7).is_allowed());
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&7).is_allowed() as u32);
        let mine = k.check_key(&7).is_allowed() as u32;
        assert_eq!(mine + t.join().unwrap(), 1);
        assert_eq!(k.len(), 1);
    });
}

/// An insertion racing a check on the same new key (burst 2): one thread
/// asks for 2 cells, the other for 1. Whatever the order (either may insert,
/// the other then finds the key under the read or the write lock), at most
/// 2 cells are admitted, and never both requests.
#[test]
fn loom_keyed_insert_racing_a_check_admits_at_most_the_quota() {
    sysblocks_sync::model(|| {
        let g = Gcra::with_clock(Quota::per_second(2), ManualClock::new()).unwrap();
        let k = one_shard(g);
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key_n(&7, 2).unwrap().is_allowed());
        let one = k.check_key(&7).is_allowed();
        let two = t.join().unwrap();
        assert!(one != two, "exactly one of them fits: {one} {two}");
        assert_eq!(k.len(), 1);
        // One cell is left iff the 1-cell request won.
        assert_eq!(k.check_key(&7).is_allowed(), one);
    });
}

/// The per-key mutex cell of a window algorithm: two threads check a
/// present key of a fixed window with one slot left; exactly one is
/// admitted.
#[test]
fn loom_keyed_locked_cell_admits_the_quota() {
    sysblocks_sync::model(|| {
        let w = FixedWindow::with_clock(Quota::per_second(2), ManualClock::new()).unwrap();
        let k = one_shard(w);
        assert!(k.check_key(&7).is_allowed());
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&7).is_allowed() as u32);
        let mine = k.check_key(&7).is_allowed() as u32;
        assert_eq!(mine + t.join().unwrap(), 1);
    });
}

/// Two checks of a nodelay leaky bucket that admits 2 at once (nginx burst
/// 1), costs 2 and 1, race on its CAS: in either order the second finds
/// the excess too high, so exactly one is admitted, as the sequential rule
/// says, and the word records exactly that one.
#[test]
fn loom_leaky_bucket_cas_admits_what_the_sequential_rule_allows() {
    sysblocks_sync::model(|| {
        let lb =
            Arc::new(LeakyBucket::with_clock(Quota::per_second(2), ManualClock::new()).unwrap());
        let lb2 = Arc::clone(&lb);
        let t = thread::spawn(move || lb2.check_n(2).unwrap().is_allowed());
        let one = lb.check().is_allowed();
        let two = t.join().unwrap();
        assert!(one != two, "exactly one of them fits: {one} {two}");
        // One request's room is left iff the 1-cell request won.
        assert_eq!(lb.check().is_allowed(), one);
    });
}

/// Two checks of a delaying leaky bucket (nginx burst 2) race on its CAS:
/// one is served at once and the other after one interval, whichever wins,
/// and the word then holds both (the next waits two intervals, the one
/// after is rejected).
#[test]
fn loom_leaky_bucket_cas_records_both_delays() {
    sysblocks_sync::model(|| {
        let lb = Arc::new(
            LeakyBucket::nginx(Quota::per_second(10), 2)
                .clock(ManualClock::new())
                .build()
                .unwrap(),
        );
        let lb2 = Arc::clone(&lb);
        let t = thread::spawn(move || lb2.check().delay());
        let mine = lb.check().delay();
        let theirs = t.join().unwrap();
        let ms = Duration::from_millis(100);
        assert_eq!(mine.min(theirs), Duration::ZERO);
        assert_eq!(mine.max(theirs), ms);
        let third = lb.check();
        assert!(third.is_allowed());
        assert_eq!(third.delay(), 2 * ms);
        assert!(!lb.check().is_allowed());
    });
}

/// A keyed GCRA (burst 2 per minute) with one shard of room for two keys.
fn two_key_store(clock: &ManualClock) -> Arc<Keyed<u8, Gcra>> {
    let g = Gcra::with_clock(Quota::per_minute(2), clock.clone()).unwrap();
    Arc::new(Keyed::builder(g).max_keys(2).shards(1).build().unwrap())
}

/// An insertion into a full shard evicts its least recently seen key
/// while another thread checks a present, more recent key: that key's
/// state (one cell of two used) is neither lost (its next check would then
/// pass as a new key's) nor duplicated (the store holds the two keys).
#[test]
fn loom_keyed_evict_keeps_a_present_key_being_checked() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let k = two_key_store(&clock);
        assert!(k.check_key(&2).is_allowed()); // seen at tick 0: the oldest
        clock.set(Duration::from_millis(2));
        assert!(k.check_key(&1).is_allowed()); // seen at tick 1
        clock.set(Duration::from_millis(4));
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&3).is_allowed());
        assert!(k.check_key(&1).is_allowed(), "the second cell of key 1");
        assert!(t.join().unwrap(), "key 3 is new");
        assert_eq!(k.evictions(), 1);
        assert_eq!(k.len(), 2, "keys 1 and 3, once each");
        assert!(!k.check_key(&1).is_allowed(), "key 1 kept both cells");
        assert!(k.check_key(&2).is_allowed(), "key 2 was the one evicted");
    });
}

/// An insertion into a full shard first sweeps it: a key whose state is
/// fresh-equivalent is dropped, and no live key is evicted, while another
/// thread checks the present live key.
#[test]
fn loom_keyed_sweep_keeps_a_present_key_being_checked() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let k = two_key_store(&clock);
        assert!(k.check_key(&2).is_allowed()); // TAT 30 s: stale by 31 s
        clock.set(Duration::from_secs(31));
        assert!(k.check_key(&1).is_allowed());
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&3).is_allowed());
        assert!(k.check_key(&1).is_allowed(), "the second cell of key 1");
        assert!(t.join().unwrap());
        assert_eq!(k.evictions(), 0, "only the stale key was dropped");
        assert_eq!(k.len(), 2, "keys 1 and 3, once each");
        assert!(!k.check_key(&1).is_allowed(), "key 1 kept both cells");
    });
}

/// An insertion that grows the shard's table (its eighth key: the first
/// table holds seven) moves every entry and its stamp into a new table
/// while another thread checks a present key: the key's state moves with
/// it, updated exactly once.
#[test]
fn loom_keyed_grow_keeps_a_present_key_being_checked() {
    sysblocks_sync::model(|| {
        let clock = ManualClock::new();
        let g = Gcra::with_clock(Quota::per_minute(2), clock.clone()).unwrap();
        let k = Arc::new(Keyed::builder(g).max_keys(16).shards(1).build().unwrap());
        for key in 1..=7u8 {
            assert!(k.check_key(&key).is_allowed());
        }
        let k2 = Arc::clone(&k);
        let t = thread::spawn(move || k2.check_key(&8).is_allowed());
        assert!(k.check_key(&1).is_allowed(), "the second cell of key 1");
        assert!(t.join().unwrap());
        assert_eq!(k.len(), 8);
        assert_eq!(k.evictions(), 0);
        assert!(!k.check_key(&1).is_allowed(), "key 1 kept both cells");
        assert!(k.check_key(&2).is_allowed(), "key 2 has its second cell");
        assert!(!k.check_key(&2).is_allowed());
    });
}
