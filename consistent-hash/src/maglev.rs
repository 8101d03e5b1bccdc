//! Maglev hashing (Eisenbud et al., NSDI 2016).

use std::hash::Hash;

use crate::error::BuildError;
use crate::hash::{fast_range, hash_key, xxh64};
use crate::locator::NodeLocator;

/// The default lookup-table size, the prime the Maglev paper uses.
pub const DEFAULT_TABLE_SIZE: u64 = 65_537;

/// Table entries required per node: the paper keeps `M` at least 100 times
/// the number of backends so that imbalance stays within about 1%.
pub const MIN_ENTRIES_PER_NODE: u64 = 100;

/// The largest table size accepted: 2^24 entries (64 MiB of `u32`; the
/// largest prime below it, 16,777,213, is the largest usable size). It also
/// bounds the node count, at 100 entries per node, to 167,772. Sizes are
/// compared with it before anything else, so a huge size is refused at
/// once and never allocated.
pub const MAX_TABLE_SIZE: u64 = 1 << 24;

/// Whether `n` is prime (deterministic trial division; table sizes are at
/// most [`MAX_TABLE_SIZE`], where that takes at most 2^11 divisions).
pub(crate) fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n % 2 == 0 {
        return n == 2;
    }
    let mut d = 3u64;
    while d.saturating_mul(d) <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// The `(offset, skip)` of a node's permutation for table size `m`:
/// with `h = hash_key(node)` and `b` its 8 little-endian bytes,
/// `offset = xxh64(b, seed 1) mod m` and `skip = xxh64(b, seed 2) mod (m - 1) + 1`.
/// The node's preference list is `(offset + j * skip) mod m` for `j = 0, 1, ...`.
fn permutation_params(node_hash: u64, m: u64) -> (u64, u64) {
    let b = node_hash.to_le_bytes();
    (xxh64(&b, 1) % m, xxh64(&b, 2) % (m - 1) + 1)
}

/// Fills a lookup table of size `m` by the population algorithm of the
/// paper (its Pseudocode 1): nodes take turns, each claiming the next free
/// entry of its own permutation. A node of weight `w` takes `w / max weight`
/// turns per round (with equal weights: one each, exactly the paper).
/// `m` must be at least 1 and `params` non-empty with positive weights.
pub(crate) fn populate(m: u64, params: &[(u64, u64)], weights: &[u32]) -> Vec<u32> {
    const EMPTY: u32 = u32::MAX;
    let m_us = m as usize;
    let mut table = vec![EMPTY; m_us];
    let mut cursor: Vec<u64> = params.iter().map(|&(o, _)| o).collect();
    let mut taken: Vec<u64> = vec![0; params.len()];
    let w_max = u64::from(weights.iter().copied().max().unwrap_or(1));
    let mut filled = 0usize;
    let mut round = 0u64;
    while filled < m_us {
        round += 1;
        for i in 0..params.len() {
            let skip = params[i].1;
            while taken[i] * w_max < round * u64::from(weights[i]) {
                let mut c = cursor[i];
                while table[c as usize] != EMPTY {
                    c += skip;
                    if c >= m {
                        c -= m;
                    }
                }
                table[c as usize] = i as u32;
                c += skip;
                if c >= m {
                    c -= m;
                }
                cursor[i] = c;
                taken[i] += 1;
                filled += 1;
                if filled == m_us {
                    return table;
                }
            }
        }
    }
    table
}

/// Maglev consistent hashing: a lookup table of prime size `M` filled from
/// per-node permutations, so a lookup is one multiply and one array read
/// (`table[(hash * M) >> 64]`), entries are spread within one or two per
/// node of even, and a change of the node set disturbs few entries.
///
/// Nodes take their turns in ascending order of pinned node hash, so the
/// table depends only on the node set and weights, not on their order.
/// Rebuilds after [`Maglev::add`] or [`Maglev::remove`] keep `M`, which is
/// what keeps the disruption small. Weights change how many turns a node
/// takes while filling the table.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::Maglev;
///
/// let mut m = Maglev::new(["a", "b", "c"]).unwrap();
/// assert_eq!(m.table_size(), 65_537);
/// let before = *m.get("user:1").unwrap();
/// m.remove(&"b").unwrap();
/// assert_ne!(*m.get("user:1").unwrap(), "b");
/// # let _ = before;
/// ```
#[derive(Clone, Debug)]
pub struct Maglev<N> {
    nodes: Vec<N>,
    node_hashes: Vec<u64>,
    weights: Vec<u32>,
    m: u64,
    table: Vec<u32>,
}

impl<N> Maglev<N> {
    /// The table size `M`.
    #[must_use]
    pub fn table_size(&self) -> u64 {
        self.m
    }

    /// The lookup table: node indices, `M` entries.
    #[must_use]
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// Heap bytes held (table, nodes, node hashes, weights).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.table.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<N>()
            + self.node_hashes.capacity() * 8
            + self.weights.capacity() * 4
    }

    /// The weight of the node at `index`.
    #[must_use]
    pub fn weight_at(&self, index: usize) -> Option<u32> {
        self.weights.get(index).copied()
    }

    /// The index of the node for a key hash; `None` when empty.
    #[inline]
    #[must_use]
    pub fn locate_index(&self, hash: u64) -> Option<usize> {
        if self.nodes.is_empty() {
            return None;
        }
        Some(self.table[fast_range(hash, self.m) as usize] as usize)
    }

    /// The node for `key`; `None` when empty.
    #[inline]
    pub fn get<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate_index(hash_key(key)).map(|i| &self.nodes[i])
    }

    fn rebuild(&mut self) {
        if self.nodes.is_empty() {
            self.table.clear();
            return;
        }
        // Turns go in ascending order of node hash, so the table depends on
        // the node set only, never on the order nodes were given in.
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_unstable_by_key(|&i| self.node_hashes[i]);
        let params: Vec<(u64, u64)> = order
            .iter()
            .map(|&i| permutation_params(self.node_hashes[i], self.m))
            .collect();
        let weights: Vec<u32> = order.iter().map(|&i| self.weights[i]).collect();
        let mut table = populate(self.m, &params, &weights);
        for e in &mut table {
            *e = order[*e as usize] as u32;
        }
        self.table = table;
    }

    fn check_size(m: u64, nodes: usize) -> Result<(), BuildError> {
        // The bound first: it is one comparison, and it keeps the primality
        // test (trial division) on small numbers.
        if m > MAX_TABLE_SIZE {
            return Err(BuildError::TooLarge {
                setting: "table size",
                max: MAX_TABLE_SIZE,
            });
        }
        if !is_prime(m) {
            return Err(BuildError::NotPrime { size: m });
        }
        let min = MIN_ENTRIES_PER_NODE
            .saturating_mul(nodes as u64)
            .max(MIN_ENTRIES_PER_NODE);
        if m < min {
            return Err(BuildError::TableTooSmall { size: m, min });
        }
        Ok(())
    }
}

impl<N: Hash + Eq> Maglev<N> {
    /// Equal-weight nodes with table size 65537, or the smallest prime that
    /// is at least 100 x nodes when that is larger.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when a node repeats;
    /// [`BuildError::TooLarge`] when that size exceeds [`MAX_TABLE_SIZE`]
    /// (more than 167,772 nodes).
    pub fn new<I: IntoIterator<Item = N>>(nodes: I) -> Result<Self, BuildError> {
        Self::new_weighted(nodes.into_iter().map(|n| (n, 1)))
    }

    /// Weighted nodes with the default table size (see [`Maglev::new`]).
    ///
    /// # Errors
    ///
    /// As [`Maglev::new`], and [`BuildError::Zero`] for a weight of 0.
    pub fn new_weighted<I: IntoIterator<Item = (N, u32)>>(nodes: I) -> Result<Self, BuildError> {
        let list: Vec<(N, u32)> = nodes.into_iter().collect();
        let mut m = DEFAULT_TABLE_SIZE.max(MIN_ENTRIES_PER_NODE.saturating_mul(list.len() as u64));
        while m <= MAX_TABLE_SIZE && !is_prime(m) {
            m += 1;
        }
        // Past the maximum, `build` reports `TooLarge` before any search.
        Self::build(list, m)
    }

    /// Equal-weight nodes with table size `m`.
    ///
    /// # Errors
    ///
    /// [`BuildError::TooLarge`] above [`MAX_TABLE_SIZE`] (checked first);
    /// [`BuildError::NotPrime`]; [`BuildError::TableTooSmall`] when `m` is
    /// below 100 x nodes (or below 100 with no nodes);
    /// [`BuildError::DuplicateNode`].
    pub fn with_table_size<I: IntoIterator<Item = N>>(
        nodes: I,
        m: u64,
    ) -> Result<Self, BuildError> {
        Self::build(nodes.into_iter().map(|n| (n, 1)).collect(), m)
    }

    /// Weighted nodes with table size `m`.
    ///
    /// # Errors
    ///
    /// As [`Maglev::with_table_size`], and [`BuildError::Zero`] for a weight
    /// of 0.
    pub fn with_table_size_weighted<I: IntoIterator<Item = (N, u32)>>(
        nodes: I,
        m: u64,
    ) -> Result<Self, BuildError> {
        Self::build(nodes.into_iter().collect(), m)
    }

    fn build(list: Vec<(N, u32)>, m: u64) -> Result<Self, BuildError> {
        Self::check_size(m, list.len())?;
        let mut mg = Maglev {
            nodes: Vec::with_capacity(list.len()),
            node_hashes: Vec::with_capacity(list.len()),
            weights: Vec::with_capacity(list.len()),
            m,
            table: Vec::new(),
        };
        for (n, w) in list {
            mg.push_checked(n, w)?;
        }
        mg.rebuild();
        Ok(mg)
    }

    fn push_checked(&mut self, node: N, weight: u32) -> Result<(), BuildError> {
        if weight == 0 {
            return Err(BuildError::Zero { setting: "weight" });
        }
        let h = hash_key(&node);
        if self.node_hashes.contains(&h) || self.nodes.contains(&node) {
            return Err(BuildError::DuplicateNode);
        }
        self.nodes.push(node);
        self.node_hashes.push(h);
        self.weights.push(weight);
        Ok(())
    }

    /// Adds a node of weight 1 and rebuilds the table at the same size.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`]; [`BuildError::TableTooSmall`] when the
    /// table would fall below 100 entries per node.
    pub fn add(&mut self, node: N) -> Result<(), BuildError> {
        self.add_weighted(node, 1)
    }

    /// Adds a weighted node and rebuilds the table at the same size.
    ///
    /// # Errors
    ///
    /// As [`Maglev::add`], and [`BuildError::Zero`] for weight 0.
    pub fn add_weighted(&mut self, node: N, weight: u32) -> Result<(), BuildError> {
        Self::check_size(self.m, self.nodes.len() + 1)?;
        self.push_checked(node, weight)?;
        self.rebuild();
        Ok(())
    }

    /// Removes a node and rebuilds the table at the same size; returns
    /// whether it was present. Node order is kept (the indices of later
    /// nodes shift down by one).
    ///
    /// # Errors
    ///
    /// None today; the `Result` keeps room for a table that cannot be
    /// rebuilt.
    pub fn remove(&mut self, node: &N) -> Result<bool, BuildError> {
        let Some(i) = self.nodes.iter().position(|n| n == node) else {
            return Ok(false);
        };
        self.nodes.remove(i);
        self.node_hashes.remove(i);
        self.weights.remove(i);
        self.rebuild();
        Ok(true)
    }
}

impl<N> NodeLocator<N> for Maglev<N> {
    #[inline]
    fn locate_index(&self, hash: u64) -> Option<usize> {
        Maglev::locate_index(self, hash)
    }

    fn nodes(&self) -> &[N] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of the Maglev paper (Eisenbud et al., NSDI 2016,
    /// Table 1 / Figure): M = 7, B0 (offset 3, skip 4), B1 (offset 0,
    /// skip 2), B2 (offset 3, skip 1).
    #[test]
    fn paper_example_table() {
        let params = [(3, 4), (0, 2), (3, 1)];
        let t = populate(7, &params, &[1, 1, 1]);
        assert_eq!(t, vec![1, 0, 1, 0, 2, 2, 0]);
        // After B1 is removed, B0 and B2 fill the table alone.
        let t = populate(7, &[(3, 4), (3, 1)], &[1, 1]);
        // Indices here are positions in the reduced list: 0 = B0, 1 = B2.
        assert_eq!(t, vec![0, 0, 0, 0, 1, 1, 1]);
    }

    #[test]
    fn primes() {
        assert!(is_prime(2) && is_prime(7) && is_prime(65_537) && is_prime(5_003));
        assert!(!is_prime(0) && !is_prime(1) && !is_prime(65_536) && !is_prime(9));
    }
}
