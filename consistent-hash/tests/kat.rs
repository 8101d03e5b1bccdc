//! Known-answer tests against independent implementations.

use std::hash::Hasher;
use sysblocks_consistent_hash::{hash_key, jump_hash, stable_hash, xxh64, StableHasher};

/// A small deterministic generator (SplitMix64) for test inputs.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn xxh64_matches_xxhash_rust_on_random_inputs_and_seeds() {
    let mut s = 1u64;
    let mut buf = Vec::new();
    for len in 0..300usize {
        buf.clear();
        for _ in 0..len {
            buf.push(splitmix(&mut s) as u8);
        }
        for seed in [0u64, 1, 2, splitmix(&mut s)] {
            assert_eq!(
                xxh64(&buf, seed),
                xxhash_rust::xxh64::xxh64(&buf, seed),
                "len {len} seed {seed}"
            );
        }
        let mut h = StableHasher::new();
        // Feed in uneven pieces to exercise the streaming buffer.
        let mut rest = &buf[..];
        let mut step = 1;
        while !rest.is_empty() {
            let k = step.min(rest.len());
            h.write(&rest[..k]);
            rest = &rest[k..];
            step = step * 2 + 1;
        }
        assert_eq!(h.finish(), xxhash_rust::xxh64::xxh64(&buf, 0));
    }
}

#[test]
fn key_encoding_is_pinned() {
    // Values computed by the independent implementation over the documented
    // byte encodings.
    let x = |b: &[u8]| xxhash_rust::xxh64::xxh64(b, 0);
    assert_eq!(hash_key(&42u64), x(&42u64.to_le_bytes()));
    assert_eq!(hash_key(&42u32), x(&42u32.to_le_bytes()));
    assert_eq!(hash_key(&-1i16), x(&[0xff, 0xff]));
    assert_eq!(hash_key(&7usize), x(&7u64.to_le_bytes()));
    assert_eq!(hash_key("user:7"), x(b"user:7\xff"));
    assert_eq!(hash_key(&String::from("user:7")), x(b"user:7\xff"));
    let mut v = 3u64.to_le_bytes().to_vec();
    v.extend_from_slice(&[1, 2, 3]);
    assert_eq!(hash_key(&vec![1u8, 2, 3]), x(&v));
    let mut t = 1u32.to_le_bytes().to_vec();
    t.extend_from_slice(b"ab\xff");
    assert_eq!(hash_key(&(1u32, "ab")), x(&t));
    assert_eq!(stable_hash(b"abc"), x(b"abc"));
    // Pinned values: these must never change across releases.
    assert_eq!(stable_hash(b""), 0xEF46_DB37_51D8_E999);
    assert_eq!(stable_hash(b"abc"), 0x44BC_2CF5_AD77_0999);
}

#[test]
fn jump_matches_the_published_example_and_the_peer() {
    assert_eq!(jump_hash(256, 1024), 520);
    assert_eq!(jump_consistent_hash::hash(256, 1024), 520);
    let mut s = 7u64;
    for _ in 0..200_000 {
        let key = splitmix(&mut s);
        let buckets = (splitmix(&mut s) % 5000) as u32 + 1;
        assert_eq!(
            jump_hash(key, buckets),
            jump_consistent_hash::hash(key, buckets as usize),
            "key {key} buckets {buckets}"
        );
    }
    for key in 0..2000u64 {
        for buckets in [1u32, 2, 3, 10, 100, 1000, 65_536, 1 << 30] {
            assert_eq!(
                jump_hash(key, buckets),
                jump_consistent_hash::hash(key, buckets as usize)
            );
        }
    }
}
