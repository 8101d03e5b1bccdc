//! Multi-probe consistent hashing (Appleton and O'Reilly, 2015).

use std::hash::Hash;

use crate::error::BuildError;
use crate::hash::{fmix64, hash_key};
use crate::locator::NodeLocator;
use crate::points::SortedPoints;

/// Probes per lookup when none is given: the paper's 21, for a
/// peak-to-mean load of about 1.05.
pub const DEFAULT_PROBES: u32 = 21;

/// The most probes per lookup accepted: 1024. Each probe is one search of
/// the ring, and past a few dozen probes the balance gains are below the
/// noise (the paper's peak-to-mean is `1 + 1/(k - 1)`), so a larger count
/// only makes every lookup slower.
pub const MAX_PROBES: u32 = 1024;

/// The `i`-th probe position of a key hash:
/// `fmix64(key_hash + (i + 1) * 0x9E3779B97F4A7C15)` (wrapping).
#[inline]
fn probe_point(key_hash: u64, i: u32) -> u64 {
    fmix64(key_hash.wrapping_add(u64::from(i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// Multi-probe consistent hashing, Appleton and O'Reilly, "Multi-Probe
/// Consistent Hashing" (2015): each node is one point on the ring (its
/// pinned hash), and a key is hashed `k` times; the key goes to the node
/// whose point is the closest clockwise successor of any of its probes.
///
/// One point per node (memory O(nodes), unlike a ring's hundreds of virtual
/// nodes) with the balance of a ring with many virtual nodes: the paper
/// reports a peak-to-mean ratio of 1.05 with 21 probes. Removing a node moves
/// only its keys; adding one moves keys only to it. Ties in distance go to
/// the earlier probe.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::MultiProbe;
///
/// let mut mp = MultiProbe::new();
/// mp.add("a").unwrap();
/// mp.add("b").unwrap();
/// assert!(mp.get("user:3").is_some());
/// ```
#[derive(Clone, Debug)]
pub struct MultiProbe<N> {
    probes: u32,
    nodes: Vec<N>,
    node_hashes: Vec<u64>,
    ring: SortedPoints,
}

impl<N> Default for MultiProbe<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N> MultiProbe<N> {
    /// No nodes, [`DEFAULT_PROBES`] probes.
    #[must_use]
    pub fn new() -> Self {
        MultiProbe {
            probes: DEFAULT_PROBES,
            nodes: Vec::new(),
            node_hashes: Vec::new(),
            ring: SortedPoints::default(),
        }
    }

    /// No nodes, `probes` probes per lookup.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] when `probes` is 0; [`BuildError::TooLarge`]
    /// above [`MAX_PROBES`].
    pub fn with_probes(probes: u32) -> Result<Self, BuildError> {
        if probes == 0 {
            return Err(BuildError::Zero { setting: "probes" });
        }
        if probes > MAX_PROBES {
            return Err(BuildError::TooLarge {
                setting: "probes",
                max: u64::from(MAX_PROBES),
            });
        }
        Ok(MultiProbe {
            probes,
            ..Self::new()
        })
    }

    /// Probes per lookup.
    #[must_use]
    pub fn probes(&self) -> u32 {
        self.probes
    }

    /// Heap bytes held.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
            + self.nodes.capacity() * std::mem::size_of::<N>()
            + self.node_hashes.capacity() * 8
    }

    /// The index of the node for a key hash; `None` when empty.
    #[must_use]
    pub fn locate_index(&self, hash: u64) -> Option<usize> {
        if self.ring.len() == 0 {
            return None;
        }
        let mut best_pos = 0;
        let mut best_dist = u64::MAX;
        for i in 0..self.probes {
            let p = probe_point(hash, i);
            let pos = self.ring.successor(p);
            let d = self.ring.points[pos].wrapping_sub(p);
            if d < best_dist {
                best_dist = d;
                best_pos = pos;
            }
        }
        Some(self.ring.owners[best_pos] as usize)
    }

    /// The node for `key`; `None` when empty.
    pub fn get<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate_index(hash_key(key)).map(|i| &self.nodes[i])
    }
}

impl<N: Hash + Eq> MultiProbe<N> {
    /// Adds a node (one point at its pinned hash).
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when the node or its hash is present;
    /// [`BuildError::TooLarge`] past `u32::MAX` nodes.
    pub fn add(&mut self, node: N) -> Result<(), BuildError> {
        let h = hash_key(&node);
        if self.node_hashes.contains(&h) || self.nodes.contains(&node) {
            return Err(BuildError::DuplicateNode);
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(BuildError::TooLarge {
                setting: "nodes",
                max: u64::from(u32::MAX),
            });
        }
        let idx = self.nodes.len() as u32;
        self.nodes.push(node);
        self.node_hashes.push(h);
        let hashes = &self.node_hashes;
        self.ring.merge(vec![(h, h, idx)], |o| hashes[o as usize]);
        Ok(())
    }

    /// Removes a node; returns whether it was present. The last node takes
    /// its index.
    pub fn remove(&mut self, node: &N) -> bool {
        let Some(i) = self.nodes.iter().position(|n| n == node) else {
            return false;
        };
        let last = self.nodes.len() - 1;
        self.nodes.swap_remove(i);
        self.node_hashes.swap_remove(i);
        self.ring.remove_owner(i as u32, last as u32);
        true
    }
}

impl<N> NodeLocator<N> for MultiProbe<N> {
    fn locate_index(&self, hash: u64) -> Option<usize> {
        MultiProbe::locate_index(self, hash)
    }

    fn nodes(&self) -> &[N] {
        &self.nodes
    }
}
