//! Which node holds a key: the placement algorithms of
//! `sysblocks-consistent-hash` behind one type, plus the preference list
//! that replication and failover walk.

use sysblocks_consistent_hash::{
    fmix64, HashRing, JumpHash, Maglev, NodeLocator, Rendezvous, DEFAULT_VNODES,
};

use crate::error::BuildError;

/// The placement algorithm: which node owns a key.
///
/// Every variant but [`Placement::Modulo`] is consistent: adding a node to
/// N moves about 1/(N+1) of the keys, all of them to the new node, and
/// removing one moves only the keys it held. See
/// [`kept_share`](crate::resize::kept_share) for the measured share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// A hash ring with `vnodes` virtual nodes per node (the default, with
    /// [`DEFAULT_VNODES`]). Failover and replicas walk the ring clockwise,
    /// as ketama clients do.
    Ring {
        /// Virtual nodes per node.
        vnodes: u32,
    },
    /// Jump consistent hash (Lamping and Veach). Nodes are buckets in the
    /// order they were added: removing any but the last node renumbers
    /// the ones after it and moves their keys too.
    Jump,
    /// Maglev's lookup table (default size); near-minimal movement.
    Maglev,
    /// Rendezvous (highest random weight) hashing.
    Rendezvous,
    /// `hash % N`, for comparison only: a resize moves most keys.
    Modulo,
}

impl Default for Placement {
    fn default() -> Self {
        Self::Ring {
            vnodes: DEFAULT_VNODES,
        }
    }
}

/// A built placement over a node set, indexed like [`Locator::nodes`].
#[derive(Debug)]
pub(crate) enum Locator {
    Ring(HashRing<String>),
    Jump(JumpHash<String>),
    Maglev(Maglev<String>),
    Rendezvous(Rendezvous<String>),
    Modulo(Vec<String>),
}

impl Locator {
    /// Places `nodes` (distinct, non-empty: the caller checked).
    pub(crate) fn build(placement: Placement, nodes: &[String]) -> Result<Self, BuildError> {
        let nodes = nodes.iter().cloned();
        Ok(match placement {
            Placement::Ring { vnodes } => {
                let mut ring = HashRing::with_vnodes(vnodes)?;
                for n in nodes {
                    ring.add(n)?;
                }
                Self::Ring(ring)
            }
            Placement::Jump => Self::Jump(JumpHash::new(nodes)?),
            Placement::Maglev => Self::Maglev(Maglev::new(nodes)?),
            Placement::Rendezvous => {
                let mut r = Rendezvous::new();
                for n in nodes {
                    r.add(n)?;
                }
                Self::Rendezvous(r)
            }
            Placement::Modulo => Self::Modulo(nodes.collect()),
        })
    }

    /// The nodes, in the order indices refer to.
    pub(crate) fn nodes(&self) -> &[String] {
        match self {
            Self::Ring(l) => l.nodes(),
            Self::Jump(l) => l.nodes(),
            Self::Maglev(l) => l.nodes(),
            Self::Rendezvous(l) => l.nodes(),
            Self::Modulo(n) => n,
        }
    }

    /// The index of the owner of a key hash.
    pub(crate) fn owner(&self, hash: u64) -> Option<usize> {
        match self {
            Self::Ring(l) => l.locate_index(hash),
            Self::Jump(l) => l.locate_index(hash),
            Self::Maglev(l) => l.locate_index(hash),
            Self::Rendezvous(l) => l.locate_index(hash),
            Self::Modulo(n) => (!n.is_empty()).then(|| (hash % n.len() as u64) as usize),
        }
    }

    /// Up to `n` distinct node indices for a key hash, the owner first:
    /// where replicas go and the order failover walks. The ring walks
    /// clockwise and rendezvous takes the next-highest scores; the others
    /// rehash the key (a fixed sequence, the same in every client) and then
    /// take the remaining nodes in index order.
    pub(crate) fn preference(&self, hash: u64, n: usize) -> Vec<usize> {
        let nodes = self.nodes();
        let n = n.min(nodes.len());
        let index_of = |name: &String| {
            nodes
                .iter()
                .position(|m| std::ptr::eq(m, name))
                .unwrap_or(0)
        };
        match self {
            Self::Ring(l) => l.replicas_hash(hash, n).into_iter().map(index_of).collect(),
            Self::Rendezvous(l) => l.top_hash(hash, n).into_iter().map(index_of).collect(),
            _ => {
                let mut out = Vec::with_capacity(n);
                let mut h = hash;
                // A few rehashes find distinct nodes quickly; the fill
                // below bounds the walk whatever the hashes do.
                for _ in 0..4 * nodes.len() {
                    if out.len() == n {
                        return out;
                    }
                    if let Some(i) = self.owner(h) {
                        if !out.contains(&i) {
                            out.push(i);
                        }
                    }
                    h = fmix64(h.wrapping_add(0x9e37_79b9_7f4a_7c15));
                }
                for i in 0..nodes.len() {
                    if out.len() == n {
                        break;
                    }
                    if !out.contains(&i) {
                        out.push(i);
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("redis://node-{i}/")).collect()
    }

    const ALL: [Placement; 5] = [
        Placement::Ring { vnodes: 160 },
        Placement::Jump,
        Placement::Maglev,
        Placement::Rendezvous,
        Placement::Modulo,
    ];

    #[test]
    fn preference_lists_start_with_the_owner_and_hold_distinct_nodes() {
        for p in ALL {
            let l = Locator::build(p, &names(5)).unwrap();
            for k in 0..2_000u64 {
                let h = fmix64(k);
                let pref = l.preference(h, 5);
                assert_eq!(pref.len(), 5, "{p:?}");
                assert_eq!(Some(pref[0]), l.owner(h), "{p:?}");
                let mut s = pref.clone();
                s.sort_unstable();
                s.dedup();
                assert_eq!(s.len(), 5, "{p:?}: {pref:?}");
                assert_eq!(l.preference(h, 2), pref[..2], "{p:?}");
            }
        }
    }

    #[test]
    fn the_order_nodes_are_listed_in_does_not_change_a_ring() {
        let a = Locator::build(Placement::default(), &names(4)).unwrap();
        let mut rev = names(4);
        rev.reverse();
        let b = Locator::build(Placement::default(), &rev).unwrap();
        for k in 0..1_000u64 {
            let h = fmix64(k);
            let na = &a.nodes()[a.owner(h).unwrap()];
            let nb = &b.nodes()[b.owner(h).unwrap()];
            assert_eq!(na, nb);
        }
    }
}
