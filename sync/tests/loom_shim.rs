//! The shim's own models: its lock wrappers exclude and its condition
//! variable loses no wake-up, in every interleaving loom explores. They run
//! only under `--cfg sysblocks_loom`.
#![cfg(sysblocks_loom)]

use sysblocks_sync::{
    model, thread, Arc, AtomicUsize, Condvar, Mutex, Ordering, RwLock, UnsafeCell,
};

#[test]
fn loom_shim_mutex_excludes() {
    model(|| {
        let m = Arc::new(Mutex::new(0u32));
        let m2 = Arc::clone(&m);
        let t = thread::spawn(move || *m2.lock() += 1);
        *m.lock() += 1;
        t.join().unwrap();
        assert_eq!(*m.lock(), 2);
    });
}

#[test]
fn loom_shim_condvar_wakes() {
    model(|| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p2 = Arc::clone(&pair);
        let t = thread::spawn(move || {
            *p2.0.lock() = true;
            p2.1.notify_all();
        });
        let mut g = pair.0.lock();
        while !*g {
            pair.1.wait(&mut g);
        }
        drop(g);
        t.join().unwrap();
    });
}

#[test]
fn loom_shim_rwlock_writer_excludes_readers() {
    model(|| {
        let l = Arc::new(RwLock::new((0u32, 0u32)));
        let l2 = Arc::clone(&l);
        let t = thread::spawn(move || {
            let mut w = l2.write();
            w.0 += 1;
            w.1 += 1;
        });
        let r = l.read();
        assert_eq!(r.0, r.1, "a reader saw half a write");
        drop(r);
        t.join().unwrap();
        assert_eq!(*l.read(), (1, 1));
    });
}

#[test]
fn loom_shim_rwlock_try_write_fails_only_while_held() {
    model(|| {
        let l = Arc::new(RwLock::new(0u32));
        let l2 = Arc::clone(&l);
        let t = thread::spawn(move || {
            let r = l2.read();
            *r
        });
        // Either the reader holds the lock (refused) or not (granted);
        // a granted write is exclusive.
        if let Some(mut w) = l.try_write() {
            *w += 1;
        }
        let seen = t.join().unwrap();
        assert!(seen <= 1);
        let w = l.try_write();
        assert!(w.is_some(), "no other holder: try_write must succeed");
    });
}

#[test]
fn loom_shim_unsafe_cell_handoff() {
    model(|| {
        struct Slot {
            ready: AtomicUsize,
            value: UnsafeCell<u32>,
        }
        // SAFETY: in the closures below, the writer is the only accessor
        // until it publishes `ready` with Release; the reader touches the
        // cell only after an Acquire load sees it.
        unsafe impl Sync for Slot {}
        let s = Arc::new(Slot {
            ready: AtomicUsize::new(0),
            value: UnsafeCell::new(0),
        });
        let s2 = Arc::clone(&s);
        let t = thread::spawn(move || {
            // SAFETY: no other access before `ready` is published.
            s2.value.with_mut(|p| unsafe { *p = 7 });
            s2.ready.store(1, Ordering::Release);
        });
        if s.ready.load(Ordering::Acquire) == 1 {
            // SAFETY: the Acquire load saw the writer's Release store.
            assert_eq!(s.value.with(|p| unsafe { *p }), 7);
        }
        t.join().unwrap();
    });
}
