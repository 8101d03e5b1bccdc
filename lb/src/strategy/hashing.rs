//! [`ConsistentHashing`]: route by request key on the `consistent-hash`
//! crate's ring or Maglev table, optionally with bounded loads.

use std::collections::HashMap;

use sysblocks_clock::Clock;
use sysblocks_consistent_hash::{fmix64, hash_key, HashRing, Maglev, NodeLocator, DEFAULT_VNODES};

use super::{Candidates, Context, Strategy};
use crate::error::{BuildError, HashTableError};
use crate::rng::{Cursor, FastMod};

/// Which consistent-hashing table [`ConsistentHashing`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// Karger's ring with `vnodes` points per unit of weight
    /// ([`sysblocks_consistent_hash::HashRing`]); removing a backend moves only its
    /// keys. `vnodes` times the backends' total weight may not exceed the
    /// ring's [`MAX_POINTS`](sysblocks_consistent_hash::MAX_POINTS) (2^24:
    /// a total weight of 104,857 at the default 160 virtual nodes).
    Ring {
        /// Virtual nodes per unit of weight.
        vnodes: u32,
    },
    /// Google's Maglev lookup table ([`sysblocks_consistent_hash::Maglev`]): O(1)
    /// lookups, near-perfect balance, slightly more movement on change. At
    /// most 167,772 backends (100 table entries each within
    /// [`MAX_TABLE_SIZE`](sysblocks_consistent_hash::MAX_TABLE_SIZE)).
    Maglev,
}

/// Consistent hashing by request key ([`Context::with_key`]): equal keys go
/// to the same backend while the candidate set is unchanged, and a change
/// moves few keys. The key is hashed with the `consistent-hash` crate's
/// pinned hash (`hash_key(&key)`), so placement is stable across processes
/// and releases. Weights scale each backend's share.
///
/// With [`ConsistentHashing::bounded_load`]`(c)` (Mirrokni, Thorup and
/// Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2018) a backend
/// whose in-flight count has reached `ceil(c * (total_in_flight + 1) * w /
/// W)` is skipped: the ring walks on clockwise to the next backend with
/// room; Maglev probes rehashed keys (then the first backend with room).
/// This costs a sum over the candidates per pick.
///
/// A context without a key is routed round robin.
///
/// The table must hold every backend: `build()` and
/// [`Balancer::add`](crate::Balancer::add) return
/// [`BuildError::HashTable`] with the `consistent-hash` crate's error when
/// it cannot (see [`HashAlgorithm`] for the limits), and keyed picks never
/// fall back to another placement.
#[derive(Debug)]
pub struct ConsistentHashing {
    algorithm: HashAlgorithm,
    bounded: Option<f64>,
    cursor: Cursor,
}

impl Default for ConsistentHashing {
    /// A ring with 160 virtual nodes per unit of weight, no load bound.
    fn default() -> Self {
        Self::ring()
    }
}

impl ConsistentHashing {
    /// A ring with the `consistent-hash` crate's default virtual nodes.
    #[must_use]
    pub fn ring() -> Self {
        Self::with_algorithm(HashAlgorithm::Ring {
            vnodes: DEFAULT_VNODES,
        })
    }

    /// A Maglev table.
    #[must_use]
    pub fn maglev() -> Self {
        Self::with_algorithm(HashAlgorithm::Maglev)
    }

    /// The given table.
    #[must_use]
    pub fn with_algorithm(algorithm: HashAlgorithm) -> Self {
        Self {
            algorithm,
            bounded: None,
            cursor: Cursor::default(),
        }
    }

    /// Bounds each backend's in-flight count to `c` times its fair share
    /// (`c >= 1`, e.g. 1.25; checked by `build()`).
    #[must_use]
    pub fn bounded_load(mut self, c: f64) -> Self {
        self.bounded = Some(c);
        self
    }
}

/// The table of [`ConsistentHashing`] for one candidate set.
#[derive(Debug)]
pub struct HashState {
    table: Table,
    /// Table node index -> candidate index.
    to_candidate: Vec<usize>,
    rotation: FastMod,
    total_weight: u64,
}

#[derive(Debug)]
enum Table {
    Ring(HashRing<u64>),
    Maglev(Maglev<u64>),
}

impl ConsistentHashing {
    /// The table over `(backend id, weight)` pairs.
    fn table(&self, nodes: &[(u64, u32)]) -> Result<Table, HashTableError> {
        Ok(match self.algorithm {
            HashAlgorithm::Ring { vnodes } => {
                let mut r = HashRing::with_vnodes(vnodes)?;
                for &(id, w) in nodes {
                    r.add_weighted(id, w)?;
                }
                Table::Ring(r)
            }
            HashAlgorithm::Maglev => Table::Maglev(Maglev::new_weighted(nodes.iter().copied())?),
        })
    }
}

fn id_weights<T>(candidates: Candidates<'_, T>) -> Vec<(u64, u32)> {
    candidates.iter().map(|s| (s.id().0, s.weight())).collect()
}

impl Strategy for ConsistentHashing {
    type State = HashState;

    fn validate(&self) -> Result<(), BuildError> {
        if let HashAlgorithm::Ring { vnodes } = self.algorithm {
            if vnodes == 0 {
                return Err(BuildError::Zero {
                    setting: "HashAlgorithm::Ring::vnodes",
                });
            }
            // Refuses a count no backend would fit in, before any backend.
            HashRing::<u64>::with_vnodes(vnodes).map_err(BuildError::HashTable)?;
        }
        if let Some(c) = self.bounded {
            if !(c.is_finite() && c >= 1.0) {
                return Err(BuildError::OutOfRange {
                    setting: "ConsistentHashing::bounded_load",
                    expected: "a finite factor of at least 1",
                });
            }
        }
        Ok(())
    }

    /// Builds the table over every backend once, so that the error is the
    /// table's own: a ring's points and a Maglev table's size only grow
    /// with the backend set, so every candidate set fits afterwards.
    fn check_backends<T>(&self, backends: Candidates<'_, T>) -> Result<(), BuildError> {
        self.table(&id_weights(backends))
            .map(drop)
            .map_err(BuildError::HashTable)
    }

    fn prepare<T>(&self, candidates: Candidates<'_, T>) -> HashState {
        let nodes = id_weights(candidates);
        let by_id: HashMap<u64, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        // Cannot fail: the candidates are a subset of the backends that
        // `check_backends` accepted, and neither table's size, nor any
        // other condition it checks, grows when backends are left out.
        let table = self
            .table(&nodes)
            .expect("check_backends accepted a superset of the candidates");
        let table_nodes: &[u64] = match &table {
            Table::Ring(r) => r.nodes(),
            Table::Maglev(m) => m.nodes(),
        };
        let to_candidate = table_nodes.iter().map(|id| by_id[id]).collect();
        HashState {
            table,
            to_candidate,
            rotation: FastMod::new(u32::try_from(nodes.len()).unwrap_or(u32::MAX)),
            total_weight: nodes.iter().map(|&(_, w)| u64::from(w)).sum(),
        }
    }

    fn pick<T>(
        &self,
        state: &HashState,
        candidates: Candidates<'_, T>,
        ctx: &Context,
        _clock: &dyn Clock,
    ) -> Option<usize> {
        let round_robin = || Some(state.rotation.rem(self.cursor.next()) as usize);
        let Some(key) = ctx.key() else {
            return round_robin();
        };
        let hash = hash_key(&key);
        let Some(c) = self.bounded else {
            let node = match &state.table {
                Table::Ring(r) => r.locate_index(hash),
                Table::Maglev(m) => m.locate_index(hash),
            }?;
            return state.to_candidate.get(node).copied();
        };
        // Bounded loads: the cap counts the request being placed.
        let total: u64 = (0..candidates.len())
            .map(|i| candidates.in_flight(i))
            .sum::<u64>()
            + 1;
        let w_total = state.total_weight.max(1) as f64;
        let has_room = |cand: usize| {
            let s = candidates.get(cand);
            let cap = (c * total as f64 * f64::from(s.weight()) / w_total).ceil();
            (candidates.in_flight(cand) as f64) < cap
        };
        match &state.table {
            Table::Ring(r) => r
                .locate_bounded(hash, |node| has_room(state.to_candidate[node]))
                .map(|node| state.to_candidate[node]),
            Table::Maglev(m) => {
                let mut h = hash;
                for _ in 0..candidates.len() {
                    if let Some(node) = m.locate_index(h) {
                        let cand = state.to_candidate[node];
                        if has_room(cand) {
                            return Some(cand);
                        }
                    }
                    h = fmix64(h.wrapping_add(0x9e37_79b9_7f4a_7c15));
                }
                (0..candidates.len()).find(|&i| has_room(i))
            }
        }
    }
}
