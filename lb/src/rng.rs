//! A tiny thread-safe random source and rotation: SplitMix64 and a cursor
//! with per-thread state, so a seeded strategy is reproducible on one thread
//! and picking threads share no written cache line.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::sync::{AtomicU32, Ordering, PerThread};

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function (Steele, Lea, Flood 2014).
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed that differs between processes and between calls.
pub(crate) fn entropy_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

/// SplitMix64 with one state per thread (and per strategy). The first
/// thread to draw starts from the seed itself, so a seeded strategy used
/// from one thread gives exactly the seeded sequence; each later thread
/// starts from the seed mixed with its arrival order. No state is shared
/// between threads, so a draw writes no cache line another thread reads,
/// and two threads never draw the same numbers (which would send them to
/// the same backends).
#[derive(Debug)]
pub(crate) struct SplitMix {
    seed: u64,
    arrivals: AtomicU32,
    state: PerThread<Option<u64>>,
}

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            seed,
            arrivals: AtomicU32::new(0),
            state: PerThread::new(),
        }
    }

    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        let next = self.state.with(|state| {
            let s = state.get_or_insert_with(|| self.start());
            *s = s.wrapping_add(GOLDEN);
            *s
        });
        // Re-entered on this thread (a strategy picking from inside a
        // pick): draw from a state derived from nothing shared.
        mix64(next.unwrap_or_else(|| self.start()))
    }

    #[cold]
    fn start(&self) -> u64 {
        match self.arrivals.fetch_add(1, Ordering::Relaxed) {
            0 => self.seed,
            n => mix64(self.seed ^ mix64(u64::from(n))),
        }
    }
}

/// A rotating cursor, one per thread (and per strategy): on one thread the
/// rotation is exact; each thread after the first starts at a different
/// point of it, so that threads do not walk the backends in step. As with
/// Envoy's per-worker balancers, the rotation is per thread, not global.
#[derive(Debug)]
pub(crate) struct Cursor {
    arrivals: AtomicU32,
    state: PerThread<Option<u32>>,
}

impl Default for Cursor {
    fn default() -> Self {
        Self {
            arrivals: AtomicU32::new(0),
            state: PerThread::new(),
        }
    }
}

impl Cursor {
    #[inline]
    pub(crate) fn next(&self) -> u32 {
        self.state
            .with(|state| {
                let c = state.get_or_insert_with(|| self.start());
                let now = *c;
                *c = now.wrapping_add(1);
                now
            })
            .unwrap_or_else(|| self.start())
    }

    #[cold]
    fn start(&self) -> u32 {
        match self.arrivals.fetch_add(1, Ordering::Relaxed) {
            0 => 0,
            n => mix64(u64::from(n)) as u32,
        }
    }
}

/// Lemire's multiply-shift: maps a uniform `u32` onto `0..n` (bias below
/// `n / 2^32`, irrelevant for backend counts).
#[inline]
pub(crate) fn below(r: u32, n: u32) -> u32 {
    ((u64::from(r) * u64::from(n)) >> 32) as u32
}

/// Lemire's "fastmod": `a % d` for 32-bit operands with two multiplications
/// instead of a division, for a divisor fixed when a snapshot is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastMod {
    m: u64,
    d: u32,
}

impl FastMod {
    /// `d` must be non-zero; a zero divisor is stored as 1.
    pub(crate) fn new(d: u32) -> Self {
        let d = d.max(1);
        Self {
            m: (u64::MAX / u64::from(d)).wrapping_add(1),
            d,
        }
    }

    #[inline]
    pub(crate) fn rem(self, a: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_values() {
        // Reference: Vigna's splitmix64.c seeded with 1234567; its first
        // outputs are 6457827717110365317, 3203168211198807973.
        let r = SplitMix::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn fastmod_equals_remainder() {
        for d in [1u32, 2, 3, 7, 10, 100, 1000, 65_537, u32::MAX] {
            let f = FastMod::new(d);
            for a in [0u32, 1, 2, 9, 99, 100, 101, 12_345, u32::MAX - 1, u32::MAX] {
                assert_eq!(f.rem(a), a % d, "{a} % {d}");
            }
        }
    }

    #[test]
    fn below_stays_in_range() {
        for n in [1u32, 2, 10, 100] {
            for r in [0u32, 1, u32::MAX / 2, u32::MAX] {
                assert!(below(r, n) < n);
            }
        }
    }
}
