//! [`RedisQueueBuilder`]: a `RedisQueue`'s settings, checked, and the
//! connection that reads the server's durability settings and creates
//! the consumer groups.

use std::time::Duration;

use sysblocks_clock::{saturating_nanos, MonotonicClock, SharedClock};

use super::durability::read_durability;
use super::scripts::Scripts;
use super::{Durability, Inner, Keys, RedisQueue, RedisStats, IO_TIMEOUT};
use crate::backoff::{Backoff, SplitMix64};
use crate::error::{BuildError, RedisQueueError};
use crate::sync::{AtomicBool, Mutex, StdArc};

/// Settings of a [`RedisQueue`]; [`RedisQueueBuilder::build`] connects.
#[derive(Debug, Clone)]
pub struct RedisQueueBuilder {
    url: String,
    name: String,
    group: String,
    lease: Duration,
    max_attempts: u32,
    backoff: Backoff,
    max_payload: usize,
    prefetch: usize,
    block: Duration,
    clock: Option<SharedClock>,
    seed: Option<u64>,
}

impl RedisQueue {
    /// A builder for a queue at `url` (`redis://host:port/db`) with the
    /// defaults: name `tasks`, group `workers`, a 30 s lease, 5 attempts,
    /// the default backoff, payloads up to 16 MiB, one entry read ahead
    /// per stream, `XREADGROUP` blocking up to 100 ms at a time.
    pub fn builder(url: impl Into<String>) -> RedisQueueBuilder {
        RedisQueueBuilder {
            url: url.into(),
            name: "tasks".into(),
            group: "workers".into(),
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff: Backoff::default(),
            max_payload: 16 << 20,
            prefetch: 1,
            block: Duration::from_millis(100),
            clock: None,
            seed: None,
        }
    }
}

impl RedisQueueBuilder {
    /// The queue's name: its keys are `tq:{name}:*`.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The consumer group the workers join.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// How long a delivery may stay idle (no heartbeat) before another
    /// worker reclaims it: the `XAUTOCLAIM` min-idle. At least 1 ms.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Failed attempts after which a task is dead-lettered.
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n;
        self
    }

    /// The delay before a retry.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The largest payload accepted, in bytes (at most 512 MiB, Redis's
    /// limit for a string).
    #[must_use]
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Entries a worker reads per stream at once (`XREADGROUP COUNT`), and
    /// the most successful completions it queues before acknowledging them
    /// in one round trip (they also go with its next read, and when it
    /// stops).
    #[must_use]
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }

    /// The longest one `XREADGROUP` blocks; a worker looks at its stop flag
    /// at least this often.
    #[must_use]
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }

    /// The clock that stamps [`Delivery::lease_until`](crate::Delivery::lease_until)
    /// and paces promotion and reclaiming.
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seeds the backoff jitter and the consumer names' suffix.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the settings, connects, reads the server's durability
    /// settings and creates the consumer group where it is missing.
    ///
    /// # Errors
    ///
    /// [`RedisQueueError::Build`] for a refused setting; the others if
    /// the server cannot be reached or a queue key holds another type.
    pub fn build(self) -> Result<RedisQueue, RedisQueueError> {
        if self.lease < Duration::from_millis(1) {
            return Err(BuildError::Invalid {
                setting: "lease",
                reason: "must be at least 1 ms (XAUTOCLAIM counts milliseconds)",
            }
            .into());
        }
        if self.max_attempts == 0 {
            return Err(BuildError::Zero {
                setting: "max_attempts",
            }
            .into());
        }
        if self.max_payload > 512 << 20 {
            return Err(BuildError::TooLarge {
                setting: "max_payload",
                max: 512 << 20,
            }
            .into());
        }
        if self.prefetch == 0 {
            return Err(BuildError::Zero {
                setting: "prefetch",
            }
            .into());
        }
        if self.block < Duration::from_millis(1) || self.block >= IO_TIMEOUT {
            return Err(BuildError::Invalid {
                setting: "block",
                reason: "must be between 1 ms and 5 s",
            }
            .into());
        }
        if self.name.is_empty() || self.name.contains(['{', '}']) {
            return Err(BuildError::Invalid {
                setting: "name",
                reason: "must be non-empty and without braces",
            }
            .into());
        }
        self.backoff.check()?;
        let client = redis::Client::open(self.url.as_str()).map_err(|_| {
            RedisQueueError::Build(BuildError::Invalid {
                setting: "url",
                reason: "not a redis URL",
            })
        })?;
        let clock = self
            .clock
            .unwrap_or_else(|| StdArc::new(MonotonicClock::new()));
        let seed = self.seed.unwrap_or_else(|| {
            // Distinct per process and per handle, as consumer names must be.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, saturating_nanos);
            t ^ u64::from(std::process::id()).rotate_left(32) ^ crate::sync::unique_id()
        });
        let mut rng = SplitMix64::new(seed);
        let tag = &self.name;
        let keys = Keys {
            streams: [0, 1, 2].map(|l| format!("tq:{{{tag}}}:s:{l}")),
            delayed: format!("tq:{{{tag}}}:delayed"),
            dead: format!("tq:{{{tag}}}:dead"),
            ids: format!("tq:{{{tag}}}:ids"),
        };
        let consumer_prefix = format!("{}-{:08x}", std::process::id(), rng.next_u64() as u32);
        let mut inner = Inner {
            id: crate::sync::unique_id(),
            client,
            keys,
            group: self.group,
            consumer_prefix,
            lease: self.lease,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            max_payload: self.max_payload,
            prefetch: self.prefetch,
            block: self.block,
            clock,
            scripts: Scripts::new(),
            links: Mutex::new(Vec::new()),
            stats: Mutex::new(RedisStats::default()),
            durability: Durability::Unknown,
            closed: AtomicBool::new(false),
            rng: Mutex::new(rng),
        };
        let mut conn = inner.connect("CONNECT")?;
        inner.durability = read_durability(&mut conn);
        inner.stats.lock().may_lose_acknowledged = inner.durability.may_lose_acknowledged();
        inner.ensure_groups(&mut conn)?;
        inner.links.lock().push(conn);
        Ok(RedisQueue {
            inner: StdArc::new(inner),
        })
    }
}
