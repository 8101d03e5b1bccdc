//! `RedisLimiter`: the async limiter, its builder and its failure policy.

use std::fmt;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Cmd, Pipeline, RedisWrite, ToRedisArgs, Value};
use sysblocks_clock::Clock;

use super::builder::{Prepared, RedisLimiterBuilder};
use super::denials::Denied;
use super::error::RedisCheckError;
use super::policy::Policy;
use crate::breaker::Breaker;
use crate::decision::NEVER;
use crate::sync::{AtomicU64, Ordering, StdArc};
use crate::{AsyncCheck, Decision, Quota};

/// The longest key accepted, in bytes (before the prefix and the hash-tag
/// braces are added).
pub const MAX_KEY_LEN: usize = 512;

/// How long keys written through the time-injecting test path outlive
/// their reset, so that a trace replayed in real time finds them.
const TEST_KEEP_MS: u64 = 3_600_000;

/// Which script a limiter runs, with its two settings.
#[derive(Debug, Clone, Copy)]
pub(super) enum Algo {
    /// Emission interval (ns) and burst.
    Gcra { t: u64, burst: u32 },
    /// Window (ns) and limit.
    SlidingCounter { window: u64, limit: u32 },
}

impl Algo {
    fn limit(self) -> u32 {
        match self {
            Self::Gcra { burst, .. } => burst,
            Self::SlidingCounter { limit, .. } => limit,
        }
    }

    /// The divisor of a reply's slack (see `Decision::with_slack`).
    fn per_cell(self) -> u64 {
        match self {
            Self::Gcra { t, .. } => t,
            Self::SlidingCounter { .. } => 1,
        }
    }

    fn settings(self) -> (u64, u32) {
        match self {
            Self::Gcra { t, burst } => (t, burst),
            Self::SlidingCounter { window, limit } => (window, limit),
        }
    }

    /// The `retry_after` of a fail-closed denial: when one more cell
    /// comes back at the limiter's rate.
    fn closed_retry(self) -> u64 {
        match self {
            Self::Gcra { t, .. } => t,
            Self::SlidingCounter { window, limit } => (window / u64::from(limit)).max(1),
        }
    }
}

/// Counters of what a limiter did, for monitoring and tests
/// ([`RedisLimiter::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// Requests sent to Redis: one per check, one per `check_many` batch
    /// (a `NOSCRIPT` reload adds its own).
    pub round_trips: u64,
    /// Scripts loaded after Redis answered `NOSCRIPT` (a first use, a
    /// `SCRIPT FLUSH`, a restarted server): each adds two round trips,
    /// the `SCRIPT LOAD` and the request sent again.
    pub script_loads: u64,
    /// Checks decided by Redis.
    pub decided_by_redis: u64,
    /// Checks answered from the denial cache, without a round trip.
    pub cached_denials: u64,
    /// Checks that skipped Redis because a round trip had just failed
    /// (the breaker was open), and were decided by the failure policy;
    /// they are counted there too.
    pub short_circuited: u64,
    /// Checks admitted by [`FailurePolicy::FailOpen`](super::FailurePolicy::FailOpen).
    pub failed_open: u64,
    /// Checks denied by [`FailurePolicy::FailClosed`](super::FailurePolicy::FailClosed).
    pub failed_closed: u64,
    /// Checks decided by the [`FailurePolicy::LocalFallback`](super::FailurePolicy::LocalFallback) limiter.
    pub local_fallback: u64,
    /// Checks that returned an error.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    round_trips: AtomicU64,
    script_loads: AtomicU64,
    decided_by_redis: AtomicU64,
    cached_denials: AtomicU64,
    short_circuited: AtomicU64,
    failed_open: AtomicU64,
    failed_closed: AtomicU64,
    local_fallback: AtomicU64,
    errors: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A script's reply, checked: `{allowed, slack, retry_after, reset_after}`
/// with [`NEVER`] for `-1`.
#[derive(Debug, Clone, Copy)]
struct Reply {
    allowed: bool,
    slack: u64,
    retry_ns: u64,
    reset_ns: u64,
}

impl Reply {
    fn parse(v: Value) -> Result<Self, RedisCheckError> {
        let bad = |v: &Value| {
            let mut s = format!("{v:?}");
            s.truncate(200);
            RedisCheckError::UnexpectedReply(s)
        };
        let ints = match &v {
            Value::ServerError(e) => {
                return Err(RedisCheckError::from_redis(e.clone().into()));
            }
            Value::Array(items) if items.len() == 4 => {
                let mut out = [0i64; 4];
                for (o, item) in out.iter_mut().zip(items) {
                    match item {
                        Value::Int(i) => *o = *i,
                        _ => return Err(bad(&v)),
                    }
                }
                out
            }
            _ => return Err(bad(&v)),
        };
        let time = |x: i64| match x {
            -1 => Some(NEVER),
            x => u64::try_from(x).ok(),
        };
        match (
            ints[0],
            u64::try_from(ints[1]),
            time(ints[2]),
            time(ints[3]),
        ) {
            (a @ (0 | 1), Ok(slack), Some(retry_ns), Some(reset_ns)) => Ok(Self {
                allowed: a == 1,
                slack,
                retry_ns,
                reset_ns,
            }),
            _ => Err(bad(&v)),
        }
    }
}

struct Inner {
    conn: ConnectionManager,
    p: Prepared,
    breaker: Breaker,
    counters: Counters,
}

/// A key as Redis stores it, `<prefix>{key}`, written straight into a
/// command's buffer.
struct RedisKey<'a> {
    prefix: &'a [u8],
    key: &'a [u8],
}

impl ToRedisArgs for RedisKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut w = out.writer_for_next_arg();
        // Writes into a command's buffer (a `Vec`) do not fail.
        let _ = w
            .write_all(self.prefix)
            .and_then(|()| w.write_all(b"{"))
            .and_then(|()| w.write_all(self.key))
            .and_then(|()| w.write_all(b"}"));
    }
}

/// A keyed rate limiter whose state lives in Redis, so that every process
/// of a fleet shares one limit: GCRA or the sliding-window counter, with
/// the same [`Decision`]s as the local [`Gcra`](crate::Gcra) and
/// [`SlidingWindowCounter`](crate::SlidingWindowCounter) given the same arrival times.
///
/// Each check is one round trip: a Lua script (`EVALSHA`, loaded on
/// `NOSCRIPT`) reads the server's clock (`TIME`, so clients with skewed
/// clocks agree), decides and writes the key's state with an expiry at the
/// instant it becomes a fresh key's again, so Redis holds only the active
/// keys. A key `k` lives at `<prefix>{k}`: the braces make `k` the Redis
/// Cluster hash tag. Cloning is cheap and shares the connection, the
/// denial cache and the counters.
///
/// # Examples
///
/// ```no_run
/// use sysblocks_rate_limiter::redis::{FailurePolicy, RedisLimiter};
/// use sysblocks_rate_limiter::Quota;
///
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// let limiter = RedisLimiter::gcra(Quota::per_second(100).burst(20))
///     .prefix("api:")
///     .on_failure(FailurePolicy::LocalFallback { fleet_size: 8 })
///     .connect("redis://127.0.0.1:6379/")
///     .await?;
/// let d = limiter.check("203.0.113.9").await?;
/// if !d.is_allowed() {
///     println!("429, retry after {:?}", d.retry_after());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisLimiter {
    inner: StdArc<Inner>,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("algo", &self.inner.p.algo)
            .field("prefix", &String::from_utf8_lossy(&self.inner.p.prefix))
            .field("timeout", &self.inner.p.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    pub(super) fn from_parts(conn: ConnectionManager, p: Prepared) -> Self {
        Self {
            inner: StdArc::new(Inner {
                conn,
                breaker: Breaker::new(p.cooldown),
                p,
                counters: Counters::default(),
            }),
        }
    }

    /// A GCRA limiter on `quota` (as [`Gcra`](crate::Gcra)).
    pub fn gcra(quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder::new(quota, true)
    }

    /// A sliding-window counter on `quota` (as [`SlidingWindowCounter`](crate::SlidingWindowCounter):
    /// `burst` cells per window of `burst` emission intervals).
    pub fn sliding_window_counter(quota: Quota) -> RedisLimiterBuilder {
        RedisLimiterBuilder::new(quota, false)
    }

    /// The most this limiter admits at once.
    #[must_use]
    pub fn limit(&self) -> u32 {
        self.inner.p.algo.limit()
    }

    /// What the limiter has done so far.
    #[must_use]
    pub fn stats(&self) -> RedisStats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RedisStats {
            round_trips: l(&c.round_trips),
            script_loads: l(&c.script_loads),
            decided_by_redis: l(&c.decided_by_redis),
            cached_denials: l(&c.cached_denials),
            short_circuited: l(&c.short_circuited),
            failed_open: l(&c.failed_open),
            failed_closed: l(&c.failed_closed),
            local_fallback: l(&c.local_fallback),
            errors: l(&c.errors),
        }
    }

    /// [`RedisLimiter::check_n`] with cost 1.
    ///
    /// # Errors
    ///
    /// As [`RedisLimiter::check_n`].
    pub async fn check(&self, key: impl AsRef<[u8]>) -> Result<Decision, RedisCheckError> {
        self.check_n(key, 1).await
    }

    /// Checks a request of `cost` cells for `key` and, if it is admitted,
    /// records it. A cost of 0 is admitted and changes nothing.
    ///
    /// # Errors
    ///
    /// [`RedisCheckError::EmptyKey`], [`RedisCheckError::KeyTooLong`] and
    /// [`RedisCheckError::CostExceedsLimit`] before any I/O;
    /// [`RedisCheckError::Timeout`] and [`RedisCheckError::Connection`] under
    /// [`FailurePolicy::Error`](super::FailurePolicy::Error) (other policies decide instead); the others
    /// as Redis answers.
    pub async fn check_n(
        &self,
        key: impl AsRef<[u8]>,
        cost: u32,
    ) -> Result<Decision, RedisCheckError> {
        let key = key.as_ref();
        let now = self.inner.p.clock.now_nanos();
        if let Some(early) = self.check_local(key, cost, now) {
            return early;
        }
        if !self.inner.breaker.admit(now) {
            return self.short_circuit(key, cost, now);
        }
        let cmd = self.command(key, cost, None);
        let reply = match tokio::time::timeout(self.inner.p.timeout, self.run_command(&cmd)).await {
            Ok(Ok(v)) => Reply::parse(v),
            Ok(Err(e)) => Err(RedisCheckError::from_redis(e)),
            Err(_) => Err(RedisCheckError::Timeout(self.inner.p.timeout)),
        };
        self.settle(key, cost, now, reply)
    }

    /// The decision known without asking Redis, if any: a bad request's
    /// error, or a denial from the cache. A `Some(Ok(_))` is exactly what
    /// a round trip would have answered, up to the round trip's own time.
    pub(crate) fn check_local(
        &self,
        key: &[u8],
        cost: u32,
        now: u64,
    ) -> Option<Result<Decision, RedisCheckError>> {
        if let Err(e) = self.validate(key, cost) {
            bump(&self.inner.counters.errors);
            return Some(Err(e));
        }
        let d = self.inner.p.denials.as_ref()?.get(key, cost, now)?;
        bump(&self.inner.counters.cached_denials);
        Some(Ok(self.cached_decision(&d, now)))
    }

    /// Checks `cost` cells for each of `keys` in one pipelined round trip
    /// (keys in the denial cache and bad requests do not take part), and
    /// returns the results in order. Redis runs the scripts one after
    /// another, so a key given twice is checked twice.
    pub async fn check_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        cost: u32,
    ) -> Vec<Result<Decision, RedisCheckError>> {
        let now = self.inner.p.clock.now_nanos();
        let mut out: Vec<Option<Result<Decision, RedisCheckError>>> =
            Vec::with_capacity(keys.len());
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let mut sent = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let early = self.check_local(key.as_ref(), cost, now);
            if early.is_none() {
                pipe.add_command(self.command(key.as_ref(), cost, None));
                sent.push(i);
            }
            out.push(early);
        }
        if !sent.is_empty() && !self.inner.breaker.admit(now) {
            for i in sent.drain(..) {
                out[i] = Some(self.short_circuit(keys[i].as_ref(), cost, now));
            }
        }
        if !sent.is_empty() {
            let replies =
                match tokio::time::timeout(self.inner.p.timeout, self.run_pipeline(&pipe)).await {
                    Ok(Ok(values)) if values.len() == sent.len() => {
                        values.into_iter().map(Reply::parse).collect()
                    }
                    Ok(Ok(values)) => {
                        let msg = format!("{} replies to {} scripts", values.len(), sent.len());
                        (0..sent.len())
                            .map(|_| Err(RedisCheckError::UnexpectedReply(msg.clone())))
                            .collect()
                    }
                    Ok(Err(e)) => (0..sent.len())
                        .map(|_| Err(RedisCheckError::from_redis(e.clone())))
                        .collect(),
                    Err(_) => (0..sent.len())
                        .map(|_| Err(RedisCheckError::Timeout(self.inner.p.timeout)))
                        .collect::<Vec<_>>(),
                };
            for (i, reply) in sent.into_iter().zip(replies) {
                out[i] = Some(self.settle(keys[i].as_ref(), cost, now, reply));
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or(Err(RedisCheckError::UnexpectedReply("no reply".into()))))
            .collect()
    }

    /// Sends `cmd`; when the script is missing (`SCRIPT FLUSH`, a
    /// restarted server), loads it and sends `cmd` once more.
    async fn run_command(&self, cmd: &Cmd) -> redis::RedisResult<Value> {
        let mut conn = self.inner.conn.clone();
        bump(&self.inner.counters.round_trips);
        match cmd.query_async::<Value>(&mut conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                self.reload(&mut conn).await?;
                cmd.query_async(&mut conn).await
            }
            r => r,
        }
    }

    /// Sends `pipe`; when a script is missing (`SCRIPT FLUSH`, a restarted
    /// server), loads it and sends the pipeline once more.
    async fn run_pipeline(&self, pipe: &Pipeline) -> redis::RedisResult<Vec<Value>> {
        let mut conn = self.inner.conn.clone();
        bump(&self.inner.counters.round_trips);
        let values: Vec<Value> = pipe.query_async(&mut conn).await?;
        let missing = values.iter().any(|v| {
            matches!(v, Value::ServerError(e)
                if e.kind() == Some(redis::ServerErrorKind::NoScript))
        });
        if !missing {
            return Ok(values);
        }
        self.reload(&mut conn).await?;
        pipe.query_async(&mut conn).await
    }

    /// Loads the script after a `NOSCRIPT`, counting the load and the
    /// request sent again.
    async fn reload(&self, conn: &mut ConnectionManager) -> redis::RedisResult<()> {
        let c = &self.inner.counters;
        bump(&c.script_loads);
        bump(&c.round_trips);
        self.inner.p.script.load_async(conn).await?;
        bump(&c.round_trips);
        Ok(())
    }

    /// The test path: decides at `now_nanos` on the script's arithmetic
    /// instead of the server's `TIME`, with no cache and no policy, and
    /// keeps the key for an hour past its reset so a trace replayed
    /// faster or slower than real time finds its state.
    ///
    /// # Errors
    ///
    /// As [`RedisLimiter::check_n`] under [`FailurePolicy::Error`](super::FailurePolicy::Error).
    #[doc(hidden)]
    pub async fn check_at(
        &self,
        key: impl AsRef<[u8]>,
        cost: u32,
        now_nanos: u64,
    ) -> Result<Decision, RedisCheckError> {
        let key = key.as_ref();
        self.validate(key, cost)?;
        let v = self
            .run_command(&self.command(key, cost, Some(now_nanos)))
            .await
            .map_err(RedisCheckError::from_redis)?;
        Ok(self.decision(Reply::parse(v)?))
    }

    /// The Redis key of `key`: `<prefix>{key}`.
    #[must_use]
    pub fn redis_key(&self, key: &[u8]) -> Vec<u8> {
        let p = &self.inner.p.prefix;
        let mut k = Vec::with_capacity(p.len() + key.len() + 2);
        k.extend_from_slice(p);
        k.push(b'{');
        k.extend_from_slice(key);
        k.push(b'}');
        k
    }

    fn validate(&self, key: &[u8], cost: u32) -> Result<(), RedisCheckError> {
        if key.is_empty() {
            return Err(RedisCheckError::EmptyKey);
        }
        if key.len() > MAX_KEY_LEN {
            return Err(RedisCheckError::KeyTooLong {
                len: key.len(),
                max: MAX_KEY_LEN,
            });
        }
        let limit = self.limit();
        if cost > limit {
            return Err(RedisCheckError::CostExceedsLimit { cost, limit });
        }
        Ok(())
    }

    /// `EVALSHA <sha> 1 <prefix>{key} <time> <keep> <cost> <a> <b>`, the
    /// script's arguments (see `scripts.rs`): the time empty (the server's
    /// `TIME`) unless `at` injects one.
    fn command(&self, key: &[u8], cost: u32, at: Option<u64>) -> Cmd {
        let p = &self.inner.p;
        let mut c = redis::cmd("EVALSHA");
        c.arg(p.script.get_hash()).arg(1).arg(RedisKey {
            prefix: &p.prefix,
            key,
        });
        match at {
            None => c.arg("").arg(0).arg(0),
            Some(now) => c
                .arg(now / 1_000_000_000)
                .arg(now % 1_000_000_000)
                .arg(TEST_KEEP_MS),
        };
        let (a, b) = p.algo.settings();
        c.arg(cost).arg(a).arg(b);
        c
    }

    fn decision(&self, r: Reply) -> Decision {
        let algo = self.inner.p.algo;
        let d = if r.allowed {
            Decision::allow(algo.limit(), 0, r.reset_ns)
        } else {
            Decision::deny_with_retry(algo.limit(), 0, r.retry_ns, r.reset_ns)
        };
        d.with_slack(r.slack, algo.per_cell())
    }

    /// A cached denial as seen `now`: the waits shortened by the time
    /// since it was measured, and for GCRA the slack grown by it (the TAT's
    /// lead shrinks as time passes).
    fn cached_decision(&self, d: &Denied, now: u64) -> Decision {
        let algo = self.inner.p.algo;
        let elapsed = now.saturating_sub(d.at);
        let slack = match algo {
            Algo::Gcra { t, burst } => (d.slack + elapsed).min(t * u64::from(burst)),
            Algo::SlidingCounter { .. } => d.slack,
        };
        Decision::deny_with_retry(
            algo.limit(),
            0,
            d.until - now,
            d.reset_ns.saturating_sub(elapsed),
        )
        .with_slack(slack, algo.per_cell())
    }

    fn settle(
        &self,
        key: &[u8],
        cost: u32,
        now: u64,
        reply: Result<Reply, RedisCheckError>,
    ) -> Result<Decision, RedisCheckError> {
        let c = &self.inner.counters;
        match reply {
            Ok(r) => {
                self.inner.breaker.success();
                bump(&c.decided_by_redis);
                if let Some(cache) = &self.inner.p.denials {
                    if r.allowed {
                        cache.remove(key);
                    } else if r.retry_ns != NEVER && r.retry_ns > 0 {
                        cache.insert(
                            key,
                            Denied {
                                until: now.saturating_add(r.retry_ns),
                                at: now,
                                cost,
                                slack: r.slack,
                                reset_ns: r.reset_ns,
                            },
                        );
                    }
                }
                Ok(self.decision(r))
            }
            Err(e) if e.is_unavailable() => {
                // The cooldown counts from the failure, not the request.
                self.inner.breaker.failure(self.inner.p.clock.now_nanos());
                self.on_unavailable(key, cost, e)
            }
            Err(e) => {
                bump(&c.errors);
                Err(e)
            }
        }
    }

    /// A check while the breaker is open: decided by the failure policy
    /// without a round trip.
    fn short_circuit(&self, key: &[u8], cost: u32, now: u64) -> Result<Decision, RedisCheckError> {
        bump(&self.inner.counters.short_circuited);
        let wait = Duration::from_nanos(self.inner.breaker.remaining(now));
        self.on_unavailable(key, cost, RedisCheckError::CircuitOpen(wait))
    }

    fn on_unavailable(
        &self,
        key: &[u8],
        cost: u32,
        e: RedisCheckError,
    ) -> Result<Decision, RedisCheckError> {
        let c = &self.inner.counters;
        let algo = self.inner.p.algo;
        match &self.inner.p.policy {
            Policy::Error => {
                bump(&c.errors);
                Err(e)
            }
            Policy::Open => {
                bump(&c.failed_open);
                Ok(Decision::allow(algo.limit(), 0, 0))
            }
            Policy::Closed => {
                bump(&c.failed_closed);
                let r = algo.closed_retry();
                Ok(Decision::deny_with_retry(algo.limit(), 0, r, r))
            }
            Policy::Local(fallback) => {
                bump(&c.local_fallback);
                Ok(fallback.check(key, cost))
            }
        }
    }
}

/// The async interface of every limiter (the tower layer's): a key is any
/// byte string (`str`, `String`, `[u8]`, ...). `check_now` answers from
/// the denial cache (and bad requests) without a round trip.
impl<K: AsRef<[u8]> + ?Sized + Sync> AsyncCheck<K> for RedisLimiter {
    type Error = RedisCheckError;

    fn check_async(
        &self,
        key: &K,
        cost: u32,
    ) -> impl std::future::Future<Output = Result<Decision, RedisCheckError>> + Send {
        self.check_n(key.as_ref(), cost)
    }

    fn check_now(&self, key: &K, cost: u32) -> Option<Result<Decision, RedisCheckError>> {
        self.check_local(key.as_ref(), cost, self.inner.p.clock.now_nanos())
    }
}
