//! The example gateway over real sockets: its `serve` on an OS-chosen
//! port of 127.0.0.1, on a manual clock, answering raw HTTP/1.1 requests;
//! status codes and the RateLimit fields checked exactly.
#![cfg(feature = "tower")]

#[allow(dead_code)]
#[path = "../examples/gateway.rs"]
mod gateway;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sysblocks_rate_limiter::tower::Policy;
use sysblocks_rate_limiter::{Gcra, Keyed, ManualClock, Quota};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends `GET /` (with `X-Api-Key` if given) and returns the status and
/// the headers (names lower-cased).
async fn get(addr: SocketAddr, api_key: Option<&str>) -> (u16, HashMap<String, String>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let key = api_key.map_or(String::new(), |k| format!("X-Api-Key: {k}\r\n"));
    let req = format!("GET / HTTP/1.1\r\nHost: gateway\r\n{key}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let head = raw.split("\r\n\r\n").next().unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (status, headers)
}

#[tokio::test]
async fn gateway_admits_then_answers_429_with_exact_fields() {
    let clock = ManualClock::new();
    let quota = Quota::per_minute(2);
    let limiter = Keyed::builder(Gcra::with_clock(quota, clock.clone()).unwrap())
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let policy = Policy::from_quota("per-client", quota).unwrap();
    let server = tokio::spawn(gateway::serve(listener, limiter, policy));

    let (status, h) = get(addr, Some("alice")).await;
    assert_eq!(status, 200);
    assert_eq!(h["ratelimit-policy"], r#""per-client";q=2;w=60"#);
    assert_eq!(h["ratelimit"], r#""per-client";r=1;t=30"#);
    assert!(!h.contains_key("retry-after"));

    let (status, h) = get(addr, Some("alice")).await;
    assert_eq!(status, 200);
    assert_eq!(h["ratelimit"], r#""per-client";r=0;t=60"#);

    clock.advance(Duration::from_millis(2500));
    let (status, h) = get(addr, Some("alice")).await;
    assert_eq!(status, 429);
    // 27.5 s rounded up.
    assert_eq!(h["retry-after"], "28");
    assert_eq!(h["ratelimit"], r#""per-client";r=0;t=28"#);
    assert_eq!(h["ratelimit-policy"], r#""per-client";q=2;w=60"#);

    // Another key, and a request without a key (limited by its IP).
    let (status, h) = get(addr, Some("bob")).await;
    assert_eq!(status, 200);
    assert_eq!(h["ratelimit"], r#""per-client";r=1;t=30"#);
    for (want, r) in [(200, "r=1;t=30"), (200, "r=0;t=60"), (429, "r=0;t=30")] {
        let (status, h) = get(addr, None).await;
        assert_eq!(status, want);
        assert_eq!(h["ratelimit"], format!(r#""per-client";{r}"#));
    }

    // Once alice's wait is over she is admitted again.
    clock.advance(Duration::from_secs(28));
    let (status, _) = get(addr, Some("alice")).await;
    assert_eq!(status, 200);
    server.abort();
}
