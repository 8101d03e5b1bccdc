//! Nodes added and removed at run time: only moved keys change node, and
//! the warm-up copies them from their old owner.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{run, servers};
use sysblocks_dist_cache::{BuildError, DistCache, Placement};

const KEYS: usize = 400;

async fn found(c: &DistCache, keys: &[String]) -> usize {
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    c.get_many(&refs)
        .await
        .unwrap()
        .iter()
        .filter(|v| v.is_some())
        .count()
}

#[test]
fn adding_and_removing_nodes_moves_only_their_keys_and_warm_up_copies_them() {
    let Some((_s, urls)) = servers(5) else { return };
    run(Duration::from_secs(60), async move {
        for (placement, prefix) in [
            (Placement::default(), "ring:"),
            (Placement::Jump, "jump:"),
            (Placement::Maglev, "maglev:"),
            (Placement::Rendezvous, "hrw:"),
        ] {
            let c = DistCache::builder()
                .nodes(urls[..4].to_vec())
                .placement(placement)
                .prefix(prefix)
                .build()
                .unwrap();
            let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
            for k in &keys {
                c.set(k, k.clone()).await.unwrap();
            }
            let before: HashMap<&String, String> = keys.iter().map(|k| (k, c.owner(k))).collect();

            // Without warm-up: moved keys miss, the rest are still found.
            let report = c.add_node(&urls[4], false).await.unwrap();
            assert_eq!(report.copied, 0);
            let (mut moved, mut between_old) = (0, 0);
            for k in &keys {
                let now = c.owner(k);
                if now != before[k] {
                    moved += 1;
                    between_old += usize::from(now != urls[4]);
                }
            }
            // Maglev's table moves a few keys between the old nodes too;
            // the others move keys only to the new node.
            if placement == Placement::Maglev {
                assert!(between_old * 20 < KEYS, "{between_old}");
            } else {
                assert_eq!(between_old, 0, "{placement:?}");
            }
            let kept = found(&c, &keys).await;
            assert_eq!(kept, KEYS - moved, "{placement:?}");
            eprintln!("{placement:?}: after adding a 5th node, {kept} of {KEYS} keys still found");

            // Removing it again brings every key back to its old owner.
            c.remove_node(&urls[4], false).await.unwrap();
            assert_eq!(found(&c, &keys).await, KEYS, "{placement:?}");

            // With warm-up every key is found right after the change.
            let report = c.add_node(&urls[4], true).await.unwrap();
            assert_eq!(report.moved as usize, moved, "{placement:?}: {report:?}");
            assert_eq!(report.copied as usize, moved, "{placement:?}: {report:?}");
            assert_eq!(report.failures, 0);
            assert_eq!(found(&c, &keys).await, KEYS, "{placement:?}");
            for k in keys.iter().take(20) {
                assert_eq!(c.get(k).await.unwrap().as_deref(), Some(k.as_bytes()));
            }

            // Removing a node (jump: the last one) with warm-up hands its
            // keys over first.
            let leaving = if placement == Placement::Jump {
                urls[4].clone()
            } else {
                urls[0].clone()
            };
            let report = c.remove_node(&leaving, true).await.unwrap();
            assert!(report.moved > 0, "{placement:?}: {report:?}");
            assert_eq!(found(&c, &keys).await, KEYS, "{placement:?}");
            assert!(!c.nodes().contains(&leaving));
        }
    });
}

#[test]
fn bad_membership_changes_are_refused_and_change_nothing() {
    let Some((_s, urls)) = servers(2) else { return };
    run(Duration::from_secs(30), async move {
        let c = DistCache::builder()
            .nodes(urls.clone())
            .replicas(2)
            .build()
            .unwrap();
        assert!(matches!(
            c.add_node(&urls[0], false).await,
            Err(BuildError::DuplicateNode { .. })
        ));
        assert!(matches!(
            c.remove_node("redis://127.0.0.1:1/", false).await,
            Err(BuildError::UnknownNode { .. })
        ));
        assert!(matches!(
            c.remove_node(&urls[0], false).await,
            Err(BuildError::TooLarge { .. })
        ));
        assert!(matches!(
            c.add_node("nonsense", false).await,
            Err(BuildError::Address { .. })
        ));
        assert_eq!(c.nodes().len(), 2);
        let single = DistCache::builder().node(urls[0].clone()).build().unwrap();
        assert!(matches!(
            single.remove_node(&urls[0], false).await,
            Err(BuildError::NoNodes)
        ));
        c.set("still", "works").await.unwrap();
        assert_eq!(
            c.get("still").await.unwrap().as_deref(),
            Some(&b"works"[..])
        );
    });
}
