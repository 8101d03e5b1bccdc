//! A sorted array of 64-bit ring points with their owners, searched by
//! binary search inside a small radix index on the top bits.

/// Sorted points (structure of arrays: the keys that are searched are one
/// dense `u64` array) plus a radix index: `index[b]` is the first position
/// whose point has `b` or more in its top `64 - shift` bits.
#[derive(Clone, Debug, Default)]
pub(crate) struct SortedPoints {
    /// The points, ascending (ties ordered by the owner's node hash).
    pub(crate) points: Vec<u64>,
    /// The node index that owns each point.
    pub(crate) owners: Vec<u32>,
    index: Vec<u32>,
    shift: u32,
}

impl SortedPoints {
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// Rebuilds the radix index after `points` changed: one linear sweep.
    pub(crate) fn reindex(&mut self) {
        let len = self.points.len();
        let bits = (usize::BITS - len.max(2).saturating_sub(1).leading_zeros()).clamp(1, 20);
        self.shift = 64 - bits;
        let buckets = 1usize << bits;
        self.index.clear();
        self.index.reserve(buckets + 1);
        let mut pos = 0usize;
        for b in 0..buckets {
            let start = (b as u64) << self.shift;
            while pos < len && self.points[pos] < start {
                pos += 1;
            }
            self.index.push(pos as u32);
        }
        self.index.push(len as u32);
    }

    /// The position of the first point at or after `hash` clockwise
    /// (wrapping to 0). The caller guarantees at least one point.
    #[inline]
    pub(crate) fn successor(&self, hash: u64) -> usize {
        let b = (hash >> self.shift) as usize;
        let lo = self.index[b] as usize;
        let hi = self.index[b + 1] as usize;
        let i = lo + self.points[lo..hi].partition_point(|&p| p < hash);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    /// Memory held, in bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.points.capacity() * 8 + self.owners.capacity() * 4 + self.index.capacity() * 4
    }

    /// Merges sorted `(point, tie, owner)` triples into the arrays; `tie_of`
    /// gives the tie-break key of an existing owner.
    pub(crate) fn merge(&mut self, mut new: Vec<(u64, u64, u32)>, tie_of: impl Fn(u32) -> u64) {
        new.sort_unstable();
        let old_p = std::mem::take(&mut self.points);
        let old_o = std::mem::take(&mut self.owners);
        let total = old_p.len() + new.len();
        self.points.reserve_exact(total);
        self.owners.reserve_exact(total);
        let (mut i, mut j) = (0, 0);
        while i < old_p.len() || j < new.len() {
            let take_old = j == new.len()
                || (i < old_p.len() && (old_p[i], tie_of(old_o[i])) <= (new[j].0, new[j].1));
            if take_old {
                self.points.push(old_p[i]);
                self.owners.push(old_o[i]);
                i += 1;
            } else {
                self.points.push(new[j].0);
                self.owners.push(new[j].2);
                j += 1;
            }
        }
        self.reindex();
    }

    /// Drops the points of node `gone` and renames owner `last` to `gone`
    /// (the node list did a `swap_remove(gone)`).
    pub(crate) fn remove_owner(&mut self, gone: u32, last: u32) {
        let mut w = 0;
        for r in 0..self.points.len() {
            let o = self.owners[r];
            if o != gone {
                self.points[w] = self.points[r];
                self.owners[w] = if o == last { gone } else { o };
                w += 1;
            }
        }
        self.points.truncate(w);
        self.owners.truncate(w);
        self.reindex();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_matches_linear_scan() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for n in [1usize, 2, 3, 7, 100, 1000] {
            let mut pts = SortedPoints::default();
            let new: Vec<(u64, u64, u32)> = (0..n)
                .map(|i| {
                    x = crate::hash::fmix64(x.wrapping_add(1));
                    (x, 0, i as u32)
                })
                .collect();
            pts.merge(new, |_| 0);
            for q in 0..2000u64 {
                let h = crate::hash::fmix64(q ^ 0xdead);
                let want = pts.points.iter().position(|&p| p >= h).unwrap_or(0);
                assert_eq!(pts.successor(h), want);
            }
            assert_eq!(pts.successor(0), 0);
            assert_eq!(
                pts.successor(u64::MAX),
                pts.points.iter().position(|&p| p == u64::MAX).unwrap_or(0)
            );
        }
    }
}
