//! `DistCache`: routing, replication, failover and the near cache on the
//! read and write paths.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use sysblocks_clock::SharedClock;
use sysblocks_consistent_hash::hash_key;
use tokio::sync::watch;

use crate::error::CacheError;
use crate::health::Ejection;
use crate::near::Near;
use crate::node::{get_pipeline, Node};
use crate::placement::{Locator, Placement};
use crate::sync::{Arc, AtomicU64, Mutex, Ordering, RwLock};

/// The longest key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// The placement hash of a key: the same in every client and release.
#[inline]
pub(crate) fn key_hash(key: &str) -> u64 {
    hash_key(key)
}

/// Where a key goes when the nodes that own it are ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Failover {
    /// To the next available nodes of its preference list (clockwise on
    /// the ring), which hold it until the owner is re-admitted; a read
    /// whose node fails is retried once on the next node.
    #[default]
    NextNode,
    /// Nowhere: reads miss and writes fail with
    /// [`CacheError::Unavailable`] until an owner is re-admitted.
    Miss,
}

/// One member node as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStatus {
    /// The node's address.
    pub node: String,
    /// Whether outlier detection has it ejected now.
    pub ejected: bool,
    /// How many times it was ejected.
    pub times_ejected: u32,
    /// Whether its tracking connection (near-cache invalidations) is up.
    pub tracked: bool,
}

/// Counters since the cache was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Reads answered by the near cache.
    pub near_hits: u64,
    /// Reads answered by a Redis node with a value.
    pub remote_hits: u64,
    /// Reads that found no value.
    pub misses: u64,
    /// Node operations that failed (timeouts, errors, unexpected replies).
    pub node_failures: u64,
    /// Ejections of a node by outlier detection.
    pub ejections: u64,
    /// Loader runs of [`DistCache::get_or_load`].
    pub loads: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    remote_hits: AtomicU64,
    misses: AtomicU64,
    node_failures: AtomicU64,
    ejections: AtomicU64,
    pub(crate) loads: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// The settings a built cache runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) placement: Placement,
    pub(crate) prefix: String,
    pub(crate) ttl: Duration,
    pub(crate) timeout: Duration,
    pub(crate) replicas: usize,
    pub(crate) max_value_bytes: usize,
    pub(crate) failover: Failover,
    pub(crate) ejection: Ejection,
}

/// The node set and its placement, replaced whole on a membership change.
#[derive(Debug)]
pub(crate) struct Topology {
    pub(crate) locator: Locator,
    /// Indexed like `locator.nodes()`.
    pub(crate) nodes: Vec<Arc<Node>>,
    /// While a warm-up copies moved keys: the topology before the change,
    /// whose owners deletes also reach.
    pub(crate) previous: Option<Arc<Topology>>,
}

impl Topology {
    /// Up to `n` node indices for `hash`, owner first, all of them.
    pub(crate) fn preference(&self, hash: u64, n: usize) -> Vec<usize> {
        self.locator.preference(hash, n)
    }
}

/// The future [`DistCache::get`] returns: ready at once after a near hit,
/// else the boxed remote read (whose state machine is large; a near hit
/// neither builds nor drops it).
enum Get<'a> {
    /// A near hit, taken by the first poll.
    Hit(Option<Bytes>),
    Remote(Pin<Box<dyn Future<Output = Result<Option<Bytes>, CacheError>> + Send + 'a>>),
}

impl Future for Get<'_> {
    type Output = Result<Option<Bytes>, CacheError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            // Polled again after completion: a caller's bug, which panics
            // as it does for any `async fn`.
            Self::Hit(v) => Poll::Ready(Ok(Some(v.take().expect("`get` polled after completion")))),
            Self::Remote(f) => f.as_mut().poll(cx),
        }
    }
}

/// One node's share of a `get_many`: the node, the positions of its keys
/// in the call, the pipeline of their `GET`s.
type Batch = (Arc<Node>, Vec<usize>, redis::Pipeline);

/// One single-flight load in progress: the value once it is known.
type Flight = watch::Receiver<Option<Option<Bytes>>>;

pub(crate) struct Inner {
    pub(crate) cfg: Config,
    pub(crate) topology: RwLock<Arc<Topology>>,
    pub(crate) near: Option<Arc<Near>>,
    pub(crate) flights: Mutex<std::collections::HashMap<String, Flight>>,
    pub(crate) clock: SharedClock,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) counters: Counters,
    /// Serialises membership changes.
    pub(crate) membership: tokio::sync::Mutex<()>,
}

/// A client of a cache spread over several Redis nodes. Cheap to clone
/// (an `Arc`); clones share connections, near cache and health.
///
/// Built by [`DistCache::builder`]; see the crate documentation for the
/// design. Every operation is bounded by the builder's timeout per node
/// tried, and every failure is a [`CacheError`]; none panics.
#[derive(Clone)]
pub struct DistCache {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for DistCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistCache")
            .field("cfg", &self.inner.cfg)
            .field("nodes", &self.nodes())
            .field("near", &self.inner.near)
            .finish_non_exhaustive()
    }
}

impl DistCache {
    pub(crate) fn topology(&self) -> Arc<Topology> {
        Arc::clone(&self.inner.topology.read())
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_nanos()
    }

    /// The member nodes' addresses.
    #[must_use]
    pub fn nodes(&self) -> Vec<String> {
        self.topology().locator.nodes().to_vec()
    }

    /// The addresses of the nodes outlier detection has ejected right now.
    #[must_use]
    pub fn ejected_nodes(&self) -> Vec<String> {
        let now = self.now();
        self.topology()
            .nodes
            .iter()
            .filter(|n| n.health.is_ejected(now))
            .map(|n| n.name.clone())
            .collect()
    }

    /// Each member as this client sees it, in placement order.
    #[must_use]
    pub fn node_status(&self) -> Vec<NodeStatus> {
        let now = self.now();
        self.topology()
            .nodes
            .iter()
            .map(|n| NodeStatus {
                node: n.name.clone(),
                ejected: n.health.is_ejected(now),
                times_ejected: n.health.times_ejected(),
                tracked: n.tracked(),
            })
            .collect()
    }

    /// The address of the node that owns `key` (ignoring ejections).
    #[must_use]
    pub fn owner(&self, key: &str) -> String {
        let t = self.topology();
        let i = t.locator.owner(key_hash(key)).unwrap_or(0);
        t.locator.nodes()[i].clone()
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            // The near cache counts its hits itself, under its shard
            // locks: no shared counter on the hot path.
            near_hits: self.inner.near.as_ref().map_or(0, |n| n.hits()),
            remote_hits: l(&c.remote_hits),
            misses: l(&c.misses),
            node_failures: l(&c.node_failures),
            ejections: l(&c.ejections),
            loads: l(&c.loads),
        }
    }

    /// Entries in the near cache (0 without one).
    #[must_use]
    pub fn near_len(&self) -> usize {
        self.inner.near.as_ref().map_or(0, |n| n.len())
    }

    /// Whether the near cache is receiving invalidations from every node
    /// (false without a near cache). Values are kept near only from nodes
    /// whose tracking connection is up.
    #[must_use]
    pub fn near_ready(&self) -> bool {
        self.inner.near.is_some() && self.topology().nodes.iter().all(|n| n.tracked())
    }

    pub(crate) fn redis_key(&self, key: &str) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.inner.cfg.prefix.len() + key.len());
        k.extend_from_slice(self.inner.cfg.prefix.as_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    fn check_key(key: &str) -> Result<(), CacheError> {
        if key.len() > MAX_KEY_BYTES {
            return Err(CacheError::KeyTooLarge { len: key.len() });
        }
        Ok(())
    }

    /// Records the outcome of one operation on `node` for outlier detection.
    pub(crate) fn record<T>(&self, node: &Node, r: &Result<T, CacheError>) {
        match r {
            Ok(_) => node.health.on_success(),
            Err(e) if e.is_node_failure() => {
                bump(&self.inner.counters.node_failures);
                if node.health.on_failure(self.now(), &self.inner.cfg.ejection) {
                    bump(&self.inner.counters.ejections);
                }
            }
            Err(_) => {}
        }
    }

    /// The nodes a read of `hash` tries, in order.
    fn read_candidates(&self, t: &Topology, hash: u64) -> Vec<Arc<Node>> {
        let now = self.now();
        let r = self.inner.cfg.replicas;
        match self.inner.cfg.failover {
            Failover::NextNode => t
                .preference(hash, t.nodes.len())
                .into_iter()
                .filter(|&i| t.nodes[i].health.is_available(now))
                .take(r + 1)
                .map(|i| Arc::clone(&t.nodes[i]))
                .collect(),
            Failover::Miss => t
                .preference(hash, r)
                .into_iter()
                .filter(|&i| t.nodes[i].health.is_available(now))
                .map(|i| Arc::clone(&t.nodes[i]))
                .collect(),
        }
    }

    /// The nodes a write of `hash` goes to.
    pub(crate) fn write_candidates(&self, t: &Topology, hash: u64) -> Vec<Arc<Node>> {
        let now = self.now();
        let r = self.inner.cfg.replicas;
        let n = match self.inner.cfg.failover {
            Failover::NextNode => t.nodes.len(),
            Failover::Miss => r,
        };
        t.preference(hash, n)
            .into_iter()
            .filter(|&i| t.nodes[i].health.is_available(now))
            .take(r)
            .map(|i| Arc::clone(&t.nodes[i]))
            .collect()
    }

    /// The value for `key`: from the near cache, else from the first
    /// available node holding the key (its owner, or with
    /// [`Failover::NextNode`] the next node when the owner is ejected or
    /// fails). `Ok(None)` when absent.
    ///
    /// The near cache is asked in this call, before the future is built:
    /// after a hit the future is ready at once, so a hit costs one
    /// near-cache lookup and no async machinery (the `near-cache hit` case
    /// of `compare --only dist-cache` compares it with a bare lru-ttl-cache
    /// `get`).
    ///
    /// # Errors
    ///
    /// [`CacheError::KeyTooLarge`]; [`CacheError::Unavailable`] when every
    /// node tried failed (holding the last failure).
    #[inline]
    pub fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<Bytes>, CacheError>> + Send + 'a {
        if key.len() <= MAX_KEY_BYTES {
            // The placement hash is computed only on a miss.
            if let Some(v) = self.get_near(key) {
                return Get::Hit(Some(v));
            }
        }
        self.get_miss(key)
    }

    /// The rest of [`get`](Self::get) after a near miss, out of line so
    /// that the hit path stays small enough to inline.
    #[inline(never)]
    fn get_miss<'a>(&'a self, key: &'a str) -> Get<'a> {
        Get::Remote(Box::pin(async move {
            Self::check_key(key)?;
            self.get_remote(key, key_hash(key)).await
        }))
    }

    /// The near cache's copy of `key`, without any I/O: `None` without a
    /// near cache, or when it holds no fresh copy. [`get`](Self::get)
    /// starts with this lookup; the blocking client makes it before
    /// entering its runtime.
    #[inline]
    pub fn get_near(&self, key: &str) -> Option<Bytes> {
        self.inner.near.as_ref()?.get(key)
    }

    pub(crate) async fn get_remote(
        &self,
        key: &str,
        hash: u64,
    ) -> Result<Option<Bytes>, CacheError> {
        let ticket = self.inner.near.as_ref().map(|n| n.ticket(hash));
        let t = self.topology();
        let rkey = self.redis_key(key);
        let mut last = None;
        for node in self.read_candidates(&t, hash) {
            let r = node.get(&rkey).await;
            self.record(&node, &r);
            match r {
                Ok(v) => {
                    self.count_read(v.is_some());
                    if let (Some(v), Some(near), Some(ticket)) = (&v, &self.inner.near, ticket) {
                        if node.tracked() {
                            near.fill(key, v.clone(), ticket);
                        }
                    }
                    return Ok(v);
                }
                Err(e) => last = Some(Box::new(e)),
            }
        }
        if last.is_none() && self.inner.cfg.failover == Failover::Miss {
            // Every owner is ejected: the key misses.
            self.count_read(false);
            return Ok(None);
        }
        Err(CacheError::Unavailable { last })
    }

    fn count_read(&self, hit: bool) {
        let c = &self.inner.counters;
        bump(if hit { &c.remote_hits } else { &c.misses });
    }

    /// The values of `keys`, in order: near-cache hits first, then one
    /// pipeline of `GET`s per node, the nodes asked concurrently. Keys of a
    /// node whose pipeline fails are read one by one with failover, as
    /// [`get`](Self::get) does.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), for the first key that could not be read.
    pub async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>, CacheError> {
        for k in keys {
            Self::check_key(k)?;
        }
        let mut out: Vec<Option<Bytes>> = vec![None; keys.len()];
        let t = self.topology();
        let now = self.now();
        // Per node: the positions of its keys.
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); t.nodes.len()];
        let mut tickets = Vec::with_capacity(keys.len());
        let mut fallback = Vec::new();
        for (pos, key) in keys.iter().enumerate() {
            let hash = key_hash(key);
            if let Some(near) = &self.inner.near {
                if let Some(v) = near.get(key) {
                    out[pos] = Some(v);
                    tickets.push(None);
                    continue;
                }
                tickets.push(Some(near.ticket(hash)));
            } else {
                tickets.push(None);
            }
            // As `read_candidates`: with `Failover::Miss` only the key's
            // replicas may answer.
            let span = match self.inner.cfg.failover {
                Failover::NextNode => t.nodes.len(),
                Failover::Miss => self.inner.cfg.replicas,
            };
            // The owner first (the usual case: no preference list to
            // build), then the rest of the list.
            let available = |i: &usize| t.nodes[*i].health.is_available(now);
            let first = t
                .locator
                .owner(hash)
                .filter(available)
                .or_else(|| t.preference(hash, span).into_iter().find(|i| available(i)));
            match first {
                Some(i) => groups[i].push(pos),
                None => fallback.push(pos),
            }
        }
        let mut batches: Vec<Batch> = groups
            .into_iter()
            .enumerate()
            .filter(|(_, positions)| !positions.is_empty())
            .map(|(i, positions)| {
                let prefix = self.inner.cfg.prefix.as_str();
                let pipe = get_pipeline(prefix, positions.iter().map(|&p| keys[p]));
                (Arc::clone(&t.nodes[i]), positions, pipe)
            })
            .collect();
        let mut done = Vec::with_capacity(batches.len());
        if batches.len() == 1 {
            // One node: its pipeline inline, without a task.
            let (node, positions, pipe) = batches.pop().unwrap_or_else(|| unreachable!());
            let r = node.get_pipelined(&pipe, positions.len()).await;
            done.push((node, positions, r));
        } else {
            let mut tasks = tokio::task::JoinSet::new();
            for (node, positions, pipe) in batches {
                tasks.spawn(async move {
                    let r = node.get_pipelined(&pipe, positions.len()).await;
                    (node, positions, r)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                // A task cannot panic short of a bug in the client library;
                // its keys then read as missing.
                if let Ok(d) = joined {
                    done.push(d);
                }
            }
        }
        for (node, positions, r) in done {
            self.record(&node, &r);
            match r {
                Ok(values) => {
                    let tracked = node.tracked();
                    let hits = values.iter().filter(|v| v.is_some()).count() as u64;
                    let c = &self.inner.counters;
                    c.remote_hits.fetch_add(hits, Ordering::Relaxed);
                    c.misses
                        .fetch_add(values.len() as u64 - hits, Ordering::Relaxed);
                    for (p, v) in positions.into_iter().zip(values) {
                        if let (Some(v), Some(near), Some(ticket), true) =
                            (&v, &self.inner.near, tickets[p], tracked)
                        {
                            near.fill(keys[p], v.clone(), ticket);
                        }
                        out[p] = v;
                    }
                }
                Err(_) => fallback.extend(positions),
            }
        }
        fallback.sort_unstable();
        for p in fallback {
            out[p] = self.get_remote(keys[p], key_hash(keys[p])).await?;
        }
        Ok(out)
    }

    /// Stores `value` for `key` with the default TTL on the key's
    /// available owners (its `replicas` first nodes), concurrently. The
    /// near copy, here and (through Redis tracking) in other clients, is
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`CacheError::ValueTooLarge`], [`CacheError::KeyTooLarge`];
    /// [`CacheError::Unavailable`] when no replica took the write.
    pub async fn set(&self, key: &str, value: impl Into<Bytes>) -> Result<(), CacheError> {
        self.set_with_ttl(key, value, self.inner.cfg.ttl).await
    }

    /// [`set`](Self::set) with this entry's own TTL.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set); [`CacheError::InvalidTtl`] for a TTL under
    /// a millisecond.
    pub async fn set_with_ttl(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let value = value.into();
        Self::check_key(key)?;
        if value.len() > self.inner.cfg.max_value_bytes {
            return Err(CacheError::ValueTooLarge {
                len: value.len(),
                max: self.inner.cfg.max_value_bytes,
            });
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        if ttl_ms == 0 {
            return Err(CacheError::InvalidTtl { ttl });
        }
        let hash = key_hash(key);
        if let Some(near) = &self.inner.near {
            near.invalidate(key, hash);
        }
        let t = self.topology();
        let rkey: Arc<[u8]> = self.redis_key(key).into();
        let nodes = self.write_candidates(&t, hash);
        self.on_nodes(nodes, move |node| {
            let rkey = Arc::clone(&rkey);
            let value = value.clone();
            async move { node.set(&rkey, &value, ttl_ms, false).await.map(|_| ()) }
        })
        .await
    }

    /// Deletes `key` from its available owners (and, during a warm-up,
    /// from its previous owners), and drops near copies everywhere.
    ///
    /// # Errors
    ///
    /// [`CacheError::KeyTooLarge`]; [`CacheError::Unavailable`] when no
    /// node took the delete.
    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        Self::check_key(key)?;
        let hash = key_hash(key);
        if let Some(near) = &self.inner.near {
            near.invalidate(key, hash);
        }
        let t = self.topology();
        let mut nodes = self.write_candidates(&t, hash);
        if let Some(prev) = &t.previous {
            for n in self.write_candidates(prev, hash) {
                if !nodes.iter().any(|m| m.name == n.name) {
                    nodes.push(n);
                }
            }
        }
        let rkey: Arc<[u8]> = self.redis_key(key).into();
        self.on_nodes(nodes, move |node| {
            let rkey = Arc::clone(&rkey);
            async move { node.del(&rkey).await.map(|_| ()) }
        })
        .await
    }

    /// Runs `op` on every node concurrently; succeeds if one of them did.
    async fn on_nodes<F, Fut>(&self, nodes: Vec<Arc<Node>>, op: F) -> Result<(), CacheError>
    where
        F: Fn(Arc<Node>) -> Fut,
        Fut: std::future::Future<Output = Result<(), CacheError>> + Send + 'static,
    {
        if nodes.len() == 1 {
            let node = &nodes[0];
            let r = op(Arc::clone(node)).await;
            self.record(node, &r);
            return r.map_err(|e| CacheError::Unavailable {
                last: Some(Box::new(e)),
            });
        }
        let mut tasks = tokio::task::JoinSet::new();
        for node in nodes {
            let fut = op(Arc::clone(&node));
            tasks.spawn(async move { (node, fut.await) });
        }
        let mut ok = false;
        let mut last = None;
        while let Some(done) = tasks.join_next().await {
            let Ok((node, r)) = done else { continue };
            self.record(&node, &r);
            match r {
                Ok(()) => ok = true,
                Err(e) => last = Some(Box::new(e)),
            }
        }
        if ok {
            Ok(())
        } else {
            Err(CacheError::Unavailable { last })
        }
    }

    /// Milliseconds of the default TTL.
    pub(crate) fn ttl_ms(&self) -> u64 {
        u64::try_from(self.inner.cfg.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}
