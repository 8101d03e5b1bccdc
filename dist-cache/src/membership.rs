//! Adding and removing nodes at run time, with an optional warm-up that
//! copies the moved keys from their old owners.
//!
//! The new placement is published first, so writes go to the new owners
//! at once; the warm-up then scans the old owners (`SCAN MATCH <prefix>*`)
//! and copies each key whose owner set gained a node with `SET ... PX
//! <remaining TTL> NX`, which never overwrites a value written since the
//! change. Until it ends, deletes also reach the previous owners, so a
//! deleted key is not copied back. A delete that lands between the copy's
//! read and its write can still be undone (the copy then lives until its
//! TTL); reads in the window miss where the copy has not arrived yet.

use bytes::Bytes;

use crate::builder::{build_topology, connect_node};
use crate::client::{key_hash, DistCache, Topology};
use crate::error::BuildError;
use crate::node::Node;
use crate::sync::Arc;

/// One key to copy: Redis key, value, remaining TTL in milliseconds.
type Copy<'a> = (&'a [u8], &'a Bytes, u64);

/// What a warm-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmUp {
    /// Keys scanned on the old owners.
    pub scanned: u64,
    /// Keys whose owners changed (copies attempted).
    pub moved: u64,
    /// Copies written (absent on the new owner before).
    pub copied: u64,
    /// Node operations that failed during the warm-up (the keys concerned
    /// simply miss).
    pub failures: u64,
}

impl DistCache {
    /// Adds the node at `url`. Only the keys the placement moves change
    /// node (for the ring, jump, Maglev and rendezvous about 1/(N+1) of
    /// them, all to the new node). With `warm_up`, the moved keys are
    /// copied from their old owners before this returns.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when present; [`BuildError::Address`]
    /// for a bad URL; [`BuildError::Placement`] as the algorithm refuses.
    /// The cache is unchanged after an error.
    pub async fn add_node(&self, url: &str, warm_up: bool) -> Result<WarmUp, BuildError> {
        let _guard = self.inner.membership.lock().await;
        let old = self.topology();
        if old.nodes.iter().any(|n| n.name == url) {
            return Err(BuildError::DuplicateNode {
                node: url.to_owned(),
            });
        }
        let node = Arc::new(connect_node(
            url,
            &self.inner.cfg,
            self.inner.near.as_ref(),
            &self.inner.rt,
        )?);
        let mut nodes = old.nodes.clone();
        nodes.push(node);
        self.change(old, nodes, warm_up).await
    }

    /// Removes the node at `url`. Only its keys move. With `warm_up`,
    /// they are copied from it (if it still answers) to their new owners
    /// before this returns.
    ///
    /// # Errors
    ///
    /// [`BuildError::UnknownNode`] when absent; [`BuildError::NoNodes`]
    /// for the last node; [`BuildError::TooLarge`] when fewer nodes than
    /// replicas would remain. The cache is unchanged after an error.
    pub async fn remove_node(&self, url: &str, warm_up: bool) -> Result<WarmUp, BuildError> {
        let _guard = self.inner.membership.lock().await;
        let old = self.topology();
        if !old.nodes.iter().any(|n| n.name == url) {
            return Err(BuildError::UnknownNode {
                node: url.to_owned(),
            });
        }
        let left = old.nodes.len() - 1;
        if left == 0 {
            return Err(BuildError::NoNodes);
        }
        if left < self.inner.cfg.replicas {
            return Err(BuildError::TooLarge {
                setting: "replicas",
                max: left as u64,
            });
        }
        let nodes = old
            .nodes
            .iter()
            .filter(|n| n.name != url)
            .cloned()
            .collect();
        self.change(old, nodes, warm_up).await
    }

    async fn change(
        &self,
        old: Arc<Topology>,
        nodes: Vec<Arc<Node>>,
        warm_up: bool,
    ) -> Result<WarmUp, BuildError> {
        let placement = self.inner.cfg.placement;
        let previous = warm_up.then(|| Arc::clone(&old));
        let new = Arc::new(build_topology(placement, nodes.clone(), previous)?);
        *self.inner.topology.write() = Arc::clone(&new);
        let mut report = WarmUp::default();
        if warm_up {
            for source in &old.nodes {
                self.copy_moved(&old, &new, source, &mut report).await;
            }
            let settled = build_topology(placement, nodes, None)?;
            *self.inner.topology.write() = Arc::new(settled);
        }
        Ok(report)
    }

    /// Copies the keys `source` owned (first of their old owners) to the
    /// owners `new` added for them.
    async fn copy_moved(
        &self,
        old: &Topology,
        new: &Topology,
        source: &Arc<Node>,
        report: &mut WarmUp,
    ) {
        let r = self.inner.cfg.replicas;
        let prefix = self.inner.cfg.prefix.as_bytes();
        let mut pattern = prefix.to_vec();
        pattern.push(b'*');
        let mut cursor = 0;
        loop {
            let step = source.scan(cursor, &pattern).await;
            self.record(source, &step);
            let Ok((next, keys)) = step else {
                report.failures += 1;
                return;
            };
            report.scanned += keys.len() as u64;
            // (redis key, new owners) of the keys this node must hand over.
            let mut moved: Vec<(Vec<u8>, Vec<Arc<Node>>)> = Vec::new();
            for rkey in keys {
                let Some(key) = rkey
                    .strip_prefix(prefix)
                    .and_then(|k| std::str::from_utf8(k).ok())
                else {
                    continue;
                };
                let hash = key_hash(key);
                let before: Vec<&str> = old
                    .preference(hash, r)
                    .into_iter()
                    .map(|i| old.nodes[i].name.as_str())
                    .collect();
                if before.first() != Some(&source.name.as_str()) {
                    continue;
                }
                let targets: Vec<Arc<Node>> = new
                    .preference(hash, r)
                    .into_iter()
                    .map(|i| &new.nodes[i])
                    .filter(|n| !before.contains(&n.name.as_str()))
                    .cloned()
                    .collect();
                if !targets.is_empty() {
                    moved.push((rkey, targets));
                }
            }
            if !moved.is_empty() {
                report.moved += moved.len() as u64;
                let rkeys: Vec<Vec<u8>> = moved.iter().map(|(k, _)| k.clone()).collect();
                let values = source.dump_values(&rkeys, self.ttl_ms()).await;
                self.record(source, &values);
                match values {
                    Ok(values) => {
                        // One pipeline per target node.
                        let mut per_target: Vec<(&Arc<Node>, Vec<Copy<'_>>)> = Vec::new();
                        for ((rkey, targets), v) in moved.iter().zip(&values) {
                            let Some((value, ttl_ms)) = v else { continue };
                            for t in targets {
                                let entry = (rkey.as_slice(), value, *ttl_ms);
                                match per_target.iter_mut().find(|(n, _)| Arc::ptr_eq(n, t)) {
                                    Some((_, list)) => list.push(entry),
                                    None => per_target.push((t, vec![entry])),
                                }
                            }
                        }
                        for (t, entries) in per_target {
                            let w = t.set_many_nx(&entries).await;
                            self.record(t, &w);
                            match w {
                                Ok(stored) => {
                                    report.copied += stored.iter().filter(|&&b| b).count() as u64;
                                }
                                Err(_) => report.failures += 1,
                            }
                        }
                    }
                    Err(_) => report.failures += 1,
                }
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}
