//! `DistCacheBuilder`: every setting checked before anything connects.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion};
use sysblocks_clock::{Clock, MonotonicClock, SharedClock};

use crate::client::{Config, Counters, DistCache, Failover, Inner, Topology};
use crate::error::BuildError;
use crate::health::Ejection;
use crate::near::{Near, NearCache, Tracker};
use crate::node::Node;
use crate::placement::{Locator, Placement};
use crate::sync::{Arc, Mutex, RwLock};

/// The most replicas a key may have.
pub const MAX_REPLICAS: usize = 16;

/// The longest key prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 128;

/// The largest value limit accepted (Redis' own limit for a string).
pub const MAX_VALUE_BYTES: usize = 512 << 20;

/// Builds a [`DistCache`]; from [`DistCache::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct DistCacheBuilder {
    nodes: Vec<String>,
    placement: Placement,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    replicas: usize,
    max_value_bytes: usize,
    failover: Failover,
    ejection: Ejection,
    near: Option<NearCache>,
    clock: Option<SharedClock>,
}

impl DistCache {
    /// A builder with the defaults: ring placement, prefix `dc:`, TTL
    /// 5 minutes, timeout 200 ms, one replica, values up to 1 MiB,
    /// [`Failover::NextNode`], [`Ejection::default`], no near cache.
    pub fn builder() -> DistCacheBuilder {
        DistCacheBuilder {
            nodes: Vec::new(),
            placement: Placement::default(),
            prefix: "dc:".to_owned(),
            ttl: Duration::from_secs(300),
            timeout: Duration::from_millis(200),
            replicas: 1,
            max_value_bytes: 1 << 20,
            failover: Failover::default(),
            ejection: Ejection::default(),
            near: None,
            clock: None,
        }
    }
}

impl DistCacheBuilder {
    /// Adds a node by its Redis URL (`redis://host:port/db`). Nodes are
    /// named by this string: give every client the same strings, since
    /// placement hashes them.
    pub fn node(mut self, url: impl Into<String>) -> Self {
        self.nodes.push(url.into());
        self
    }

    /// Adds several nodes, as [`node`](Self::node).
    pub fn nodes<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.nodes.extend(urls.into_iter().map(Into::into));
        self
    }

    /// The placement algorithm (default: the ring with virtual nodes).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The prefix of every Redis key (default `dc:`), at most
    /// [`MAX_PREFIX_LEN`] bytes, without glob characters (`*?[]\`). The
    /// near cache tracks keys under it.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The TTL of every write without its own (default 5 minutes; at least
    /// 1 ms).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long one node may take to answer (default 200 ms). An operation
    /// waits at most this per node it tries.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Copies of each key, on distinct nodes (default 1, at most
    /// [`MAX_REPLICAS`] and at most the node count). Writes go to all,
    /// reads to the first available.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// The longest value accepted (default 1 MiB, at most
    /// [`MAX_VALUE_BYTES`]).
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.max_value_bytes = max;
        self
    }

    /// Where keys of ejected nodes go (default [`Failover::NextNode`]).
    pub fn failover(mut self, failover: Failover) -> Self {
        self.failover = failover;
        self
    }

    /// When failing nodes are ejected (default [`Ejection::default`]).
    pub fn ejection(mut self, ejection: Ejection) -> Self {
        self.ejection = ejection;
        self
    }

    /// Puts a near cache in front (default none).
    pub fn near_cache(mut self, near: NearCache) -> Self {
        self.near = Some(near);
        self
    }

    /// The clock of ejection back-offs and of the near cache's TTL
    /// (default monotonic).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    fn validate(&self) -> Result<(), BuildError> {
        if self.nodes.is_empty() {
            return Err(BuildError::NoNodes);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if self.nodes[..i].contains(n) {
                return Err(BuildError::DuplicateNode { node: n.clone() });
            }
        }
        if self.replicas == 0 {
            return Err(BuildError::Zero {
                setting: "replicas",
            });
        }
        let max = MAX_REPLICAS.min(self.nodes.len());
        if self.replicas > max {
            return Err(BuildError::TooLarge {
                setting: "replicas",
                max: max as u64,
            });
        }
        if self.prefix.len() > MAX_PREFIX_LEN {
            return Err(BuildError::TooLarge {
                setting: "prefix bytes",
                max: MAX_PREFIX_LEN as u64,
            });
        }
        if self.prefix.contains(['*', '?', '[', ']', '\\']) {
            return Err(BuildError::Invalid {
                setting: "prefix",
                reason: "glob characters would widen the key scans of a warm-up",
            });
        }
        if self.ttl < Duration::from_millis(1) {
            return Err(BuildError::Invalid {
                setting: "ttl",
                reason: "must be at least 1 ms",
            });
        }
        if self.timeout.is_zero() {
            return Err(BuildError::Zero { setting: "timeout" });
        }
        if self.max_value_bytes == 0 {
            return Err(BuildError::Zero {
                setting: "max_value_bytes",
            });
        }
        if self.max_value_bytes > MAX_VALUE_BYTES {
            return Err(BuildError::TooLarge {
                setting: "max_value_bytes",
                max: MAX_VALUE_BYTES as u64,
            });
        }
        self.ejection.validate()
    }

    /// Builds the cache. Connections open lazily, so a node that is down
    /// now is ejected later rather than failing the build; the near cache's
    /// tracking connections start in the background. Must be called inside
    /// a tokio runtime (which then drives them).
    ///
    /// # Errors
    ///
    /// [`BuildError::NoNodes`], [`BuildError::DuplicateNode`],
    /// [`BuildError::Address`] for a URL that does not parse,
    /// [`BuildError::Zero`], [`BuildError::TooLarge`] and
    /// [`BuildError::Invalid`] for settings out of range,
    /// [`BuildError::Placement`] and [`BuildError::NearCache`] as those
    /// crates refuse, [`BuildError::NoRuntime`] outside a runtime.
    pub fn build(self) -> Result<DistCache, BuildError> {
        self.validate()?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let near = self
            .near
            .map(|n| Near::new(n, &self.prefix, self.clock.clone()).map(Arc::new))
            .transpose()?;
        let cfg = Config {
            placement: self.placement,
            prefix: self.prefix,
            ttl: self.ttl,
            timeout: self.timeout,
            replicas: self.replicas,
            max_value_bytes: self.max_value_bytes,
            failover: self.failover,
            ejection: self.ejection,
        };
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for url in &self.nodes {
            nodes.push(Arc::new(connect_node(url, &cfg, near.as_ref(), &rt)?));
        }
        let topology = build_topology(cfg.placement, nodes, None)?;
        Ok(DistCache {
            inner: Arc::new(Inner {
                cfg,
                topology: RwLock::new(Arc::new(topology)),
                near,
                flights: Mutex::new(HashMap::new()),
                clock: self
                    .clock
                    .unwrap_or_else(|| Arc::new(MonotonicClock::new())),
                rt,
                counters: Counters::default(),
                membership: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Builds a [`BlockingDistCache`](crate::BlockingDistCache) on a
    /// runtime of its own, for code without one.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build); [`BuildError::Runtime`] if the runtime
    /// cannot start.
    pub fn build_blocking(self) -> Result<crate::BlockingDistCache, BuildError> {
        crate::BlockingDistCache::build(self)
    }
}

/// The connections of one node (lazy data connection, tracking task).
pub(crate) fn connect_node(
    url: &str,
    cfg: &Config,
    near: Option<&Arc<Near>>,
    rt: &tokio::runtime::Handle,
) -> Result<Node, BuildError> {
    let bad = |source| BuildError::Address {
        node: url.to_owned(),
        source,
    };
    let info = url.into_connection_info().map_err(bad)?;
    let client = redis::Client::open(info.clone()).map_err(bad)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(cfg.timeout))
        .set_response_timeout(Some(cfg.timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(200));
    let conn = {
        let _enter = rt.enter();
        ConnectionManager::new_lazy_with_config(client, config).map_err(bad)?
    };
    let tracker = match near {
        Some(near) => {
            let settings = info
                .redis_settings()
                .clone()
                .set_protocol(ProtocolVersion::RESP3);
            let resp3 = redis::Client::open(info.set_redis_settings(settings)).map_err(bad)?;
            Some(Tracker::spawn(rt, resp3, Arc::clone(near), cfg.timeout))
        }
        None => None,
    };
    Ok(Node::new(url.to_owned(), conn, cfg.timeout, tracker))
}

/// A topology over `nodes` (distinct), nodes ordered as the locator's.
pub(crate) fn build_topology(
    placement: Placement,
    nodes: Vec<Arc<Node>>,
    previous: Option<Arc<Topology>>,
) -> Result<Topology, BuildError> {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let locator = Locator::build(placement, &names)?;
    let mut by_name: HashMap<&str, &Arc<Node>> =
        nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let ordered = locator
        .nodes()
        .iter()
        .filter_map(|name| by_name.remove(name.as_str()).map(Arc::clone))
        .collect();
    Ok(Topology {
        locator,
        nodes: ordered,
        previous,
    })
}
