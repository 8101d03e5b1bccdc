//! The one small trait every algorithm implements.

use std::hash::Hash;

use crate::hash::hash_key;

/// Where a key goes: every placement algorithm of the crate implements it,
/// so `lb` and users can swap algorithms.
///
/// The trait is object safe (`Box<dyn NodeLocator<N>>` works); the key-level
/// convenience [`NodeLocator::get_key`] is only on sized implementors, and a
/// `dyn` user calls `locate(hash_key(&key))`, which is the same thing.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::{hash_key, HashRing, JumpHash, NodeLocator};
///
/// let mut ring = HashRing::new();
/// ring.add("a").unwrap();
/// ring.add("b").unwrap();
/// let jump = JumpHash::new(["a", "b"]).unwrap();
/// let algorithms: Vec<Box<dyn NodeLocator<&str>>> = vec![Box::new(ring), Box::new(jump)];
/// for a in &algorithms {
///     let node = a.locate(hash_key("user:42")).unwrap();
///     assert!(a.nodes().contains(node));
/// }
/// ```
pub trait NodeLocator<N> {
    /// The index in [`NodeLocator::nodes`] of the node for a key whose
    /// pinned hash is `hash`; `None` when there are no nodes.
    fn locate_index(&self, hash: u64) -> Option<usize>;

    /// The physical nodes, each once. Indices returned by
    /// [`NodeLocator::locate_index`] point into this slice; they stay valid
    /// until the next change of the node set.
    fn nodes(&self) -> &[N];

    /// The node for a key whose pinned hash is `hash` (see
    /// [`hash_key`](crate::hash_key)); `None` when there are no nodes.
    #[inline]
    fn locate(&self, hash: u64) -> Option<&N> {
        self.locate_index(hash).map(|i| &self.nodes()[i])
    }

    /// The node for `key`: `locate(hash_key(key))`.
    #[inline]
    fn get_key<K: Hash + ?Sized>(&self, key: &K) -> Option<&N>
    where
        Self: Sized,
    {
        self.locate(hash_key(key))
    }

    /// The number of physical nodes.
    #[inline]
    fn len(&self) -> usize {
        self.nodes().len()
    }

    /// Whether there are no nodes (every lookup returns `None`).
    #[inline]
    fn is_empty(&self) -> bool {
        self.nodes().is_empty()
    }
}
