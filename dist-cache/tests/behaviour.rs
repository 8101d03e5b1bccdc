//! The client against real servers: routing, TTL, replication, pipelined
//! reads, cache-aside with single flight, write-through, bad input.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{raw_get, run, servers};
use sysblocks_dist_cache::{
    BuildError, Bytes, CacheError, DistCache, LoadError, Placement, Store, WriteError, WriteThrough,
};

const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn keys_spread_over_the_nodes_and_round_trip_with_a_ttl() {
    let Some((_s, urls)) = servers(3) else { return };
    run(LIMIT, async move {
        let cache = DistCache::builder().nodes(urls.clone()).build().unwrap();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for i in 0..60 {
            let key = format!("k{i}");
            cache.set(&key, format!("v{i}")).await.unwrap();
            let owner = cache.owner(&key);
            // Stored on its owner only.
            for u in &urls {
                let held = raw_get(u, &format!("dc:{key}")).await;
                assert_eq!(held.is_some(), *u == owner, "{key} on {u}");
            }
            *per_node.entry(owner).or_default() += 1;
        }
        assert_eq!(per_node.len(), 3, "{per_node:?}");
        for i in 0..60 {
            let v = cache.get(&format!("k{i}")).await.unwrap();
            assert_eq!(v.as_deref(), Some(format!("v{i}").as_bytes()));
        }
        // Every write has a TTL.
        let mut c = common::raw(&cache.owner("k1")).await;
        let ttl: i64 = redis::cmd("PTTL")
            .arg("dc:k1")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 300_000, "{ttl}");
        cache
            .set_with_ttl("short", "x", Duration::from_millis(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get("short").await.unwrap(), None);
        cache.delete("k1").await.unwrap();
        assert_eq!(cache.get("k1").await.unwrap(), None);
        assert_eq!(cache.get("never-set").await.unwrap(), None);
        let s = cache.stats();
        assert_eq!(s.remote_hits, 60);
        assert_eq!(s.node_failures, 0);
    });
}

#[test]
fn every_placement_routes_and_replicas_land_on_distinct_nodes() {
    let Some((_s, urls)) = servers(3) else { return };
    run(LIMIT, async move {
        for (p, prefix) in [
            (Placement::default(), "ring:"),
            (Placement::Jump, "jump:"),
            (Placement::Maglev, "maglev:"),
            (Placement::Rendezvous, "hrw:"),
        ] {
            let cache = DistCache::builder()
                .nodes(urls.clone())
                .placement(p)
                .replicas(2)
                .prefix(prefix)
                .build()
                .unwrap();
            for i in 0..20 {
                let key = format!("r{i}");
                cache.set(&key, "v").await.unwrap();
                let mut copies = 0;
                for u in &urls {
                    copies += usize::from(raw_get(u, &format!("{prefix}{key}")).await.is_some());
                }
                assert_eq!(copies, 2, "{p:?} {key}");
                assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"v"[..]));
            }
        }
    });
}

#[test]
fn get_many_pipelines_per_node_and_keeps_the_order() {
    let Some((_s, urls)) = servers(3) else { return };
    run(LIMIT, async move {
        let cache = DistCache::builder().nodes(urls).build().unwrap();
        for i in (0..100).step_by(2) {
            cache.set(&format!("m{i}"), i.to_string()).await.unwrap();
        }
        let keys: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = cache.get_many(&refs).await.unwrap();
        for (i, v) in got.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(v.as_deref(), Some(i.to_string().as_bytes()));
            } else {
                assert_eq!(*v, None);
            }
        }
        assert!(cache.get_many(&[]).await.unwrap().is_empty());
    });
}

#[test]
fn concurrent_misses_share_one_load_and_loader_errors_release_waiters() {
    let Some((_s, urls)) = servers(2) else { return };
    run(LIMIT, async move {
        let cache = DistCache::builder().nodes(urls).build().unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (cache, loads) = (cache.clone(), Arc::clone(&loads));
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_load("hot", || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, String>(Some(Bytes::from("db")))
                    })
                    .await
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().as_deref(), Some(&b"db"[..]));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // Single flight across both tiers: one remote read for all 16.
        let s = cache.stats();
        assert_eq!(s.remote_hits + s.misses, 1, "{s:?}");
        // Now cached in Redis: no loader call.
        let v = cache
            .get_or_load("hot", || async { Err::<Option<Bytes>, _>("must not run") })
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some(&b"db"[..]));
        // A failing loader's error reaches its caller; nothing is stored.
        let e = cache
            .get_or_load("cold", || async { Err::<Option<Bytes>, _>("db down") })
            .await
            .unwrap_err();
        assert!(matches!(e, LoadError::Load("db down")));
        assert_eq!(cache.get("cold").await.unwrap(), None);
        // Absent in the store: None, nothing stored.
        let v = cache
            .get_or_load("absent", || async { Ok::<_, String>(None) })
            .await
            .unwrap();
        assert_eq!(v, None);
        assert_eq!(cache.stats().loads, 3);
    });
}

#[derive(Default)]
struct Db(Mutex<HashMap<String, Bytes>>);

impl Store<String, Bytes> for Db {
    type Error = String;
    fn read(&self, k: &String) -> Result<Option<Bytes>, String> {
        Ok(self.0.lock().unwrap().get(k).cloned())
    }
    fn write(&self, k: &String, v: &Bytes) -> Result<(), String> {
        if v.is_empty() {
            return Err("empty value".into());
        }
        self.0.lock().unwrap().insert(k.clone(), v.clone());
        Ok(())
    }
    fn delete(&self, k: &String) -> Result<(), String> {
        self.0.lock().unwrap().remove(k);
        Ok(())
    }
}

#[test]
fn write_through_writes_the_store_first() {
    let Some((_s, urls)) = servers(2) else { return };
    run(LIMIT, async move {
        let cache = DistCache::builder().nodes(urls).build().unwrap();
        let wt = WriteThrough::new(cache.clone(), Db::default());
        wt.put("a", "one").await.unwrap();
        assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"one"[..]));
        // Refused by the store: the cache keeps the old value.
        assert!(matches!(wt.put("a", "").await, Err(WriteError::Store(_))));
        assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"one"[..]));
        // A read that misses the cache reads the store, then caches.
        wt.store()
            .0
            .lock()
            .unwrap()
            .insert("b".into(), Bytes::from("two"));
        assert_eq!(wt.get("b").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(cache.get("b").await.unwrap().as_deref(), Some(&b"two"[..]));
        wt.delete("a").await.unwrap();
        assert_eq!(cache.get("a").await.unwrap(), None);
        assert_eq!(wt.get("a").await.unwrap(), None);
    });
}

#[test]
fn the_blocking_client_does_the_same() {
    let Some((_s, urls)) = servers(2) else { return };
    let cache = DistCache::builder().nodes(urls).build_blocking().unwrap();
    cache.set("b", "1").unwrap();
    assert_eq!(cache.get("b").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        cache.get_many(&["b", "c"]).unwrap()[0].as_deref(),
        Some(&b"1"[..])
    );
    let v = cache
        .get_or_load("c", || Ok::<_, String>(Some(Bytes::from("2"))))
        .unwrap();
    assert_eq!(v.as_deref(), Some(&b"2"[..]));
    cache.delete("b").unwrap();
    assert_eq!(cache.get("b").unwrap(), None);
}

#[test]
fn bad_settings_are_typed_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let b = || DistCache::builder().node("redis://127.0.0.1:1/");
    assert!(matches!(
        DistCache::builder().build(),
        Err(BuildError::NoNodes)
    ));
    assert!(matches!(
        b().node("redis://127.0.0.1:1/").build(),
        Err(BuildError::DuplicateNode { .. })
    ));
    assert!(matches!(
        DistCache::builder().node("not a url").build(),
        Err(BuildError::Address { .. })
    ));
    assert!(matches!(
        b().replicas(0).build(),
        Err(BuildError::Zero { .. })
    ));
    assert!(matches!(
        b().replicas(2).build(),
        Err(BuildError::TooLarge { .. })
    ));
    assert!(matches!(
        b().timeout(Duration::ZERO).build(),
        Err(BuildError::Zero { .. })
    ));
    assert!(matches!(
        b().ttl(Duration::ZERO).build(),
        Err(BuildError::Invalid { .. })
    ));
    assert!(matches!(
        b().prefix("a*").build(),
        Err(BuildError::Invalid { .. })
    ));
    assert!(matches!(
        b().placement(Placement::Ring { vnodes: 0 }).build(),
        Err(BuildError::Placement(_))
    ));
    drop(_enter);
    // Outside a runtime.
    assert!(matches!(b().build(), Err(BuildError::NoRuntime)));
}

/// A "Redis" that answers every command with the integer 42.
async fn liar() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = sock.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // One reply per command in the buffer (each starts with '*').
                    let cmds = buf[..n].iter().filter(|&&b| b == b'*').count().max(1);
                    for _ in 0..cmds {
                        if sock.write_all(b":42\r\n").await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    url
}

#[test]
fn bad_input_and_odd_replies_are_typed_errors_and_the_client_keeps_working() {
    let Some((_s, urls)) = servers(1) else { return };
    run(LIMIT, async move {
        let liar = liar().await;
        let cache = DistCache::builder()
            .node(urls[0].clone())
            .node(liar.clone())
            .max_value_bytes(16)
            .build()
            .unwrap();
        assert!(matches!(
            cache.set("k", vec![0u8; 17]).await,
            Err(CacheError::ValueTooLarge { len: 17, max: 16 })
        ));
        let long = "k".repeat(sysblocks_dist_cache::MAX_KEY_BYTES + 1);
        assert!(matches!(
            cache.get(&long).await,
            Err(CacheError::KeyTooLarge { .. })
        ));
        assert!(matches!(
            cache
                .set_with_ttl("k", "v", Duration::from_micros(10))
                .await,
            Err(CacheError::InvalidTtl { .. })
        ));
        // A key on the liar: its reply is reported as unexpected.
        let on_liar = (0..100)
            .map(|i| format!("x{i}"))
            .find(|k| cache.owner(k) == liar)
            .unwrap();
        let on_real = (0..100)
            .map(|i| format!("x{i}"))
            .find(|k| cache.owner(k) != liar)
            .unwrap();
        let strict = DistCache::builder()
            .node(urls[0].clone())
            .node(liar.clone())
            .failover(sysblocks_dist_cache::Failover::Miss)
            .build()
            .unwrap();
        match strict.get(&on_liar).await {
            Err(CacheError::Unavailable { last: Some(e) }) => {
                assert!(
                    matches!(*e, CacheError::Unexpected { command: "GET", .. }),
                    "{e}"
                );
            }
            other => panic!("expected an unexpected reply, got {other:?}"),
        }
        match strict.set(&on_liar, "v").await {
            Err(CacheError::Unavailable { last: Some(e) }) => {
                assert!(
                    matches!(*e, CacheError::Unexpected { command: "SET", .. }),
                    "{e}"
                );
            }
            other => panic!("expected an unexpected reply, got {other:?}"),
        }
        // The other node still works, and with NextNode the liar's keys
        // fail over to it.
        strict.set(&on_real, "ok").await.unwrap();
        assert_eq!(
            strict.get(&on_real).await.unwrap().as_deref(),
            Some(&b"ok"[..])
        );
        cache.set(&on_liar, "moved").await.unwrap_or(());
        assert!(cache.get(&on_liar).await.is_ok());
        assert!(cache.stats().node_failures >= 1);

        // A pipelined read answered oddly counts as the liar's third
        // failure in a row: it is ejected, and with `Failover::Miss` its
        // keys miss instead of failing (no error storm).
        let failures = strict.stats().node_failures;
        let many = strict.get_many(&[&on_real, &on_liar]).await.unwrap();
        assert_eq!(many, vec![Some(Bytes::from("ok")), None]);
        assert!(strict.stats().node_failures > failures);
        assert_eq!(strict.ejected_nodes(), vec![liar.clone()]);
        // A loaded value over the limit is refused, typed, and not stored.
        let e = cache
            .get_or_load("big", || async {
                Ok::<_, String>(Some(Bytes::from(vec![0u8; 17])))
            })
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                LoadError::Cache(CacheError::ValueTooLarge { len: 17, max: 16 })
            ),
            "{e}"
        );
        // After all of that, both clients still work: the one that refused
        // the oversized value and the one that met the odd replies.
        cache.set(&on_real, "fine").await.unwrap();
        assert_eq!(
            cache.get(&on_real).await.unwrap().as_deref(),
            Some(&b"fine"[..])
        );
        let many = cache.get_many(&[&on_real, &on_liar]).await.unwrap();
        assert_eq!(many[0].as_deref(), Some(&b"fine"[..]));
        strict.delete(&on_real).await.unwrap();
        assert_eq!(strict.get(&on_real).await.unwrap(), None);
    });
}

/// `f`'s output, failing the test if it takes far longer than any
/// timeout of the client (a hang).
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("hung")
}

/// A "Redis" that accepts connections and never answers.
async fn silent() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = vec![0u8; 4096];
                while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    url
}

#[test]
fn a_node_that_never_answers_times_out_and_is_ejected_without_hanging() {
    let Some((_s, urls)) = servers(1) else { return };
    run(LIMIT, async move {
        let silent = silent().await;
        let build = |failover| {
            DistCache::builder()
                .node(urls[0].clone())
                .node(silent.clone())
                .timeout(Duration::from_millis(50))
                .failover(failover)
                // Long enough that the ejection outlasts the test.
                .ejection(sysblocks_dist_cache::Ejection {
                    consecutive_failures: 3,
                    base_ejection_time: Duration::from_secs(60),
                    max_ejection_time: Duration::from_secs(60),
                })
                .build()
                .unwrap()
        };
        let strict = build(sysblocks_dist_cache::Failover::Miss);
        let cache = build(sysblocks_dist_cache::Failover::NextNode);
        let on_silent = (0..100)
            .map(|i| format!("s{i}"))
            .find(|k| cache.owner(k) == silent)
            .unwrap();
        match bounded(strict.get(&on_silent)).await {
            Err(CacheError::Unavailable { last: Some(e) }) => {
                assert!(matches!(*e, CacheError::Timeout { .. }), "{e}");
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        // Failing over, the same key is served by the live node.
        bounded(cache.set(&on_silent, "v")).await.unwrap_or(());
        for _ in 0..10 {
            bounded(cache.get(&on_silent)).await.unwrap();
        }
        // Ejected after its consecutive failures; the client keeps
        // working on the live node.
        assert_eq!(cache.ejected_nodes(), vec![silent.clone()]);
        bounded(cache.set(&on_silent, "w")).await.unwrap();
        assert_eq!(
            bounded(cache.get(&on_silent)).await.unwrap().as_deref(),
            Some(&b"w"[..])
        );
    });
}
