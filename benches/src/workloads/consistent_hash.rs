//! `consistent-hash` and its peers, built the same way for the criterion
//! bench and for `compare`: 100 virtual nodes per ring node, the Maglev table
//! size of [`table_for`], a fixed batch of `u64` keys.

use sysblocks_consistent_hash::{HashRing, MultiProbe, Rendezvous};

/// Keys per lookup batch (a power of two, so `i & (BATCH - 1)` indexes it).
pub const BATCH: usize = 256;

/// Virtual nodes per node of the rings (ours and the peers alike).
pub const VNODES: u32 = 100;

/// Node counts of the lookup cases.
pub const NODES: [u32; 3] = [10, 100, 1000];

/// The Maglev table size for `n` nodes, the same for ours and the peer:
/// 65537 (the paper's), or the smallest prime of at least 100 x n.
#[must_use]
pub fn table_for(n: u32) -> u64 {
    let mut m = 65_537u64.max(100 * u64::from(n));
    while !is_prime(m) {
        m += 1;
    }
    m
}

/// Trial division (table sizes are small enough).
fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// [`BATCH`] pseudo-random keys (splitmix64 from a fixed seed).
#[must_use]
pub fn keys() -> Vec<u64> {
    let mut s = 0x5eed_u64;
    (0..BATCH)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

/// Our ring with nodes `0..n`, [`VNODES`] each.
///
/// # Panics
///
/// Never for `n` below the crate's limits (the inputs here are fixed).
#[must_use]
pub fn our_ring(n: u32) -> HashRing<u32> {
    let mut r = HashRing::with_vnodes(VNODES).expect("valid vnode count");
    for i in 0..n {
        r.add(i).expect("distinct node");
    }
    r
}

/// `hashring` with virtual nodes as `(node, i)` entries, its documented
/// pattern.
#[must_use]
pub fn peer_hashring(n: u32) -> hashring::HashRing<(u32, u32)> {
    let mut r = hashring::HashRing::new();
    r.batch_add(
        (0..n)
            .flat_map(|i| (0..VNODES).map(move |v| (i, v)))
            .collect(),
    );
    r
}

/// `consistent_hash_ring` with `vnodes(VNODES)`.
#[must_use]
pub fn peer_chr(n: u32) -> consistent_hash_ring::Ring<u32> {
    consistent_hash_ring::RingBuilder::default()
        .vnodes(VNODES as usize)
        .nodes_iter(0..n)
        .build()
}

/// Our Maglev table over `0..n` with [`table_for`]`(n)` slots.
///
/// # Panics
///
/// Never for the fixed inputs here.
#[must_use]
pub fn our_maglev(n: u32) -> sysblocks_consistent_hash::Maglev<u32> {
    sysblocks_consistent_hash::Maglev::with_table_size(0..n, table_for(n))
        .expect("prime table size")
}

/// `maglev` over `0..n` with the same table size.
#[must_use]
pub fn peer_maglev(n: u32) -> maglev::Maglev<u32> {
    maglev::Maglev::with_capacity(0..n, table_for(n) as usize)
}

/// Our jump hash over `0..n`.
///
/// # Panics
///
/// Never for the fixed inputs here.
#[must_use]
pub fn our_jump(n: u32) -> sysblocks_consistent_hash::JumpHash<u32> {
    sysblocks_consistent_hash::JumpHash::new(0..n).expect("non-empty")
}

/// Our rendezvous hash over `0..n`.
///
/// # Panics
///
/// Never for the fixed inputs here.
#[must_use]
pub fn our_rendezvous(n: u32) -> Rendezvous<u32> {
    let mut r = Rendezvous::new();
    for i in 0..n {
        r.add(i).expect("distinct node");
    }
    r
}

/// `hrw-hash` over `0..n`.
#[must_use]
pub fn peer_hrw(n: u32) -> hrw_hash::HrwNodes<u32> {
    hrw_hash::HrwNodes::new(0..n)
}

/// Our multi-probe hash over `0..n` (21 probes, the crate default).
///
/// # Panics
///
/// Never for the fixed inputs here.
#[must_use]
pub fn our_multiprobe(n: u32) -> MultiProbe<u32> {
    let mut r = MultiProbe::new();
    for i in 0..n {
        r.add(i).expect("distinct node");
    }
    r
}

/// The `anchorhash` peer type.
pub type PeerAnchor = anchorhash::AnchorHash<u64, u32, std::collections::hash_map::RandomState>;

/// `anchorhash` over `0..n` with capacity `n`.
#[must_use]
pub fn peer_anchor(n: u32) -> PeerAnchor {
    anchorhash::Builder::default()
        .with_resources(0..n)
        .build(n as u16)
}
