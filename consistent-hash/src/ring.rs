//! The hash ring with virtual nodes, replicas and bounded loads.

use std::hash::Hash;

use crate::error::BuildError;
use crate::hash::{hash_key, stable_hash};
use crate::locator::NodeLocator;
use crate::points::SortedPoints;

/// Virtual nodes per unit of weight when none is given: enough for a
/// peak-to-mean load near 1.25 at 100 nodes, as in ketama's 160.
pub const DEFAULT_VNODES: u32 = 160;

/// The most points (virtual nodes of all nodes together) a ring holds:
/// 2^24, for example 104,857 units of weight at [`DEFAULT_VNODES`]. A point
/// and its owner take 12 bytes (192 MiB at the maximum), and adding a node
/// briefly takes 24 bytes more per new point, so the bound keeps both the
/// ring and every change to it within a few hundred MiB. It is checked, in
/// `u64`, before anything is allocated.
pub const MAX_POINTS: u64 = 1 << 24;

/// The ring position of virtual node `i` of a node whose pinned hash is
/// `node_hash`: XXH64 (seed 0) of the 16 bytes `node_hash` (little-endian)
/// followed by `i` as a little-endian `u64`.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::{stable_hash, vnode_point};
/// let mut bytes = 7u64.to_le_bytes().to_vec();
/// bytes.extend_from_slice(&3u64.to_le_bytes());
/// assert_eq!(vnode_point(7, 3), stable_hash(&bytes));
/// ```
#[must_use]
pub fn vnode_point(node_hash: u64, i: u32) -> u64 {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&node_hash.to_le_bytes());
    b[8..].copy_from_slice(&u64::from(i).to_le_bytes());
    stable_hash(&b)
}

/// A consistent-hash ring: each node owns `vnodes x weight` points on a
/// 64-bit circle, and a key belongs to the owner of the first point at or
/// after its hash (wrapping).
///
/// Points live in one sorted `u64` array searched by binary search inside a
/// radix index. Adding a node merges its points in; removing one filters its
/// points out; neither rehashes the other nodes. The placement depends only
/// on the node set and weights, never on the order of insertion.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::HashRing;
///
/// let mut ring = HashRing::with_vnodes(100).unwrap();
/// ring.add("cache-a").unwrap();
/// ring.add_weighted("cache-b", 2).unwrap();
/// let owner = *ring.get("user:42").unwrap();
/// let backups = ring.replicas("user:42", 2);
/// assert_eq!(*backups[0], owner);
/// assert_ne!(backups[0], backups[1]);
/// ```
#[derive(Clone, Debug)]
pub struct HashRing<N> {
    vnodes: u32,
    nodes: Vec<N>,
    node_hashes: Vec<u64>,
    weights: Vec<u32>,
    ring: SortedPoints,
}

impl<N> Default for HashRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N> HashRing<N> {
    /// An empty ring with [`DEFAULT_VNODES`] virtual nodes per unit of weight.
    #[must_use]
    pub fn new() -> Self {
        HashRing {
            vnodes: DEFAULT_VNODES,
            nodes: Vec::new(),
            node_hashes: Vec::new(),
            weights: Vec::new(),
            ring: SortedPoints::default(),
        }
    }

    /// An empty ring with `vnodes` virtual nodes per unit of weight.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] when `vnodes` is 0; [`BuildError::TooLarge`]
    /// when it exceeds [`MAX_POINTS`] (no node would fit).
    pub fn with_vnodes(vnodes: u32) -> Result<Self, BuildError> {
        if vnodes == 0 {
            return Err(BuildError::Zero { setting: "vnodes" });
        }
        if u64::from(vnodes) > MAX_POINTS {
            return Err(BuildError::TooLarge {
                setting: "vnodes",
                max: MAX_POINTS,
            });
        }
        Ok(HashRing {
            vnodes,
            ..Self::new()
        })
    }

    /// Virtual nodes per unit of weight.
    #[must_use]
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The number of points on the ring (virtual nodes of all nodes).
    #[must_use]
    pub fn points(&self) -> usize {
        self.ring.len()
    }

    /// The weight of the node at `index` in [`NodeLocator::nodes`].
    #[must_use]
    pub fn weight_at(&self, index: usize) -> Option<u32> {
        self.weights.get(index).copied()
    }

    /// Heap bytes held by the ring (points, owners, radix index and the
    /// per-node tables; not what the nodes themselves own).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
            + self.nodes.capacity() * std::mem::size_of::<N>()
            + self.node_hashes.capacity() * 8
            + self.weights.capacity() * 4
    }

    /// The index of the node for a key hash; `None` on an empty ring.
    #[inline]
    #[must_use]
    pub fn locate_index(&self, hash: u64) -> Option<usize> {
        if self.ring.len() == 0 {
            return None;
        }
        Some(self.ring.owners[self.ring.successor(hash)] as usize)
    }

    /// The node for a key hash; `None` on an empty ring.
    #[inline]
    #[must_use]
    pub fn locate(&self, hash: u64) -> Option<&N> {
        self.locate_index(hash).map(|i| &self.nodes[i])
    }

    /// Up to `n` distinct physical nodes for a key hash, in ring order
    /// starting with the key's owner (fewer when the ring has fewer nodes).
    #[must_use]
    pub fn replicas_hash(&self, hash: u64, n: usize) -> Vec<&N> {
        let want = n.min(self.nodes.len());
        let mut out: Vec<u32> = Vec::with_capacity(want);
        if want == 0 {
            return Vec::new();
        }
        let len = self.ring.len();
        let mut pos = self.ring.successor(hash);
        for _ in 0..len {
            let o = self.ring.owners[pos];
            if !out.contains(&o) {
                out.push(o);
                if out.len() == want {
                    break;
                }
            }
            pos += 1;
            if pos == len {
                pos = 0;
            }
        }
        out.into_iter().map(|i| &self.nodes[i as usize]).collect()
    }

    /// The first node, walking clockwise from the key's position, for which
    /// `has_room(index)` holds: the lookup of consistent hashing with bounded
    /// loads when `has_room` compares a node's load with its cap. Each node
    /// is asked at most once. `None` when the ring is empty or no node has
    /// room.
    pub fn locate_bounded(
        &self,
        hash: u64,
        mut has_room: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let len = self.ring.len();
        if len == 0 {
            return None;
        }
        let mut pos = self.ring.successor(hash);
        let first = self.ring.owners[pos] as usize;
        if has_room(first) {
            return Some(first);
        }
        let mut asked = vec![false; self.nodes.len()];
        asked[first] = true;
        let mut left = self.nodes.len() - 1;
        if left == 0 {
            return None;
        }
        for _ in 0..len {
            let o = self.ring.owners[pos] as usize;
            if !asked[o] {
                if has_room(o) {
                    return Some(o);
                }
                asked[o] = true;
                left -= 1;
                if left == 0 {
                    return None;
                }
            }
            pos += 1;
            if pos == len {
                pos = 0;
            }
        }
        None
    }

    /// The node for `key`; `None` on an empty ring.
    #[inline]
    pub fn get<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate(hash_key(key))
    }

    /// Up to `n` distinct physical nodes for `key` in ring order, the owner
    /// first (the usual replica placement).
    #[must_use]
    pub fn replicas<K: Hash + ?Sized>(&self, key: &K, n: usize) -> Vec<&N> {
        self.replicas_hash(hash_key(key), n)
    }

    /// The total weight of all nodes.
    #[must_use]
    pub fn total_weight(&self) -> u64 {
        self.weights.iter().map(|&w| u64::from(w)).sum()
    }
}

impl<N: Hash + Eq> HashRing<N> {
    /// Adds a node of weight 1.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when the node is present;
    /// [`BuildError::TooLarge`] when the ring would hold more than
    /// [`MAX_POINTS`] points.
    pub fn add(&mut self, node: N) -> Result<(), BuildError> {
        self.add_weighted(node, 1)
    }

    /// Adds a node with `weight x vnodes` points. The other nodes' points do
    /// not move, so keys move only to the new node.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for weight 0; [`BuildError::DuplicateNode`] when
    /// the node (or one with the same pinned hash) is present;
    /// [`BuildError::TooLarge`] when `vnodes x weight` plus the points
    /// already on the ring exceeds [`MAX_POINTS`] (the ring is unchanged).
    pub fn add_weighted(&mut self, node: N, weight: u32) -> Result<(), BuildError> {
        if weight == 0 {
            return Err(BuildError::Zero { setting: "weight" });
        }
        let h = hash_key(&node);
        if self.node_hashes.contains(&h) || self.nodes.contains(&node) {
            return Err(BuildError::DuplicateNode);
        }
        // A product of two u32s fits in u64; the sum is checked.
        let count = u64::from(weight) * u64::from(self.vnodes);
        let total = count.checked_add(self.ring.len() as u64);
        if total.map_or(true, |t| t > MAX_POINTS) {
            return Err(BuildError::TooLarge {
                setting: "points",
                max: MAX_POINTS,
            });
        }
        let idx = self.nodes.len() as u32;
        let new: Vec<(u64, u64, u32)> = (0..count as u32)
            .map(|i| (vnode_point(h, i), h, idx))
            .collect();
        self.nodes.push(node);
        self.node_hashes.push(h);
        self.weights.push(weight);
        let hashes = &self.node_hashes;
        self.ring.merge(new, |o| hashes[o as usize]);
        Ok(())
    }

    /// Removes a node; returns whether it was present. Only the keys it held
    /// move (each to the next point clockwise). The last node in
    /// [`NodeLocator::nodes`] takes the removed node's index.
    pub fn remove(&mut self, node: &N) -> bool {
        let Some(i) = self.nodes.iter().position(|n| n == node) else {
            return false;
        };
        let last = self.nodes.len() - 1;
        self.nodes.swap_remove(i);
        self.node_hashes.swap_remove(i);
        self.weights.swap_remove(i);
        self.ring.remove_owner(i as u32, last as u32);
        true
    }
}

impl<N> NodeLocator<N> for HashRing<N> {
    #[inline]
    fn locate_index(&self, hash: u64) -> Option<usize> {
        HashRing::locate_index(self, hash)
    }

    fn nodes(&self) -> &[N] {
        &self.nodes
    }
}

/// Consistent hashing with bounded loads (Mirrokni, Thorup and
/// Zadimoghaddam, 2016) over a [`HashRing`]: it counts the keys placed on
/// each node, and a placement that would push a node past its cap walks on
/// clockwise to the next node with room.
///
/// With `m` keys placed (counting the one being placed) and total weight
/// `W`, the cap of a node of weight `w` is `ceil(c * m * w / W)`; with equal
/// weights that is `ceil(c * average)`. The cap holds at every placement;
/// [`BoundedLoads::release`] lowers the average, so after releases a node
/// may stand above the new cap until its keys are placed again (the paper
/// moves them; here the caller decides).
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::{BoundedLoads, HashRing};
///
/// let mut ring = HashRing::new();
/// for n in ["a", "b", "c"] {
///     ring.add(n).unwrap();
/// }
/// let mut bl = BoundedLoads::new(ring, 1.25).unwrap();
/// for k in 0..300u64 {
///     bl.assign(&k).unwrap();
/// }
/// assert!(bl.loads().iter().all(|&l| l <= 125));
/// ```
#[derive(Clone, Debug)]
pub struct BoundedLoads<N> {
    ring: HashRing<N>,
    c: f64,
    loads: Vec<u64>,
    total: u64,
}

impl<N> BoundedLoads<N> {
    /// Wraps a ring with load factor `c` (for example 1.25); all loads 0.
    /// A factor so large that no cap is ever reached (`f64::MAX`, say) is
    /// accepted and leaves every key on its ring owner.
    ///
    /// # Errors
    ///
    /// [`BuildError::LoadFactor`] when `c` is below 1 or not finite.
    pub fn new(ring: HashRing<N>, c: f64) -> Result<Self, BuildError> {
        if !c.is_finite() || c < 1.0 {
            return Err(BuildError::LoadFactor { c });
        }
        let loads = vec![0; ring.nodes.len()];
        Ok(BoundedLoads {
            ring,
            c,
            loads,
            total: 0,
        })
    }

    /// The ring.
    #[must_use]
    pub fn ring(&self) -> &HashRing<N> {
        &self.ring
    }

    /// The load factor.
    #[must_use]
    pub fn factor(&self) -> f64 {
        self.c
    }

    /// Keys currently placed on each node, indexed as the ring's nodes.
    #[must_use]
    pub fn loads(&self) -> &[u64] {
        &self.loads
    }

    /// Keys currently placed.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The cap of the node at `index` when the total is `m` keys
    /// (saturating at `u64::MAX`).
    ///
    /// # Panics
    ///
    /// If `index` is not a node's index (`index >= ring().len()`).
    #[must_use]
    pub fn cap(&self, index: usize, m: u64) -> u64 {
        let w = f64::from(self.ring.weights[index]);
        let total_w = self.ring.total_weight() as f64;
        (self.c * m as f64 * w / total_w).ceil() as u64
    }

    /// Places a key by its hash: the index of the node it goes to, whose
    /// load is then counted one higher. `None` only when the ring is empty.
    pub fn assign_hash(&mut self, hash: u64) -> Option<usize> {
        let m = self.total + 1;
        let total_w = self.ring.total_weight() as f64;
        let weights = &self.ring.weights;
        let loads = &self.loads;
        let c = self.c;
        let i = self.ring.locate_bounded(hash, |i| {
            let cap = (c * m as f64 * f64::from(weights[i]) / total_w).ceil() as u64;
            loads[i] < cap
        })?;
        self.loads[i] += 1;
        self.total += 1;
        Some(i)
    }

    /// Places `key`; see [`BoundedLoads::assign_hash`].
    pub fn assign<K: Hash + ?Sized>(&mut self, key: &K) -> Option<&N> {
        let i = self.assign_hash(hash_key(key))?;
        Some(&self.ring.nodes[i])
    }

    /// Forgets one key placed on the node at `index`; returns false when
    /// that node holds none (or the index is out of range).
    pub fn release(&mut self, index: usize) -> bool {
        match self.loads.get_mut(index) {
            Some(l) if *l > 0 => {
                *l -= 1;
                self.total -= 1;
                true
            }
            _ => false,
        }
    }
}
