//! The near cache: hits in-process, and invalidation through Redis
//! client tracking when another client (or any other writer) changes a
//! key. Prints how long a stale read lasted; asserts no timings.

mod common;

use std::time::{Duration, Instant};

use common::{raw, run, servers};
use sysblocks_dist_cache::{DistCache, NearCache};

const LIMIT: Duration = Duration::from_secs(60);
/// Far longer than any invalidation takes: a fresh read before it ends
/// shows the invalidation, not the TTL, at work.
const NEAR_TTL: Duration = Duration::from_secs(30);

fn client(urls: &[String]) -> DistCache {
    DistCache::builder()
        .nodes(urls.to_vec())
        .near_cache(NearCache {
            capacity: 1_000,
            ttl: NEAR_TTL,
        })
        .build()
        .unwrap()
}

async fn ready(c: &DistCache) {
    let start = Instant::now();
    while !c.near_ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tracking never came up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads `key` through `c` until it returns `want`; the time that took.
async fn until(c: &DistCache, key: &str, want: Option<&[u8]>) -> Duration {
    let start = Instant::now();
    loop {
        if c.get(key).await.unwrap().as_deref() == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < NEAR_TTL / 2, "never invalidated");
        tokio::task::yield_now().await;
    }
}

#[test]
fn another_clients_writes_invalidate_near_copies_and_stale_reads_are_short() {
    let Some((_s, urls)) = servers(2) else { return };
    run(LIMIT, async move {
        let a = client(&urls);
        let b = client(&urls);
        ready(&a).await;
        ready(&b).await;
        a.set("k", "v0").await.unwrap();
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v0"[..]));
        let before = a.stats().near_hits;
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"v0"[..]));
        assert_eq!(a.stats().near_hits, before + 1, "second read is a near hit");
        assert!(a.near_len() >= 1);

        // Another client writes: the near copy goes, measured from the
        // moment the write returned.
        let mut stale = Vec::new();
        for i in 1..=50 {
            let v = format!("v{i}");
            // Make sure `a` holds the previous value near.
            let prev = format!("v{}", i - 1);
            until(&a, "k", Some(prev.as_bytes())).await;
            b.set("k", v.clone()).await.unwrap();
            stale.push(until(&a, "k", Some(v.as_bytes())).await);
        }
        stale.sort_unstable();
        eprintln!(
            "stale read after another client's write: p50 {:?}, p99 {:?}, max {:?} (near TTL {NEAR_TTL:?})",
            stale[stale.len() / 2],
            stale[stale.len() * 99 / 100],
            stale[stale.len() - 1]
        );

        // A delete by the other client.
        b.delete("k").await.unwrap();
        until(&a, "k", None).await;

        // A writer that is not this crate (redis-cli, a script): the server
        // reports it all the same.
        a.set("ext", "old").await.unwrap();
        a.get("ext").await.unwrap();
        let mut raw = raw(&a.owner("ext")).await;
        redis::cmd("SET")
            .arg("dc:ext")
            .arg("new")
            .query_async::<()>(&mut raw)
            .await
            .unwrap();
        let t = until(&a, "ext", Some(b"new")).await;
        eprintln!("stale read after a foreign writer's SET: {t:?}");

        // A client's own write: its next read sees it at once.
        a.set("own", "1").await.unwrap();
        a.get("own").await.unwrap();
        a.set("own", "2").await.unwrap();
        assert_eq!(a.get("own").await.unwrap().as_deref(), Some(&b"2"[..]));
    });
}

#[test]
fn a_lost_tracking_connection_clears_the_near_cache() {
    let Some((mut s, urls)) = servers(1) else {
        return;
    };
    run(LIMIT, async move {
        let a = DistCache::builder()
            .nodes(urls.clone())
            .near_cache(NearCache::default())
            .build()
            .unwrap();
        ready(&a).await;
        a.set("k", "v").await.unwrap();
        // The echo of its own write may refuse the first fill: read until
        // the copy is kept.
        let start = Instant::now();
        while a.near_len() == 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "never kept near");
            a.get("k").await.unwrap();
            tokio::task::yield_now().await;
        }
        s[0].kill();
        let start = Instant::now();
        while a.near_len() != 0 {
            assert!(start.elapsed() < Duration::from_secs(5), "near cache kept");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!a.near_ready());
        // Back up: tracking resumes.
        s[0].restart().unwrap();
        ready(&a).await;
        // The data connection reconnects on use (the first tries may fail
        // and eject the node for a moment).
        let start = Instant::now();
        while a.set("k", "w").await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "never recovered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"w"[..]));
    });
}
