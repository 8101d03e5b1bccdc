//! One Redis node: its data connection, health and tracking connection,
//! and the few commands the cache sends, each under a timeout and each
//! reply checked for its type.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::Value;

use crate::error::CacheError;
use crate::health::Health;
use crate::near::Tracker;

/// A member of the cache.
pub(crate) struct Node {
    pub(crate) name: String,
    conn: ConnectionManager,
    timeout: Duration,
    pub(crate) health: Health,
    pub(crate) tracker: Option<Tracker>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("health", &self.health)
            .field("tracker", &self.tracker)
            .finish_non_exhaustive()
    }
}

impl Node {
    pub(crate) fn new(
        name: String,
        conn: ConnectionManager,
        timeout: Duration,
        tracker: Option<Tracker>,
    ) -> Self {
        Self {
            name,
            conn,
            timeout,
            health: Health::default(),
            tracker,
        }
    }

    /// Whether values read from this node may be kept in the near cache.
    pub(crate) fn tracked(&self) -> bool {
        self.tracker.as_ref().is_some_and(Tracker::is_live)
    }

    fn unexpected(&self, command: &'static str, reply: &Value) -> CacheError {
        CacheError::Unexpected {
            node: self.name.clone(),
            command,
            reply: format!("{reply:?}"),
        }
    }

    /// Sends `cmd` (or a pipeline) and waits at most the timeout.
    async fn query<T: redis::FromRedisValue>(
        &self,
        run: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, CacheError> {
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(CacheError::Redis {
                node: self.name.clone(),
                source,
            }),
            Err(_) => Err(CacheError::Timeout {
                node: self.name.clone(),
                after: self.timeout,
            }),
        }
    }

    fn value(&self, command: &'static str, v: Value) -> Result<Option<Bytes>, CacheError> {
        match v {
            Value::Nil => Ok(None),
            Value::BulkString(b) => Ok(Some(Bytes::from(b))),
            other => Err(self.unexpected(command, &other)),
        }
    }

    /// `GET`.
    pub(crate) async fn get(&self, rkey: &[u8]) -> Result<Option<Bytes>, CacheError> {
        let mut conn = self.conn.clone();
        let v: Value = self
            .query(redis::cmd("GET").arg(rkey).query_async(&mut conn))
            .await?;
        self.value("GET", v)
    }

    /// The replies of `pipe`, a pipeline of `n` `GET`s built by
    /// [`get_pipeline`], in order.
    pub(crate) async fn get_pipelined(
        &self,
        pipe: &redis::Pipeline,
        n: usize,
    ) -> Result<Vec<Option<Bytes>>, CacheError> {
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = self.query(pipe.query_async(&mut conn)).await?;
        if replies.len() != n {
            return Err(self.unexpected("GET (pipelined)", &Value::Array(replies)));
        }
        replies
            .into_iter()
            .map(|v| self.value("GET (pipelined)", v))
            .collect()
    }

    /// `SET key value PX ttl [NX]`: whether the value was stored (always,
    /// without `nx`).
    pub(crate) async fn set(
        &self,
        rkey: &[u8],
        value: &[u8],
        ttl_ms: u64,
        nx: bool,
    ) -> Result<bool, CacheError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(rkey).arg(value).arg("PX").arg(ttl_ms);
        if nx {
            cmd.arg("NX");
        }
        let mut conn = self.conn.clone();
        let v: Value = self.query(cmd.query_async(&mut conn)).await?;
        match v {
            Value::Okay => Ok(true),
            Value::SimpleString(s) if s == "OK" => Ok(true),
            Value::Nil if nx => Ok(false),
            other => Err(self.unexpected("SET", &other)),
        }
    }

    /// `SET key value PX ttl NX` for each entry, in one pipeline: whether
    /// each was stored (absent before).
    pub(crate) async fn set_many_nx(
        &self,
        entries: &[(&[u8], &Bytes, u64)],
    ) -> Result<Vec<bool>, CacheError> {
        let mut pipe = redis::pipe();
        for (k, v, ttl_ms) in entries {
            pipe.cmd("SET")
                .arg(*k)
                .arg(v.as_ref())
                .arg("PX")
                .arg(*ttl_ms)
                .arg("NX");
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = self.query(pipe.query_async(&mut conn)).await?;
        if replies.len() != entries.len() {
            return Err(self.unexpected("SET NX (pipelined)", &Value::Array(replies)));
        }
        replies
            .into_iter()
            .map(|v| match v {
                Value::Okay => Ok(true),
                Value::SimpleString(s) if s == "OK" => Ok(true),
                Value::Nil => Ok(false),
                other => Err(self.unexpected("SET NX (pipelined)", &other)),
            })
            .collect()
    }

    /// `DEL`: whether the key existed.
    pub(crate) async fn del(&self, rkey: &[u8]) -> Result<bool, CacheError> {
        let mut conn = self.conn.clone();
        let v: Value = self
            .query(redis::cmd("DEL").arg(rkey).query_async(&mut conn))
            .await?;
        match v {
            Value::Int(n) => Ok(n > 0),
            other => Err(self.unexpected("DEL", &other)),
        }
    }

    /// One `SCAN` step over keys matching `pattern`: the next cursor (0
    /// when done) and the keys.
    pub(crate) async fn scan(
        &self,
        cursor: u64,
        pattern: &[u8],
    ) -> Result<(u64, Vec<Vec<u8>>), CacheError> {
        let mut conn = self.conn.clone();
        let v: Value = self
            .query(
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn),
            )
            .await?;
        let bad = |v: &Value| self.unexpected("SCAN", v);
        let Value::Array(parts) = &v else {
            return Err(bad(&v));
        };
        let [Value::BulkString(c), Value::Array(keys)] = parts.as_slice() else {
            return Err(bad(&v));
        };
        let next = std::str::from_utf8(c)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(&v))?;
        let keys = keys
            .iter()
            .map(|k| match k {
                Value::BulkString(b) => Ok(b.clone()),
                _ => Err(bad(&v)),
            })
            .collect::<Result<_, _>>()?;
        Ok((next, keys))
    }

    /// `GET` and `PTTL` of each key, pipelined: `(value, ttl in ms)`,
    /// `None` for keys gone meanwhile; a key without a TTL gets
    /// `default_ttl_ms`.
    pub(crate) async fn dump_values(
        &self,
        rkeys: &[Vec<u8>],
        default_ttl_ms: u64,
    ) -> Result<Vec<Option<(Bytes, u64)>>, CacheError> {
        let mut pipe = redis::pipe();
        for k in rkeys {
            pipe.cmd("GET").arg(k).cmd("PTTL").arg(k);
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = self.query(pipe.query_async(&mut conn)).await?;
        if replies.len() != 2 * rkeys.len() {
            return Err(self.unexpected("GET+PTTL", &Value::Array(replies)));
        }
        let mut out = Vec::with_capacity(rkeys.len());
        for pair in replies.chunks_exact(2) {
            let value = self.value("GET", pair[0].clone())?;
            let ttl = match pair[1] {
                Value::Int(-1) => Some(default_ttl_ms),
                Value::Int(t) if t > 0 => u64::try_from(t).ok(),
                Value::Int(_) => None,
                ref other => return Err(self.unexpected("PTTL", other)),
            };
            out.push(value.zip(ttl));
        }
        Ok(out)
    }
}

/// A Redis key written as its prefix and the user's key, straight into
/// the command buffer (no joined copy per key).
struct Prefixed<'a>(&'a str, &'a str);

impl redis::ToRedisArgs for Prefixed<'_> {
    fn write_redis_args<W: ?Sized + redis::RedisWrite>(&self, out: &mut W) {
        use std::io::Write as _;
        let mut w = out.writer_for_next_arg();
        // Writes into the command's own buffer, which cannot fail.
        let _ = w.write_all(self.0.as_bytes());
        let _ = w.write_all(self.1.as_bytes());
    }
}

/// One pipeline of a `GET` per key of `keys`, each under `prefix`.
pub(crate) fn get_pipeline<'a>(
    prefix: &str,
    keys: impl Iterator<Item = &'a str>,
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for k in keys {
        pipe.cmd("GET").arg(Prefixed(prefix, k));
    }
    pipe
}
