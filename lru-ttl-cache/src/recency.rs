//! The recency log: the exact LRU order of an [`LruCache`](crate::LruCache)'s
//! slots, as an append-only ring of slot numbers.
//!
//! Every use of a slot appends a record and stamps the slot with the
//! record's position; a record is live iff its slot still carries its
//! position. The least recently used slot is the oldest live record, which
//! is exactly LRU order. A hit therefore writes only to its own slot and to
//! the log's tail, never to neighbouring slots as a linked list must, which
//! saves two cache misses per hit. When the log fills, stale records are
//! dropped and the log is resized to three times the live entries (rounded
//! up to a power of two), so compaction is O(1) amortised per use. The log
//! holds one `u32` per record: between three and six records per live
//! entry after a compaction.

/// A slot that carries the position (truncated to `u32`) of its latest
/// record in the [`RecencyLog`]. The stamp lives in the slot itself so that
/// a hit touches one slot, not a side table.
pub(crate) trait Stamped {
    /// The slot's stamp.
    fn stamp(&self) -> u32;
    /// Restamps the slot.
    fn set_stamp(&mut self, pos: u32);
}

/// The log over a slab of [`Stamped`] slots, which every method takes: the
/// log owns the records, the slab owns the stamps. A slot number in the log
/// at or past the slab's end is stale.
pub(crate) struct RecencyLog {
    /// One record per use, oldest at `tail`; a power of two long (or empty).
    ring: Vec<u32>,
    /// Absolute position of the next record.
    head: u64,
    /// Absolute position of the oldest record that may be live.
    tail: u64,
}

impl RecencyLog {
    /// An empty log (it allocates on the first use).
    pub(crate) const fn new() -> Self {
        Self {
            ring: Vec::new(),
            head: 0,
            tail: 0,
        }
    }

    /// Absolute position of the next record: walking down from here to
    /// [`tail`](Self::tail) visits the records newest first.
    #[inline]
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// Absolute position of the oldest record that may be live.
    #[inline]
    pub(crate) fn tail(&self) -> u64 {
        self.tail
    }

    /// Appends a use of slot `i` (compacting the log first when it is full).
    #[inline]
    pub(crate) fn record<N: Stamped>(&mut self, slots: &mut [N], i: usize) {
        if (self.head - self.tail) as usize >= self.ring.len() {
            self.compact(slots);
        }
        let mask = self.ring.len() - 1;
        self.ring[self.head as usize & mask] = i as u32;
        slots[i].set_stamp(self.head as u32);
        self.head += 1;
    }

    /// Makes slot `i` the most recently used (no record if it already is).
    #[inline]
    pub(crate) fn touch<N: Stamped>(&mut self, slots: &mut [N], i: usize) {
        if self.head == 0 || slots[i].stamp() != (self.head - 1) as u32 {
            self.record(slots, i);
        }
    }

    /// The slot whose record at `pos` is live, if it is.
    #[inline]
    pub(crate) fn live_at<N: Stamped>(&self, slots: &[N], pos: u64) -> Option<usize> {
        let s = self.ring[pos as usize & (self.ring.len() - 1)] as usize;
        (s < slots.len() && slots[s].stamp() == pos as u32).then_some(s)
    }

    /// The most recently used slot.
    #[inline]
    pub(crate) fn newest<N: Stamped>(&self, slots: &[N]) -> Option<usize> {
        if self.head == self.tail {
            return None;
        }
        self.live_at(slots, self.head - 1)
    }

    /// The least recently used slot (skipping stale records for good).
    #[inline]
    pub(crate) fn oldest<N: Stamped>(&mut self, slots: &[N]) -> Option<usize> {
        while self.tail < self.head {
            if let Some(s) = self.live_at(slots, self.tail) {
                return Some(s);
            }
            self.tail += 1;
        }
        None
    }

    /// The entry now in slot `i` moved there from another slot: it keeps
    /// its place in the log, under its new slot number.
    #[inline]
    pub(crate) fn relocated<N: Stamped>(&mut self, slots: &[N], i: usize) {
        let mask = self.ring.len() - 1;
        self.ring[slots[i].stamp() as usize & mask] = i as u32;
    }

    /// Forgets every record (the slab is being emptied); keeps the ring.
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }

    /// Drops stale records and sizes the log to three times the live
    /// entries (rounded up to a power of two), so compaction (O(log))
    /// happens at most once per `2 * len` uses: O(1) amortised. When the
    /// size is unchanged (a full cache in steady state) the live records are
    /// slid down in place: no allocation, no zeroing.
    #[cold]
    fn compact<N: Stamped>(&mut self, slots: &mut [N]) {
        let live = slots.len();
        let cap = (3 * live).max(64).next_power_of_two();
        if cap == self.ring.len() {
            // Record `p` moves to position `w <= p`, whose slot was already
            // read, so nothing unread is overwritten. Positions in the
            // window differ by less than the ring size (< 2^32), so the
            // truncated stamp still names exactly one of them.
            let mask = self.ring.len() - 1;
            let mut w = self.tail;
            for p in self.tail..self.head {
                let s = self.ring[p as usize & mask];
                if let Some(n) = slots.get_mut(s as usize) {
                    if n.stamp() == p as u32 {
                        n.set_stamp(w as u32);
                        self.ring[w as usize & mask] = s;
                        w += 1;
                    }
                }
            }
            self.head = w;
            return;
        }
        let mut ring = Vec::with_capacity(cap);
        for p in self.tail..self.head {
            if let Some(s) = self.live_at(slots, p) {
                ring.push(s as u32);
            }
        }
        for (j, &s) in ring.iter().enumerate() {
            slots[s as usize].set_stamp(j as u32);
        }
        self.tail = 0;
        self.head = ring.len() as u64;
        ring.resize(cap, 0);
        self.ring = ring;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LruCache;

    impl Stamped for u32 {
        fn stamp(&self) -> u32 {
            *self
        }
        fn set_stamp(&mut self, pos: u32) {
            *self = pos;
        }
    }

    /// Slot numbers from the most to the least recently used.
    fn newest_first(log: &RecencyLog, slots: &[u32]) -> Vec<usize> {
        (log.tail()..log.head())
            .rev()
            .filter_map(|p| log.live_at(slots, p))
            .collect()
    }

    /// The log alone, against a `Vec` in recency order: uses, removals
    /// with the last slot moving into the hole (as the cache's slab does),
    /// and evictions from the oldest end, through many compactions that
    /// both resize the ring and slide it in place.
    #[test]
    fn log_agrees_with_recency_list() {
        let mut log = RecencyLog::new();
        let mut slots: Vec<u32> = Vec::new();
        // Entries are numbered in creation order; `entry_in[s]` is the entry
        // in slot `s`, `model` the entries most recent first.
        let mut model: Vec<usize> = Vec::new();
        let mut next_entry = 0usize;
        let mut entry_in: Vec<usize> = Vec::new(); // slot -> entry
        let mut x = 99u32;
        for step in 0..50_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let r = (x >> 16) % 16;
            if slots.len() < 40 && (slots.is_empty() || r < 3) {
                slots.push(0);
                entry_in.push(next_entry);
                model.insert(0, next_entry);
                next_entry += 1;
                let i = slots.len() - 1;
                log.record(&mut slots, i);
            } else if r == 3 {
                let oldest = log.oldest(&slots).unwrap();
                assert_eq!(Some(&entry_in[oldest]), model.last());
                model.pop();
                slots.swap_remove(oldest);
                entry_in.swap_remove(oldest);
                if oldest < slots.len() {
                    log.relocated(&slots, oldest);
                }
            } else if r == 4 {
                let i = ((x >> 8) as usize) % slots.len();
                let e = entry_in[i];
                model.retain(|&m| m != e);
                slots.swap_remove(i);
                entry_in.swap_remove(i);
                if i < slots.len() {
                    log.relocated(&slots, i);
                }
            } else {
                // Skewed: low slots are hot, so many records go stale.
                let i = ((x >> 8) as usize) % slots.len() % (r as usize + 1);
                let e = entry_in[i];
                model.retain(|&m| m != e);
                model.insert(0, e);
                log.touch(&mut slots, i);
            }
            if step % 97 == 0 || slots.is_empty() {
                let got: Vec<usize> = newest_first(&log, &slots)
                    .into_iter()
                    .map(|s| entry_in[s])
                    .collect();
                assert_eq!(got, model, "step {step}");
            }
        }
    }

    /// Hits only, on a full cache: the log fills with stale records and is
    /// compacted in place many times; the order must stay exact.
    #[test]
    fn log_compaction_keeps_exact_order() {
        fn keys(c: &LruCache<u32, u32>) -> Vec<u32> {
            c.iter().map(|(k, _)| *k).collect()
        }
        let cap = 50u32;
        let mut c = LruCache::new(u64::from(cap)).unwrap();
        let mut model: Vec<u32> = Vec::new(); // most recent first
        for k in 0..cap {
            c.insert(k, k);
            model.insert(0, k);
        }
        let mut x = 12345u32;
        for step in 0..20_000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            // Skewed: low keys are hot, so many records go stale.
            let k = (x >> 16) % cap % ((x >> 8) % cap + 1);
            assert_eq!(c.get(&k), Some(&k));
            let at = model.iter().position(|&m| m == k).unwrap();
            model.remove(at);
            model.insert(0, k);
            if step % 1000 == 0 {
                assert_eq!(keys(&c), model);
            }
        }
        assert_eq!(keys(&c), model);
        // Evictions follow the same order.
        for k in 1000..1010 {
            c.insert(k, k);
            let lru = model.pop().unwrap();
            assert!(!c.contains_key(&lru));
            model.insert(0, k);
        }
        assert_eq!(keys(&c), model);
    }
}
