//! Jump consistent hash (Lamping and Veach, 2014).

use std::hash::Hash;

use crate::error::BuildError;
use crate::hash::hash_key;
use crate::locator::NodeLocator;

/// Jump consistent hash: the bucket in `0..buckets` for `key`, exactly the
/// algorithm of Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
/// Algorithm" (2014), bit for bit (its 64-bit LCG and its double-precision
/// step). When `buckets` grows by one, a key either stays or moves to the
/// new bucket; each bucket gets `1/buckets` of the keys.
///
/// `key` should already be well mixed (pass [`hash_key`](crate::hash_key)'s
/// output, not a small counter, for balanced buckets). With `buckets == 0`
/// there is no bucket to return and the result is 0.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::jump_hash;
/// assert_eq!(jump_hash(256, 1024), 520);
/// ```
#[must_use]
#[inline]
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    if buckets == 0 {
        return 0;
    }
    let n = i64::from(buckets);
    // The reference's `while (j < num_buckets)` with `j = 0` first: the body
    // always runs at least once, so `b` ends in `0..buckets`.
    let mut b: i64;
    let mut j: i64 = 0;
    loop {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // `(key >> 33) + 1` is at most 2^31, so converting it through `i64`
        // is exact and avoids the slower unsigned conversion sequence.
        let d = ((key >> 33) + 1) as i64;
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / d as f64)) as i64;
        if j >= n {
            return b as u32;
        }
    }
}

/// A node list placed by [`jump_hash`]: node `i` is bucket `i`.
///
/// Jump hash can only grow or shrink at the end: [`JumpHash::push`] adds a
/// bucket and moves keys only to it, [`JumpHash::pop`] removes the last
/// bucket and moves only its keys. Removing a node from the middle would
/// renumber the buckets after it and move far more than its keys, so
/// [`JumpHash::remove`] refuses anything but the last node. When nodes fail
/// at random, use [`HashRing`](crate::HashRing), [`Rendezvous`](crate::Rendezvous)
/// or [`Maglev`](crate::Maglev), or keep failed nodes in the list and skip
/// them at a higher level.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::JumpHash;
///
/// let mut j = JumpHash::new(["a", "b", "c"]).unwrap();
/// assert!(j.get("user:1").is_some());
/// assert!(j.remove(&"a").is_err());
/// assert_eq!(j.pop(), Some("c"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct JumpHash<N> {
    nodes: Vec<N>,
}

impl<N> JumpHash<N> {
    /// The bucket index for a key hash; `None` when empty.
    #[inline]
    #[must_use]
    pub fn locate_index(&self, hash: u64) -> Option<usize> {
        if self.nodes.is_empty() {
            None
        } else {
            Some(jump_hash(hash, self.nodes.len() as u32) as usize)
        }
    }

    /// The node for `key`; `None` when empty.
    #[inline]
    pub fn get<K: Hash + ?Sized>(&self, key: &K) -> Option<&N> {
        self.locate_index(hash_key(key)).map(|i| &self.nodes[i])
    }

    /// Removes and returns the last node (the only one jump hash can remove
    /// with minimal movement).
    pub fn pop(&mut self) -> Option<N> {
        self.nodes.pop()
    }

    /// Heap bytes held (the node array).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<N>()
    }
}

impl<N: Hash + Eq> JumpHash<N> {
    /// Buckets `0..n` for the given nodes, in order.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when a node repeats;
    /// [`BuildError::TooLarge`] past `u32::MAX` nodes.
    pub fn new<I: IntoIterator<Item = N>>(nodes: I) -> Result<Self, BuildError> {
        let mut j = JumpHash { nodes: Vec::new() };
        for n in nodes {
            j.push(n)?;
        }
        Ok(j)
    }

    /// Appends a node as the new last bucket.
    ///
    /// # Errors
    ///
    /// [`BuildError::DuplicateNode`] when present; [`BuildError::TooLarge`]
    /// past `u32::MAX` nodes.
    pub fn push(&mut self, node: N) -> Result<(), BuildError> {
        if self.nodes.contains(&node) {
            return Err(BuildError::DuplicateNode);
        }
        if self.nodes.len() >= u32::MAX as usize {
            return Err(BuildError::TooLarge {
                setting: "nodes",
                max: u64::from(u32::MAX),
            });
        }
        self.nodes.push(node);
        Ok(())
    }

    /// Removes `node` if it is the last bucket: `Ok(true)` when removed,
    /// `Ok(false)` when absent.
    ///
    /// # Errors
    ///
    /// [`BuildError::NotLastBucket`] when the node is present but not last.
    pub fn remove(&mut self, node: &N) -> Result<bool, BuildError> {
        match self.nodes.iter().position(|n| n == node) {
            None => Ok(false),
            Some(i) if i + 1 == self.nodes.len() => {
                self.nodes.pop();
                Ok(true)
            }
            Some(_) => Err(BuildError::NotLastBucket),
        }
    }
}

impl<N> NodeLocator<N> for JumpHash<N> {
    #[inline]
    fn locate_index(&self, hash: u64) -> Option<usize> {
        JumpHash::locate_index(self, hash)
    }

    fn nodes(&self) -> &[N] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_example_and_degenerate_sizes() {
        assert_eq!(jump_hash(256, 1024), 520);
        assert_eq!(jump_hash(12345, 1), 0);
        assert_eq!(jump_hash(12345, 0), 0);
    }
}
