//! Rendezvous (highest random weight) hashing with weights.

use std::cmp::Ordering;
use std::hash::Hash;

use crate::error::BuildError;
use crate::hash::{fmix64, hash_key};
use crate::locator::NodeLocator;

/// The per-pair hash of rendezvous hashing: `fmix64(key_hash ^ node_hash)`,
/// where `node_hash` is the node's [`hash_key`](crate::hash_key).
#[must_use]
#[inline]
pub fn pair_hash(key_hash: u64, node_hash: u64) -> u64 {
    fmix64(key_hash ^ node_hash)
}

/// fmix64's first step, `x ^ (x >> 33)`, is linear over XOR, so it is
/// applied once per key and once per node (stored) instead of per pair.
#[inline]
fn pre(x: u64) -> u64 {
    x ^ (x >> 33)
}

/// The rest of fmix64: `pair_from_pre(pre(k), pre(n)) == pair_hash(k, n)`.
#[inline]
fn pair_from_pre(key_pre: u64, node_pre: u64) -> u64 {
    let mut x = (key_pre ^ node_pre).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The weighted score of the logarithmic method (Schindelhauer and
/// Schomaker, "Weighted Distributed Hash Tables", 2005; used by Resch's
/// weighted rendezvous): with `u = ((h >> 11) + 0.5) / 2^53` uniform in
/// `(0, 1)`, the score is `-weight / ln(u)`. The node of highest score wins;
/// each node wins with probability `weight / total weight`.
#[inline]
fn weighted_score(pair_hash: u64, weight: u32) -> f64 {
    let u = ((pair_hash >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    -f64::from(weight) / u.ln()
}

/// Rendezvous (highest random weight) hashing, Thaler and Ravishankar
/// (1998): every node scores every key and the highest score wins, so
/// removing a node moves only its keys, and adding one moves keys only to
/// it. Lookups cost O(nodes), with no table at all.
///
/// With all weights equal the winner is the node of largest
/// [`pair_hash`] (the score is increasing in it, so no logarithm is taken);
/// otherwise the largest weighted score `-weight / ln(u)` with
/// `u = ((pair_hash >> 11) + 0.5) / 2^53` (the logarithmic method; each
/// node wins `weight / total weight` of the keys), ties broken by the
/// larger `pair_hash`. `ln` is taken from the platform's libm; it is accurate to
/// well under an ulp everywhere Rust runs, so a different winner needs two
/// scores within an ulp of each other.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::Rendezvous;
///
/// let mut r = Rendezvous::new();
/// r.add("a").unwrap();
/// r.add_weighted("b", 3).unwrap();
/// let owner = *r.get("user:9").unwrap();
/// assert_eq!(*r.top("user:9", 2)[0], owner);
/// ```
#[derive(Clone, Debug)]
pub struct Rendezvous<N> {
    nodes: Vec<N>,
    /// `pre(hash_key(node))` for each node (a bijection of the node hash).
    node_pre: Vec<u64>,
    weights: Vec<u32>,
    uniform: bool,
}

impl<N> Default for Rendezvous<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<N> Rendezvous<N> {
    /// No nodes.
    #[must_use]
    pub fn new() -> Self {
        Rendezvous {
            nodes: Vec::new(),
            node_pre: Vec::new(),
            weights: Vec::new(),
            uniform: true,
        }
    }

    fn refresh_uniform(&mut self) {
        self.uniform = self.weights.windows(2).all(|w| w[0] == w[1]);
    }

    /// The weight of the node at `index`.
    #[must_use]
    pub fn weight_at(&self, index: usize) -> Option<u32> {
        self.weights.get(index).copied()
    }

    /// Heap bytes held (nodes, node hashes, weights).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<N>()
            + self.node_pre.capacity() * 8
            + self.weights.capacity() * 4
    }

    #[inline]
    fn better(&self, a: usize, ha: u64, b: usize, hb: u64) -> bool {
        if self.uniform {
            return ha > hb;
        }
        let sa = weighted_score(ha, self.weights[a]);
        let sb = weighted_score(hb, self.weights[b]);
        match sa.partial_cmp(&sb) {
            Some(Ordering::Greater) => true,
            Some(Ordering::Less) => false,
            _ => ha > hb,
        }
    }

    /// The index of the winning node for a key hash; `None` when empty.
    #[inline]
    #[must_use]
    pub fn locate_index(&self, hash: u64) -> Option<usize> {
        if self.nodes.is_empty() {
            return None;
        }
        let kp = pre(hash);
        if self.uniform {
            let mut best = 0;
            let mut best_h = pair_from_pre(kp, self.node_pre[0]);
            for (i, &np) in self.node_pre.iter().enumerate().skip(1) {
                let h = pair_from_pre(kp, np);
                // Branch-free select: the winner changes unpredictably.
                best = if h > best_h { i } else { best };
                best_h = best_h.max(h);
            }
            return Some(best);
        }
        let mut best = 0;
        let mut best_h = pair_from_pre(kp, self.node_pre[0]);
        let mut best_s = weighted_score(best_h, self.weights[0]);
        for i in 1..self.nodes.len() {
            let h = pair_from_pre(kp, self.node_pre[i]);
            let s = weighted_score(h, self.weights[i]);
            if s > best_s || (s == best_s && h > best_h) {
                best = i;
                best_h = h;
                best_s = s;
            }
        }
        Some(best)
    }

    /// The node for `key`; `None` when empty.
    #[inline]
    pub fn get<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate_index(hash_key(key)).map(|i| &self.nodes[i])
    }

    /// The `n` highest-scoring distinct nodes for a key hash, best first
    /// (fewer when there are fewer nodes). The first is the owner; the rest
    /// are where the key goes if the nodes before fail.
    #[must_use]
    pub fn top_hash(&self, hash: u64, n: usize) -> Vec<&N> {
        let n = n.min(self.nodes.len());
        if n == 0 {
            return Vec::new();
        }
        let kp = pre(hash);
        let mut all: Vec<(usize, u64)> = self
            .node_pre
            .iter()
            .enumerate()
            .map(|(i, &np)| (i, pair_from_pre(kp, np)))
            .collect();
        let cmp = |a: &(usize, u64), b: &(usize, u64)| {
            if self.better(a.0, a.1, b.0, b.1) {
                Ordering::Less
            } else if self.better(b.0, b.1, a.0, a.1) {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        };
        if n < all.len() {
            all.select_nth_unstable_by(n - 1, cmp);
            all.truncate(n);
        }
        all.sort_unstable_by(cmp);
        all.into_iter().map(|(i, _)| &self.nodes[i]).collect()
    }

    /// The `n` best nodes for `key`; see [`Rendezvous::top_hash`].
    #[must_use]
    pub fn top<K: Hash + ?Sized>(&self, key: &K, n: usize) -> Vec<&N> {
        self.top_hash(hash_key(key), n)
    }
}

impl<N: Hash + Eq> Rendezvous<N> {
    /// Adds a node of weight 1.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when present.
    pub fn add(&mut self, node: N) -> Result<(), BuildError> {
        self.add_weighted(node, 1)
    }

    /// Adds a node that wins `weight / total weight` of the keys.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for weight 0; [`BuildError::DuplicateNode`] when
    /// the node (or one with the same pinned hash) is present.
    pub fn add_weighted(&mut self, node: N, weight: u32) -> Result<(), BuildError> {
        if weight == 0 {
            return Err(BuildError::Zero { setting: "weight" });
        }
        let p = pre(hash_key(&node));
        if self.node_pre.contains(&p) || self.nodes.contains(&node) {
            return Err(BuildError::DuplicateNode);
        }
        self.nodes.push(node);
        self.node_pre.push(p);
        self.weights.push(weight);
        self.refresh_uniform();
        Ok(())
    }

    /// Removes a node; returns whether it was present. The last node takes
    /// its index.
    pub fn remove(&mut self, node: &N) -> bool {
        let Some(i) = self.nodes.iter().position(|n| n == node) else {
            return false;
        };
        self.nodes.swap_remove(i);
        self.node_pre.swap_remove(i);
        self.weights.swap_remove(i);
        self.refresh_uniform();
        true
    }
}

impl<N> NodeLocator<N> for Rendezvous<N> {
    #[inline]
    fn locate_index(&self, hash: u64) -> Option<usize> {
        Rendezvous::locate_index(self, hash)
    }

    fn nodes(&self) -> &[N] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_fmix_equals_pair_hash() {
        let mut x = 1u64;
        for _ in 0..10_000 {
            x = fmix64(x.wrapping_add(0x9E37_79B9_7F4A_7C15));
            let y = fmix64(x ^ 0x1234);
            assert_eq!(pair_from_pre(pre(x), pre(y)), pair_hash(x, y));
        }
    }
}
