//! A redis-server killed mid-run: reads stay available, the dead node is
//! ejected (no error storm), no call hangs, and the node is taken back
//! once it answers again.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{run, servers};
use sysblocks_dist_cache::{DistCache, Ejection};

const N: usize = 4;
const KEYS: usize = 400;
/// A call that takes longer than this is a hang.
const HANG: Duration = Duration::from_secs(3);

fn cache(urls: &[String], replicas: usize, prefix: &str) -> DistCache {
    DistCache::builder()
        .nodes(urls.to_vec())
        .replicas(replicas)
        .prefix(prefix)
        .timeout(Duration::from_millis(100))
        .ejection(Ejection {
            consecutive_failures: 3,
            base_ejection_time: Duration::from_millis(300),
            max_ejection_time: Duration::from_secs(1),
        })
        .build()
        .unwrap()
}

#[derive(Debug, Default)]
struct Tally {
    reads: usize,
    ok: usize,
    hits: usize,
}

/// Reads every key in rounds until `stop`, each read bounded by `HANG`.
async fn reader(c: DistCache, keys: Arc<Vec<String>>, stop: Arc<AtomicBool>) -> Tally {
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        for k in keys.iter() {
            let r = tokio::time::timeout(HANG, c.get(k))
                .await
                .expect("a read hung");
            t.reads += 1;
            if let Ok(v) = r {
                t.ok += 1;
                t.hits += usize::from(v.is_some());
            }
        }
    }
    t
}

#[test]
fn reads_stay_available_when_a_node_dies_and_it_is_readmitted_after() {
    let Some((mut s, urls)) = servers(N) else {
        return;
    };
    run(Duration::from_secs(60), async move {
        let single = cache(&urls, 1, "r1:");
        let double = cache(&urls, 2, "r2:");
        let keys: Arc<Vec<String>> = Arc::new((0..KEYS).map(|i| format!("k{i}")).collect());
        for k in keys.iter() {
            single.set(k, "v").await.unwrap();
            double.set(k, "v").await.unwrap();
        }
        let victim = urls[1].clone();
        let on_victim: HashSet<&String> =
            keys.iter().filter(|k| single.owner(k) == victim).collect();

        // Kill the victim while both clients read.
        let stop = Arc::new(AtomicBool::new(false));
        let r1 = tokio::spawn(reader(single.clone(), Arc::clone(&keys), Arc::clone(&stop)));
        let r2 = tokio::spawn(reader(double.clone(), Arc::clone(&keys), Arc::clone(&stop)));
        tokio::time::sleep(Duration::from_millis(100)).await;
        s[1].kill();
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_millis(900)).await;
        stop.store(true, Ordering::Relaxed);
        let (t1, t2) = (r1.await.unwrap(), r2.await.unwrap());
        let floor = (N - 1) as f64 / N as f64;
        for (name, t) in [("1 replica", &t1), ("2 replicas", &t2)] {
            let avail = t.ok as f64 / t.reads as f64;
            let hit = t.hits as f64 / t.reads as f64;
            eprintln!(
                "{name}: {} reads around the kill, {avail:.4} answered, {hit:.4} hits",
                t.reads
            );
            assert!(avail >= floor, "{name}: availability {avail}");
        }
        // With two replicas every key is still found.
        assert!(t2.hits as f64 / t2.reads as f64 >= floor);
        eprintln!(
            "keys on the dead node: {} of {KEYS}; ejections: {} / {}",
            on_victim.len(),
            single.stats().ejections,
            double.stats().ejections
        );
        // After the kill, reads of the other keys still hit.
        for k in keys.iter().filter(|k| !on_victim.contains(k)) {
            assert!(single.get(k).await.unwrap().is_some(), "{k}");
        }
        for k in keys.iter() {
            assert!(double.get(k).await.unwrap().is_some(), "{k}");
        }
        // Ejected, not retried on every call: few failures per ejection.
        let st = single.node_status();
        let victim_status = st.iter().find(|n| n.node == victim).unwrap();
        assert!(victim_status.times_ejected >= 1, "{st:?}");
        let failures = single.stats().node_failures;
        eprintln!(
            "node failures seen by the 1-replica client in {:?}: {failures}",
            killed.elapsed()
        );
        // No error storm: its one reader is sequential, so each admission
        // of the dead node costs at most `consecutive_failures` failing
        // calls before the next ejection, however long the run.
        let admissions = u64::from(victim_status.times_ejected) + 1;
        assert!(
            failures <= 3 * admissions,
            "{failures} failures over {admissions} admissions"
        );

        // Recovery: the node comes back (empty), is re-admitted after its
        // back-off, and owns its keys again.
        s[1].restart().unwrap();
        let key = on_victim.iter().next().unwrap().as_str();
        let start = Instant::now();
        loop {
            let _ = single.set(key, "again").await;
            if common::raw_get(&victim, &format!("r1:{key}"))
                .await
                .is_some()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never re-admitted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            single.get(key).await.unwrap().as_deref(),
            Some(&b"again"[..])
        );
        assert!(single.ejected_nodes().is_empty());
    });
}
