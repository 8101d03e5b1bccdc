//! The crate's one pinned hash: xxHash64 (XXH64) with seed 0.
//!
//! Everything that places a key or a node goes through the functions here,
//! so a placement is the same in every process, on every platform and in
//! every release. The byte encoding of `K: Hash` is pinned by [`StableHasher`]
//! (see the crate README, "The pinned hash").

use std::hash::{Hash, Hasher};

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline]
fn read_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[inline]
fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

#[inline]
fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

#[inline]
fn merge(h: u64, v: u64) -> u64 {
    (h ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

/// Hashes the tail (< 32 bytes) into `h` and applies the final avalanche.
#[inline]
fn finish_tail(mut h: u64, mut tail: &[u8]) -> u64 {
    while tail.len() >= 8 {
        h ^= round(0, read_u64(tail));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        tail = &tail[8..];
    }
    if tail.len() >= 4 {
        h ^= u64::from(read_u32(tail)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        tail = &tail[4..];
    }
    for &b in tail {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    avalanche(h)
}

#[inline]
fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

/// The four accumulators of XXH64 for inputs of 32 bytes or more.
#[derive(Clone, Copy, Debug)]
struct Lanes([u64; 4]);

impl Lanes {
    #[inline]
    fn new(seed: u64) -> Self {
        Lanes([
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ])
    }

    #[inline]
    fn stripe(&mut self, s: &[u8]) {
        self.0[0] = round(self.0[0], read_u64(&s[0..]));
        self.0[1] = round(self.0[1], read_u64(&s[8..]));
        self.0[2] = round(self.0[2], read_u64(&s[16..]));
        self.0[3] = round(self.0[3], read_u64(&s[24..]));
    }

    #[inline]
    fn converge(&self) -> u64 {
        let [v1, v2, v3, v4] = self.0;
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        h = merge(h, v1);
        h = merge(h, v2);
        h = merge(h, v3);
        merge(h, v4)
    }
}

/// XXH64 of `bytes` with the given seed (the reference algorithm, bit for
/// bit; seed 0 is the crate's pinned hash, see [`stable_hash`]).
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::xxh64;
/// // The reference implementation's hash of the empty input.
/// assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
/// ```
#[must_use]
pub fn xxh64(bytes: &[u8], seed: u64) -> u64 {
    let len = bytes.len() as u64;
    let mut rest = bytes;
    let h = if bytes.len() >= 32 {
        let mut lanes = Lanes::new(seed);
        while rest.len() >= 32 {
            lanes.stripe(&rest[..32]);
            rest = &rest[32..];
        }
        lanes.converge()
    } else {
        seed.wrapping_add(P5)
    };
    finish_tail(h.wrapping_add(len), rest)
}

/// The crate's pinned hash of raw bytes: XXH64 with seed 0.
///
/// Use it (or [`hash_key`] on a `[u8]`/`str`, which encodes differently, see
/// the README) when another language must compute the same placement.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::stable_hash;
/// assert_eq!(stable_hash(b"abc"), 0x44BC_2CF5_AD77_0999);
/// ```
#[must_use]
#[inline]
pub fn stable_hash(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

/// The pinned hash of any `K: Hash`: XXH64 (seed 0) of the bytes that `K`'s
/// `Hash` implementation writes into a [`StableHasher`].
///
/// Integers are written little-endian at their own width (`usize`/`isize`
/// as 8 bytes, so lengths are the same on 32- and 64-bit targets); a `str`
/// writes its UTF-8 bytes followed by one `0xff` byte; a `[u8]` slice writes
/// its length as 8 little-endian bytes and then its bytes. The README has the
/// full table. A key type whose `Hash` impl is not stable across releases
/// (for example one that hashes a pointer) cannot be placed stably.
///
/// # Examples
///
/// ```
/// use sysblocks_consistent_hash::{hash_key, stable_hash};
/// assert_eq!(hash_key(&42u64), stable_hash(&42u64.to_le_bytes()));
/// assert_eq!(hash_key("user:7"), stable_hash(b"user:7\xff"));
/// ```
#[must_use]
#[inline]
pub fn hash_key<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = StableHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// A streaming XXH64 (seed 0) [`Hasher`] with a pinned, platform-independent
/// integer encoding: every `write_*` of an integer writes its little-endian
/// bytes, and `usize`/`isize` are widened to 8 bytes.
///
/// `finish` returns exactly `stable_hash(all bytes written so far)`.
#[derive(Clone, Debug)]
pub struct StableHasher {
    lanes: Lanes,
    buf: [u8; 32],
    buf_len: usize,
    total: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl StableHasher {
    /// A hasher that has seen no bytes.
    #[must_use]
    #[inline]
    pub fn new() -> Self {
        StableHasher {
            lanes: Lanes::new(0),
            buf: [0; 32],
            buf_len: 0,
            total: 0,
        }
    }
}

impl StableHasher {
    /// Appends a fixed-width value: a constant-length copy into the buffer
    /// when it fits (the common case of integer keys), the general path
    /// otherwise.
    #[inline]
    fn push_fixed<const L: usize>(&mut self, bytes: [u8; L]) {
        let at = self.buf_len;
        if at + L < 32 {
            self.buf[at..at + L].copy_from_slice(&bytes);
            self.buf_len = at + L;
            self.total = self.total.wrapping_add(L as u64);
        } else {
            self.write(&bytes);
        }
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, mut bytes: &[u8]) {
        self.total = self.total.wrapping_add(bytes.len() as u64);
        if self.buf_len > 0 {
            let take = (32 - self.buf_len).min(bytes.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&bytes[..take]);
            self.buf_len += take;
            bytes = &bytes[take..];
            if self.buf_len < 32 {
                return;
            }
            let buf = self.buf;
            self.lanes.stripe(&buf);
            self.buf_len = 0;
        }
        while bytes.len() >= 32 {
            self.lanes.stripe(&bytes[..32]);
            bytes = &bytes[32..];
        }
        self.buf[..bytes.len()].copy_from_slice(bytes);
        self.buf_len = bytes.len();
    }

    #[inline]
    fn finish(&self) -> u64 {
        let h = if self.total >= 32 {
            self.lanes.converge()
        } else {
            P5
        };
        finish_tail(h.wrapping_add(self.total), &self.buf[..self.buf_len])
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.push_fixed([i]);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.push_fixed((i as u64).to_le_bytes());
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_i128(&mut self, i: i128) {
        self.push_fixed(i.to_le_bytes());
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.push_fixed((i as i64).to_le_bytes());
    }
}

/// The 64-bit finaliser of MurmurHash3 (`fmix64`): a bijective mixer the
/// crate uses to derive per-node and per-probe values from a key hash.
///
/// # Examples
///
/// ```
/// assert_eq!(sysblocks_consistent_hash::fmix64(0), 0);
/// ```
#[must_use]
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Maps a 64-bit hash uniformly onto `0..n` by multiply-shift
/// (`(hash * n) >> 64`, Lemire's "fast range"); used by the table-based
/// algorithms instead of `hash % n`.
#[inline]
pub(crate) fn fast_range(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference vectors of XXH64 (seed 0) from the xxHash project.
    #[test]
    fn xxh64_reference_vectors() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
    }

    #[test]
    fn streaming_matches_one_shot_at_every_split() {
        let data: Vec<u8> = (0..200u32).map(|i| (i * 31 + 7) as u8).collect();
        for len in [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 65, 100, 200] {
            let whole = xxh64(&data[..len], 0);
            for split in 0..=len {
                let mut h = StableHasher::new();
                h.write(&data[..split]);
                h.write(&data[split..len]);
                assert_eq!(h.finish(), whole, "len {len} split {split}");
            }
        }
    }

    #[test]
    fn integer_encoding_is_little_endian_and_usize_is_eight_bytes() {
        assert_eq!(hash_key(&0x0102_0304u32), stable_hash(&[4, 3, 2, 1]));
        assert_eq!(hash_key(&5usize), stable_hash(&5u64.to_le_bytes()));
        assert_eq!(hash_key(&-2isize), stable_hash(&(-2i64).to_le_bytes()));
        let mut expect = 3u64.to_le_bytes().to_vec();
        expect.extend_from_slice(b"xyz");
        assert_eq!(hash_key(&b"xyz"[..]), stable_hash(&expect));
    }
}
