//! The share of a workload still found right after the node set changes:
//! a deterministic measurement, no servers involved.
//!
//! Right after a resize a key is found only if its owner did not change
//! (unless a warm-up copied it). Weighting each key by how often it is
//! read gives the hit ratio a full cache keeps through the change.
//!
//! ```
//! use sysblocks_dist_cache::resize::{kept_share, zipf_workload};
//! use sysblocks_dist_cache::Placement;
//!
//! let four = ["a", "b", "c", "d"];
//! let five = ["a", "b", "c", "d", "e"];
//! let workload = zipf_workload(10_000, 1.0);
//! let ring = kept_share(Placement::default(), &four, &five, &workload)?;
//! let modulo = kept_share(Placement::Modulo, &four, &five, &workload)?;
//! assert!(ring > 0.7 && modulo < 0.3, "ring {ring}, modulo {modulo}");
//! # Ok::<(), sysblocks_dist_cache::BuildError>(())
//! ```

use sysblocks_consistent_hash::hash_key;

use crate::error::BuildError;
use crate::placement::{Locator, Placement};

/// The key a workload generator names rank `rank` (`key:<rank>`), the
/// same string the client would be given.
#[must_use]
pub fn workload_key(rank: usize) -> String {
    format!("key:{rank}")
}

/// `keys` keys with Zipf(`s`) read frequencies: the key of rank `r`
/// (counting from 1) is read with weight `1 / r^s`, the weights
/// normalised to sum to one. Returns `(key hash, weight)` pairs, the hash
/// being the client's ([`hash_key`] of [`workload_key`]). Deterministic.
#[must_use]
pub fn zipf_workload(keys: usize, s: f64) -> Vec<(u64, f64)> {
    let raw: Vec<f64> = (1..=keys).map(|r| (r as f64).powf(-s)).collect();
    let total: f64 = raw.iter().sum();
    raw.into_iter()
        .enumerate()
        .map(|(i, w)| (hash_key(workload_key(i + 1).as_str()), w / total))
        .collect()
}

/// The weighted share of `workload` (`(key hash, weight)` pairs, weights
/// summing to 1) whose owner under `placement` is the same node over
/// `before` and over `after`: the hit ratio right after the change, for
/// a cache that held every key before it.
///
/// # Errors
///
/// [`BuildError::NoNodes`] for an empty node list, and as the placement's
/// constructor for duplicates.
pub fn kept_share(
    placement: Placement,
    before: &[&str],
    after: &[&str],
    workload: &[(u64, f64)],
) -> Result<f64, BuildError> {
    let owned = |v: &[&str]| -> Result<Locator, BuildError> {
        if v.is_empty() {
            return Err(BuildError::NoNodes);
        }
        let v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
        Locator::build(placement, &v)
    };
    let (a, b) = (owned(before)?, owned(after)?);
    let mut kept = 0.0;
    for &(h, w) in workload {
        let na = a.owner(h).map(|i| &a.nodes()[i]);
        let nb = b.owner(h).map(|i| &b.nodes()[i]);
        if na == nb {
            kept += w;
        }
    }
    Ok(kept)
}
