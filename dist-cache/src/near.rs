//! The near cache: a small in-process `lru-ttl-cache` in front of Redis,
//! kept fresh by Redis client-side tracking in broadcast mode.
//!
//! Why tracking and not pub/sub: with `CLIENT TRACKING ON BCAST PREFIX p`
//! the server itself announces every change to a key under the prefix,
//! whoever made it (another client of this crate, `redis-cli`, a Lua
//! script) and however (a write, a delete, an expiry, an eviction,
//! `FLUSHALL`). With pub/sub every writer would have to `PUBLISH` after
//! each write, and a writer that does not (or dies in between) would leave
//! stale copies until their TTL. Tracking needs RESP3 (Redis 6 or later)
//! on one extra connection per node.
//!
//! A remote read takes a [`Ticket`] before it is sent and fills the near
//! cache only if no invalidation for the key's stripe (nor a flush)
//! arrived meanwhile, re-checking after the insert: a reply that raced an
//! invalidation is never kept. While a node's tracking connection is
//! down, values read from that node are not kept, and the near cache is
//! cleared when a tracking connection is lost (its invalidations may be
//! lost with it).

use std::time::Duration;

use bytes::Bytes;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use sysblocks_clock::SharedClock;
use sysblocks_consistent_hash::fmix64;
use sysblocks_lru_ttl_cache::Cache;
use tokio::sync::mpsc;

use crate::error::BuildError;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};

/// The near cache's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NearCache {
    /// The most entries kept.
    pub capacity: u64,
    /// How long an entry is served without asking Redis: the bound on a
    /// stale read if an invalidation is lost.
    pub ttl: Duration,
}

impl Default for NearCache {
    /// 10,000 entries for 2 s.
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(2),
        }
    }
}

const STRIPES: usize = 64;

/// What a remote read saw before it was sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    stripe: usize,
    seen: u64,
    epoch: u64,
}

/// The near cache and its invalidation counters.
pub(crate) struct Near {
    cache: Cache<String, Bytes>,
    /// Invalidations seen per stripe of key hashes.
    stripes: [AtomicU64; STRIPES],
    /// Flushes (a lost tracking connection, `FLUSHALL`).
    epoch: AtomicU64,
    prefix: String,
}

impl std::fmt::Debug for Near {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Near")
            .field("len", &self.cache.len())
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Near {
    /// `clock` measures the TTL (`None`: the cache's own monotonic clock,
    /// so a near hit is the same lookup as a bare lru-ttl-cache `get`).
    pub(crate) fn new(
        settings: NearCache,
        prefix: &str,
        clock: Option<SharedClock>,
    ) -> Result<Self, BuildError> {
        if settings.ttl.is_zero() {
            return Err(BuildError::Zero {
                setting: "NearCache::ttl",
            });
        }
        let mut builder = Cache::builder()
            .max_capacity(settings.capacity)
            .time_to_live(settings.ttl);
        if let Some(clock) = clock {
            builder = builder.clock(clock);
        }
        let cache = builder.build().map_err(BuildError::NearCache)?;
        Ok(Self {
            cache,
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            epoch: AtomicU64::new(0),
            prefix: prefix.to_owned(),
        })
    }

    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<Bytes> {
        self.cache.get(key)
    }

    pub(crate) fn hits(&self) -> u64 {
        self.cache.stats().hits
    }

    pub(crate) fn len(&self) -> usize {
        self.cache.len()
    }

    fn stripe(hash: u64) -> usize {
        (fmix64(hash) % STRIPES as u64) as usize
    }

    /// Taken before a remote read of the key with hash `hash`.
    pub(crate) fn ticket(&self, hash: u64) -> Ticket {
        let stripe = Self::stripe(hash);
        Ticket {
            stripe,
            seen: self.stripes[stripe].load(Ordering::SeqCst),
            epoch: self.epoch.load(Ordering::SeqCst),
        }
    }

    fn still_valid(&self, t: Ticket) -> bool {
        self.stripes[t.stripe].load(Ordering::SeqCst) == t.seen
            && self.epoch.load(Ordering::SeqCst) == t.epoch
    }

    /// Keeps `value`, read remotely under `ticket`, unless an invalidation
    /// came in between (checked again after the insert, since one may
    /// arrive during it).
    pub(crate) fn fill(&self, key: &str, value: Bytes, ticket: Ticket) {
        if !self.still_valid(ticket) {
            return;
        }
        self.cache.insert(key.to_owned(), value);
        if !self.still_valid(ticket) {
            self.cache.remove(key);
        }
    }

    /// Drops the near copy of `key` (hash `hash`); fills that raced it
    /// are refused.
    pub(crate) fn invalidate(&self, key: &str, hash: u64) {
        self.stripes[Self::stripe(hash)].fetch_add(1, Ordering::SeqCst);
        self.cache.remove(key);
    }

    /// Drops every near copy.
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.cache.clear();
    }

    /// Applies one `invalidate` push: a list of Redis keys, or nil for a
    /// flush.
    fn on_invalidate(&self, data: &[Value]) {
        match data.first() {
            Some(Value::Array(keys)) => {
                for k in keys {
                    let bytes = match k {
                        Value::BulkString(b) => b.as_slice(),
                        Value::SimpleString(s) => s.as_bytes(),
                        _ => continue,
                    };
                    let Some(rest) = bytes.strip_prefix(self.prefix.as_bytes()) else {
                        continue;
                    };
                    // Keys are UTF-8 (the API takes `&str`); anything else
                    // is not ours.
                    if let Ok(key) = std::str::from_utf8(rest) {
                        self.invalidate(key, crate::client::key_hash(key));
                    }
                }
            }
            _ => self.clear(),
        }
    }
}

/// The tracking connection of one node: a task that keeps it open and
/// applies its invalidations. Stopped on drop.
#[derive(Debug)]
pub(crate) struct Tracker {
    live: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Tracker {
    /// Starts tracking on `client`'s server for keys under the near
    /// cache's prefix.
    pub(crate) fn spawn(
        rt: &tokio::runtime::Handle,
        client: redis::Client,
        near: Arc<Near>,
        timeout: Duration,
    ) -> Self {
        let live = Arc::new(AtomicBool::new(false));
        let task = rt.spawn(track(client, near, Arc::clone(&live), timeout));
        Self { live, task }
    }

    /// Whether invalidations from this node are flowing: values read from
    /// it may be kept.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// Keeps one tracking connection open: connects, enables broadcast
/// tracking, applies pushes, pings every second; on any failure marks the
/// node not live, clears the near cache and reconnects after a pause.
async fn track(client: redis::Client, near: Arc<Near>, live: Arc<AtomicBool>, timeout: Duration) {
    let mut pause = Duration::from_millis(50);
    loop {
        let (tx, mut rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_push_sender(tx);
        let connected = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("TRACKING").arg("ON").arg("BCAST");
            if !near.prefix.is_empty() {
                cmd.arg("PREFIX").arg(&near.prefix);
            }
            cmd.query_async::<()>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        if let Ok(Ok(mut conn)) = tokio::time::timeout(timeout * 2, connected).await {
            pause = Duration::from_millis(50);
            // Copies kept before this connection existed were not covered.
            near.clear();
            live.store(true, Ordering::SeqCst);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    push = rx.recv() => match push {
                        Some(PushInfo { kind: PushKind::Invalidate, data }) => {
                            near.on_invalidate(&data);
                        }
                        Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => break,
                        Some(_) => {}
                    },
                    _ = tick.tick() => {
                        let ping = redis::cmd("PING");
                        let ping = ping.query_async::<()>(&mut conn);
                        if !matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(()))) {
                            break;
                        }
                    }
                }
            }
        }
        if live.swap(false, Ordering::SeqCst) {
            near.clear();
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use sysblocks_clock::ManualClock;

    use super::{Near, NearCache, Value};
    use crate::client::key_hash;
    use crate::sync::Arc;

    const TTL: Duration = Duration::from_millis(500);

    fn near(clock: &ManualClock) -> Near {
        let settings = NearCache {
            capacity: 100,
            ttl: TTL,
        };
        Near::new(settings, "dc:", Some(Arc::new(clock.clone()))).unwrap()
    }

    /// The bound on a stale read when an invalidation never arrives (a
    /// lost push, a writer the server does not report): the copy is served
    /// for at most the near cache's TTL after it was kept, so at most that
    /// long after the write that made it stale.
    #[test]
    fn a_copy_whose_invalidation_is_lost_is_served_at_most_the_ttl() {
        let clock = ManualClock::new();
        let n = near(&clock);
        let ticket = n.ticket(key_hash("k"));
        n.fill("k", Bytes::from("old"), ticket);
        // The value changes in Redis now; no invalidation comes.
        clock.advance(TTL - Duration::from_nanos(1));
        assert_eq!(n.get("k").as_deref(), Some(&b"old"[..]));
        clock.advance(Duration::from_nanos(1));
        assert_eq!(n.get("k"), None, "served past the near TTL");
    }

    /// A reply that raced an invalidation (of its stripe) or a flush is
    /// never kept: it could be older than the write the push announced.
    #[test]
    fn a_fill_that_raced_an_invalidation_or_a_flush_is_refused() {
        let clock = ManualClock::new();
        let n = near(&clock);
        let ticket = n.ticket(key_hash("k"));
        n.invalidate("k", key_hash("k"));
        n.fill("k", Bytes::from("old"), ticket);
        assert_eq!(n.get("k"), None);
        let ticket = n.ticket(key_hash("k"));
        n.clear();
        n.fill("k", Bytes::from("old"), ticket);
        assert_eq!(n.get("k"), None);
        // An invalidation push for the Redis key drops the copy; keys
        // outside the prefix are ignored; a nil push is a flush.
        let ticket = n.ticket(key_hash("k"));
        n.fill("k", Bytes::from("v"), ticket);
        let ticket = n.ticket(key_hash("j"));
        n.fill("j", Bytes::from("v"), ticket);
        n.on_invalidate(&[Value::Array(vec![Value::BulkString(b"other:k".to_vec())])]);
        assert_eq!(n.len(), 2);
        n.on_invalidate(&[Value::Array(vec![Value::BulkString(b"dc:k".to_vec())])]);
        assert_eq!(n.get("k"), None);
        assert!(n.get("j").is_some());
        n.on_invalidate(&[Value::Nil]);
        assert_eq!(n.len(), 0);
    }
}

/// loom models of the fill/invalidation protocol: a remote read that raced
/// a write's invalidation (or a flush) never leaves the old value behind.
#[cfg(all(test, sysblocks_loom))]
mod loom_models {
    use std::time::Duration;

    use bytes::Bytes;

    use super::{Near, NearCache};
    use crate::client::key_hash;
    use crate::sync::{model, thread, Arc, AtomicU64, Ordering};

    /// One reader fills the near cache from "Redis" (an atomic version)
    /// while a writer changes the version and then announces it, by an
    /// invalidation push or (`flush`) by a lost tracking connection.
    /// Whatever the interleaving, the near copy left is absent or new.
    fn race(flush: bool) {
        model(move || {
            let settings = NearCache {
                capacity: 2,
                ttl: Duration::from_secs(60),
            };
            let near = Arc::new(Near::new(settings, "p:", None).unwrap());
            let remote = Arc::new(AtomicU64::new(1));
            let writer = {
                let (near, remote) = (Arc::clone(&near), Arc::clone(&remote));
                thread::spawn(move || {
                    remote.store(2, Ordering::SeqCst);
                    if flush {
                        near.clear();
                    } else {
                        near.invalidate("k", key_hash("k"));
                    }
                })
            };
            let ticket = near.ticket(key_hash("k"));
            let seen = remote.load(Ordering::SeqCst);
            near.fill("k", Bytes::from(seen.to_string()), ticket);
            writer.join().unwrap();
            let kept = near.get("k");
            assert!(
                kept.is_none() || kept.as_deref() == Some(&b"2"[..]),
                "stale copy kept: {kept:?}"
            );
        });
    }

    #[test]
    fn loom_a_fill_racing_an_invalidation_keeps_no_stale_copy() {
        race(false);
    }

    #[test]
    fn loom_a_fill_racing_a_flush_keeps_no_stale_copy() {
        race(true);
    }
}
