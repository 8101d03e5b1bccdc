//! One shard of a [`Cache`](crate::Cache): its [`LruCache`] and loads in
//! flight behind a read-write lock, with the read buffer and counters of
//! the shared read path.
//!
//! Exact LRU reorders on every hit, and time to idle or an
//! [`Expiry`](crate::Expiry) moves a deadline on every read, so those
//! shards look up under the write lock. A W-TinyLFU shard without them
//! looks up under the read lock: the lookup, the TTL check and the clone
//! are read-only, the hit goes to the [`ReadBuffer`] (which counts it) and
//! the policy sees it when the buffer is drained, by the next writer or by
//! the reader that fills the buffer. A miss on that path is counted in an
//! atomic, so the statistics stay exact without the write lock.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use crate::flight::Flight;
use crate::lru::LruCache;
use crate::read_buffer::{ReadBuffer, SLOTS};
use crate::stats::Stats;
use crate::sync::{Arc, AtomicU64, Ordering, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One shard: its cache and the loads in flight for its keys.
pub(crate) struct Shard<K, V, S> {
    pub(crate) lru: LruCache<K, V, S>,
    pub(crate) inflight: hashbrown::HashMap<K, Arc<Flight<V>>, S>,
}

/// A shard behind its lock, on its own cache lines.
#[repr(align(128))]
pub(crate) struct ShardLock<K, V, S> {
    lock: RwLock<Shard<K, V, S>>,
    /// Whether hits take the read lock (W-TinyLFU without time to idle or
    /// per-entry expiry); otherwise `reads` and `misses` stay at zero.
    shared_reads: bool,
    /// Misses on the read path.
    misses: AtomicU64,
    reads: ReadBuffer,
}

impl<K: Hash + Eq, V, S: BuildHasher> ShardLock<K, V, S> {
    pub(crate) fn new(shard: Shard<K, V, S>, shared_reads: bool) -> Self {
        Self {
            lock: RwLock::new(shard),
            shared_reads,
            misses: AtomicU64::new(0),
            reads: ReadBuffer::new(),
        }
    }

    /// Whether [`get`](Self::get) serves hits under the read lock.
    #[inline]
    pub(crate) fn shared_reads(&self) -> bool {
        self.shared_reads
    }

    /// The shard for a write, or for a read that needs the policy's order:
    /// the hits buffered so far are replayed into the policy first.
    #[inline]
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Shard<K, V, S>> {
        let mut shard = self.lock.write();
        if self.shared_reads && self.reads.is_pending() {
            self.drain(&mut shard);
        }
        shard
    }

    /// The shard for a read that leaves the policy alone.
    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Shard<K, V, S>> {
        self.lock.read()
    }

    #[inline(never)]
    fn drain(&self, shard: &mut Shard<K, V, S>) {
        let mut hashes = [0; SLOTS];
        let n = self.reads.drain_into(&mut hashes);
        shard.lru.replay_hits(&hashes[..n]);
    }

    /// The read path of `Cache::get` (only when
    /// [`shared_reads`](Self::shared_reads)): a clone of the live value,
    /// the hit recorded for the policy. An expired entry is a miss and
    /// stays for the next write to reclaim.
    #[inline]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
        V: Clone,
    {
        let shard = self.lock.read();
        let Some(i) = shard.lru.peek_index(hash, key) else {
            drop(shard);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let v = shard.lru.value_at(i).clone();
        drop(shard);
        // A hash of 0 (one in 2^64) is recorded as 1, which no replay finds.
        if self.reads.record(hash.max(1)) {
            // The ring is full: drain it unless another thread holds the
            // lock (a writer drains it anyway; readers keep recording into
            // a full ring, which drops their hits, until a drain).
            if let Some(mut shard) = self.lock.try_write() {
                self.drain(&mut shard);
            }
        }
        Some(v)
    }

    /// The shard's counters: its cache's and the read path's.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = self.lock.read().lru.stats();
        s.hits += self.reads.hits();
        s.misses += self.misses.load(Ordering::Relaxed);
        s
    }
}
