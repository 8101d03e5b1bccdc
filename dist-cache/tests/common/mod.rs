//! Servers and raw connections shared by the test binaries.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use sysblocks_testkit::redis::RedisServer;

/// `n` private servers and their URLs, or `None` (skipped).
pub fn servers(n: usize) -> Option<(Vec<RedisServer>, Vec<String>)> {
    let servers = RedisServer::start_many(n, &[])?;
    let urls = servers.iter().map(RedisServer::url).collect();
    Some((servers, urls))
}

/// A plain connection to one server, for checking what it holds.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

/// The value a server holds at `key` (a full Redis key).
pub async fn raw_get(url: &str, key: &str) -> Option<Vec<u8>> {
    let mut c = raw(url).await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("GET")
}

/// Runs `f` on a fresh multi-thread runtime, failing if it takes longer
/// than `limit` (no test may hang).
pub fn run<F: std::future::Future<Output = ()>>(limit: Duration, f: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(limit, f).await.expect("the test hung");
        });
}
