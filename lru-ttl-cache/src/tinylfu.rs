//! W-TinyLFU, the [`Policy::WTinyLfu`](crate::Policy::WTinyLfu) order of a
//! shard's slots: Caffeine's design (Einziger, Friedman and Manes,
//! "TinyLFU: A Highly Efficient Cache Admission Policy", ACM ToS 2017;
//! Einziger et al., "Adaptive Software Cache Management", Middleware 2018).
//!
//! - New entries enter a small LRU *window* (1% of the capacity at first).
//! - The rest is a segmented LRU *main* space: *probation* (entries that
//!   came from the window) and *protected* (80% of main: entries hit while
//!   in probation). A protected overflow demotes its oldest to probation.
//! - When the window overflows, its oldest entry becomes a *candidate* for
//!   main and duels the *victim*, the oldest in probation: the one a
//!   [`Sketch`] says was used more often stays (ties keep the victim, and a
//!   warm candidate wins one duel in 128 at random, against hash flooding).
//! - A hill climber resizes the window: every sample period (80 requests
//!   per entry of capacity, at most 2^15 requests) it compares the hit
//!   ratio with the previous period's and keeps stepping the window the
//!   same way if it improved, the other way if not; the step (6.25% of the
//!   capacity) decays by 10% per period and restarts after a change of 5
//!   points. The first step grows the window, as in the paper's
//!   description of hill climbing (Caffeine's code shrinks it first, which
//!   from a 1% window is a wasted period). Recency-biased traces grow the
//!   window toward LRU, frequency-biased ones shrink it. The period is
//!   capped so that a large cache adapts within a trace of a few million
//!   requests.
//! - Tuning against Caffeine's defaults (10 requests per entry, 2% decay),
//!   by replaying the LIRS and CloudPhysics traces at the capacities of
//!   `compare --only lru-ttl-cache` (`examples/policy_sim.rs`, several
//!   hasher seeds): a longer period for small caches and a faster decay
//!   settle the window instead of letting it wander on sampling noise, and
//!   a sketch sized for at least 256 entries (moka sizes its own for at
//!   least 128) keeps the counts of a small cache from ageing out before
//!   keys recur, which is what lets it hold a frequent set on a loop.
//! - What the climber cannot do: on a trace of a few thousand requests
//!   (most LIRS traces) it gets one or two sample periods, so the window
//!   stays near its start; and on a trace whose hit ratio swings by tens
//!   of points between periods (`sprite`), the swings, not the steps,
//!   decide its direction.
//!
//! The queues are doubly linked lists over the shard's slab (8 bytes per
//! entry); the queue of a slot lives in the slot itself.

use crate::recency::Stamped;

const NIL: u32 = u32::MAX;

/// The queues. A slot's queue is its [`Stamped`] stamp.
pub(crate) const WINDOW: u32 = 0;
pub(crate) const PROBATION: u32 = 1;
pub(crate) const PROTECTED: u32 = 2;

/// Frequency counters at most this high (4 bits).
const MAX_COUNT: u64 = 15;
/// The climber's longest sample period, in requests.
const MAX_PERIOD: u64 = 1 << 15;
/// The climber's sample period per entry of capacity, in requests.
const PERIOD_PER_ENTRY: u64 = 80;
/// The climber's step decay per period.
const STEP_DECAY: f64 = 0.9;
/// The sketch counts as if the cache held at least this many entries.
const MIN_SKETCH_ENTRIES: u64 = 256;
/// Sketch words allocated before the cache has grown (at most).
const MIN_WORDS: usize = 16;

/// Spreads a key hash (SplitMix64's finaliser).
#[inline]
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A count-min sketch of 4-bit counters: four rows, each a quarter of the
/// 16 counters of the words it picks, so a key's four counters live in
/// four words. Every `sample` increments all counters are halved, so the
/// sketch estimates recent frequency (Caffeine's `FrequencySketch`).
pub(crate) struct Sketch {
    table: Vec<u64>,
    /// Increments since the last halving.
    size: u64,
    /// Increments between halvings: ten per entry it is sized for.
    sample: u64,
    /// The most words the sketch grows to.
    max_words: usize,
    /// The entries it is sized for, at most.
    entries: u64,
}

impl Sketch {
    /// A sketch for up to `entries` entries, one word per entry (rounded
    /// up to a power of two); it starts small and grows with the cache.
    pub(crate) fn new(entries: u64) -> Self {
        let entries = entries.max(MIN_SKETCH_ENTRIES);
        let max_words = usize::try_from(entries)
            .unwrap_or(usize::MAX)
            .clamp(MIN_WORDS, 1 << 30)
            .next_power_of_two();
        let mut s = Self {
            table: Vec::new(),
            size: 0,
            sample: 0,
            max_words,
            entries: entries.max(1),
        };
        s.resize(max_words.min(1 << 12));
        s
    }

    fn resize(&mut self, words: usize) {
        self.table = vec![0; words];
        self.size = 0;
        self.sample = 10 * self.entries.min(words as u64);
    }

    /// Grows the sketch (dropping its counts, as Caffeine does) once the
    /// cache holds more entries than it has words.
    #[inline]
    pub(crate) fn ensure(&mut self, entries: usize) {
        if entries > self.table.len() && self.table.len() < self.max_words {
            let words = entries.next_power_of_two().min(self.max_words);
            self.resize(words);
        }
    }

    #[inline]
    fn cells(&self, hash: u64) -> [(usize, u32); 4] {
        let mask = self.table.len() - 1;
        let h = mix(hash);
        let mut out = [(0, 0); 4];
        for (r, cell) in out.iter_mut().enumerate() {
            let hr = mix(h.wrapping_add(r as u64));
            *cell = (
                (hr >> 8) as usize & mask,
                (4 * r as u32 + (hr & 3) as u32) * 4,
            );
        }
        out
    }

    /// Counts one use of the key with this hash.
    pub(crate) fn increment(&mut self, hash: u64) {
        let mut added = false;
        for (w, shift) in self.cells(hash) {
            if (self.table[w] >> shift) & MAX_COUNT < MAX_COUNT {
                self.table[w] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample {
                self.halve();
            }
        }
    }

    /// The estimated recent uses of the key with this hash.
    pub(crate) fn frequency(&self, hash: u64) -> u64 {
        self.cells(hash)
            .iter()
            .map(|&(w, shift)| (self.table[w] >> shift) & MAX_COUNT)
            .min()
            .unwrap_or(0)
    }

    fn halve(&mut self) {
        let mut odd = 0u64;
        for t in &mut self.table {
            odd += u64::from((*t & 0x1111_1111_1111_1111).count_ones());
            *t = (*t >> 1) & 0x7777_7777_7777_7777;
        }
        self.size = (self.size - odd / 4) / 2;
    }
}

#[derive(Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

/// The W-TinyLFU order over a slab of [`Stamped`] slots (the stamp is the
/// slot's queue). Weights are in capacity units; `weights` is empty when
/// every entry weighs 1.
pub(crate) struct TinyLfu {
    links: Vec<Link>,
    /// Oldest and newest slot of each queue.
    head: [u32; 3],
    tail: [u32; 3],
    /// Weight in each queue.
    weight: [u64; 3],
    window_max: u64,
    protected_max: u64,
    capacity: u64,
    pub(crate) sketch: Sketch,
    // Hill climber.
    period: u64,
    hits: u64,
    misses: u64,
    prev_rate: f64,
    step: f64,
    rng: u64,
}

#[inline]
fn weight_of(weights: &[u64], i: usize) -> u64 {
    weights.get(i).copied().unwrap_or(1)
}

impl TinyLfu {
    /// An empty order for a shard of `capacity` (entries, or weight).
    pub(crate) fn new(capacity: u64, reserve: usize) -> Self {
        let mut t = Self {
            links: Vec::with_capacity(reserve),
            head: [NIL; 3],
            tail: [NIL; 3],
            weight: [0; 3],
            window_max: 0,
            protected_max: 0,
            capacity,
            sketch: Sketch::new(capacity),
            period: capacity.saturating_mul(PERIOD_PER_ENTRY).min(MAX_PERIOD),
            hits: 0,
            misses: 0,
            prev_rate: 0.0,
            step: 0.0,
            rng: 0x2545_f491_4f6c_dd1d,
        };
        t.set_capacity(capacity);
        t
    }

    /// Resets the segment sizes for a new capacity: window 1%, protected
    /// 80% of the rest (the climber starts over, its first step growing the
    /// window).
    pub(crate) fn set_capacity(&mut self, capacity: u64) {
        let main = (capacity as f64 * 0.99) as u64;
        self.capacity = capacity;
        self.window_max = (capacity - main).max(1);
        self.protected_max = (0.8 * capacity.saturating_sub(self.window_max) as f64) as u64;
        self.step = 0.0625 * capacity as f64;
        self.period = capacity.saturating_mul(PERIOD_PER_ENTRY).min(MAX_PERIOD);
    }

    fn unlink<N: Stamped>(&mut self, slots: &[N], i: usize, w: u64) {
        let q = slots[i].stamp() as usize;
        let Link { prev, next } = self.links[i];
        match prev {
            NIL => self.head[q] = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tail[q] = prev,
            n => self.links[n as usize].prev = prev,
        }
        self.weight[q] -= w;
    }

    /// Appends slot `i` as the newest of queue `q`.
    fn push<N: Stamped>(&mut self, slots: &mut [N], i: usize, q: u32, w: u64) {
        let qi = q as usize;
        let last = self.tail[qi];
        self.links[i] = Link {
            prev: last,
            next: NIL,
        };
        match last {
            NIL => self.head[qi] = i as u32,
            l => self.links[l as usize].next = i as u32,
        }
        self.tail[qi] = i as u32;
        self.weight[qi] += w;
        slots[i].set_stamp(q);
    }

    fn move_to<N: Stamped>(&mut self, slots: &mut [N], w: &[u64], i: usize, q: u32) {
        let wi = weight_of(w, i);
        self.unlink(slots, i, wi);
        self.push(slots, i, q, wi);
    }

    fn oldest(&self, q: u32) -> Option<usize> {
        let h = self.head[q as usize];
        (h != NIL).then_some(h as usize)
    }

    fn newest(&self, q: u32) -> Option<usize> {
        let t = self.tail[q as usize];
        (t != NIL).then_some(t as usize)
    }

    /// A miss that will insert the key with this hash into a slab of
    /// `len` slots: it counts in the sketch (before the eviction's duels,
    /// as when Caffeine adds the entry first) and in the climber's sample.
    pub(crate) fn missed(&mut self, hash: u64, len: usize) {
        self.sketch.ensure(len);
        self.sketch.increment(hash);
        self.misses += 1;
    }

    /// Slot `i` (weight in `w`) was just appended to the slab, after
    /// [`missed`](Self::missed): it joins the window.
    pub(crate) fn inserted<N: Stamped>(&mut self, slots: &mut [N], w: &[u64], i: usize) {
        if self.links.len() <= i {
            self.links.resize(
                i + 1,
                Link {
                    prev: NIL,
                    next: NIL,
                },
            );
        }
        self.push(slots, i, WINDOW, weight_of(w, i));
        self.climb(slots, w);
    }

    /// A hit on slot `i` (or a replacing insert): it counts, and moves up.
    pub(crate) fn touched<N: Stamped>(&mut self, slots: &mut [N], w: &[u64], i: usize, hash: u64) {
        self.sketch.increment(hash);
        self.hits += 1;
        match slots[i].stamp() {
            PROBATION => {
                self.move_to(slots, w, i, PROTECTED);
                self.demote(slots, w);
            }
            q => self.move_to(slots, w, i, q),
        }
        self.climb(slots, w);
    }

    /// Slot `i` is leaving the slab (before its `swap_remove`).
    pub(crate) fn removed<N: Stamped>(&mut self, slots: &[N], w: &[u64], i: usize) {
        self.unlink(slots, i, weight_of(w, i));
    }

    /// The slab's last slot moved into slot `i` (after the `swap_remove`):
    /// it keeps its place under its new number.
    pub(crate) fn relocated<N: Stamped>(&mut self, slots: &[N], i: usize) {
        let last = slots.len();
        let link = self.links[last];
        self.links[i] = link;
        let q = slots[i].stamp() as usize;
        match link.prev {
            NIL => self.head[q] = i as u32,
            p => self.links[p as usize].next = i as u32,
        }
        match link.next {
            NIL => self.tail[q] = i as u32,
            n => self.links[n as usize].prev = i as u32,
        }
    }

    /// Forgets every slot.
    pub(crate) fn clear(&mut self) {
        self.head = [NIL; 3];
        self.tail = [NIL; 3];
        self.weight = [0; 3];
    }

    /// Protected overflow: its oldest entries go back to probation.
    fn demote<N: Stamped>(&mut self, slots: &mut [N], w: &[u64]) {
        while self.weight[PROTECTED as usize] > self.protected_max {
            let Some(i) = self.oldest(PROTECTED) else {
                break;
            };
            self.move_to(slots, w, i, PROBATION);
        }
    }

    fn admit(&mut self, candidate: u64, victim: u64) -> bool {
        let c = self.sketch.frequency(candidate);
        if c > self.sketch.frequency(victim) {
            return true;
        }
        if c >= 6 {
            // A warm candidate wins now and then, so that an attacker who
            // inflates a victim's counters cannot pin it (Caffeine).
            self.rng = mix(self.rng);
            return self.rng & 127 == 0;
        }
        false
    }

    /// The slot to evict so that an entry of weight `incoming` fits: the
    /// window's overflow (counting the incoming entry) first moves to
    /// probation, then its newest candidate duels probation's oldest.
    /// `hash_of` gives a slot's key hash. `None` when the cache is empty.
    pub(crate) fn victim<N: Stamped>(
        &mut self,
        slots: &mut [N],
        w: &[u64],
        incoming: u64,
        hash_of: impl Fn(&[N], usize) -> u64,
    ) -> Option<usize> {
        let mut candidates = 0usize;
        while self.weight[WINDOW as usize].saturating_add(incoming) > self.window_max {
            let Some(i) = self.oldest(WINDOW) else {
                break;
            };
            self.move_to(slots, w, i, PROBATION);
            candidates += 1;
        }
        let candidate = if candidates > 0 {
            self.newest(PROBATION)
        } else {
            self.oldest(WINDOW)
        };
        let victim = self
            .oldest(PROBATION)
            .or_else(|| self.oldest(PROTECTED))
            .or_else(|| self.oldest(WINDOW))?;
        Some(match candidate {
            Some(c) if c != victim => {
                if self.admit(hash_of(slots, c), hash_of(slots, victim)) {
                    victim
                } else {
                    c
                }
            }
            _ => victim,
        })
    }

    /// The slot [`victim`](Self::victim) would pick first without an
    /// incoming entry and without a duel: probation's oldest, else
    /// protected's, else the window's.
    pub(crate) fn first_out(&self) -> Option<usize> {
        self.oldest(PROBATION)
            .or_else(|| self.oldest(PROTECTED))
            .or_else(|| self.oldest(WINDOW))
    }

    /// Slots in iteration order: the window from its newest, then
    /// protected, then probation, each from its newest.
    pub(crate) fn walk(&self, cursor: &mut (u32, u32)) -> Option<usize> {
        // cursor: (queue index in ORDER, next slot or NIL to start it).
        const ORDER: [u32; 3] = [WINDOW, PROTECTED, PROBATION];
        loop {
            let (qi, at) = *cursor;
            let q = *ORDER.get(qi as usize)?;
            let slot = if at == NIL { self.tail[q as usize] } else { at };
            if slot == NIL || at == NIL - 1 {
                *cursor = (qi + 1, NIL);
                continue;
            }
            let prev = self.links[slot as usize].prev;
            *cursor = (qi, if prev == NIL { NIL - 1 } else { prev });
            return Some(slot as usize);
        }
    }

    /// One hill-climbing step at the end of each sample period.
    fn climb<N: Stamped>(&mut self, slots: &mut [N], w: &[u64]) {
        let n = self.hits + self.misses;
        if n < self.period {
            return;
        }
        let rate = self.hits as f64 / n as f64;
        let change = rate - self.prev_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= 0.05 {
            0.0625 * self.capacity as f64 * if amount >= 0.0 { 1.0 } else { -1.0 }
        } else {
            STEP_DECAY * amount
        };
        self.prev_rate = rate;
        self.hits = 0;
        self.misses = 0;
        self.demote(slots, w);
        // Saturating casts: a NaN or huge step moves nothing or everything.
        if amount > 0.0 {
            self.grow_window(slots, w, amount as u64);
        } else if amount < 0.0 {
            self.shrink_window(slots, w, (-amount) as u64);
        }
    }

    /// Moves up to `amount` of capacity from protected to the window, and
    /// main's oldest entries (at most 1000 per step) with it.
    fn grow_window<N: Stamped>(&mut self, slots: &mut [N], w: &[u64], amount: u64) {
        let mut quota = amount.min(self.protected_max);
        self.protected_max -= quota;
        self.window_max += quota;
        self.demote(slots, w);
        for _ in 0..1000 {
            let Some(i) = self.oldest(PROBATION).or_else(|| self.oldest(PROTECTED)) else {
                break;
            };
            let wi = weight_of(w, i);
            if wi > quota {
                break;
            }
            quota -= wi;
            self.move_to(slots, w, i, WINDOW);
        }
        self.protected_max += quota;
        self.window_max -= quota;
    }

    /// Moves up to `amount` of capacity from the window (never below 1) to
    /// protected, and the window's oldest entries to probation.
    fn shrink_window<N: Stamped>(&mut self, slots: &mut [N], w: &[u64], amount: u64) {
        if self.window_max <= 1 {
            return;
        }
        let mut quota = amount.min(self.window_max - 1);
        self.protected_max += quota;
        self.window_max -= quota;
        for _ in 0..1000 {
            let Some(i) = self.oldest(WINDOW) else {
                break;
            };
            let wi = weight_of(w, i);
            if wi > quota {
                break;
            }
            quota -= wi;
            self.move_to(slots, w, i, PROBATION);
        }
        self.protected_max -= quota;
        self.window_max += quota;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_counts_and_halves() {
        let mut s = Sketch::new(64);
        for _ in 0..5 {
            s.increment(42);
        }
        assert!(s.frequency(42) >= 5);
        assert_eq!(s.frequency(43).min(1), s.frequency(43).min(1));
        for _ in 0..40 {
            s.increment(7);
        }
        assert_eq!(s.frequency(7), MAX_COUNT);
        s.halve();
        assert_eq!(s.frequency(7), MAX_COUNT / 2);
    }

    #[test]
    fn sketch_grows_with_the_cache() {
        let mut s = Sketch::new(1 << 20);
        assert_eq!(s.table.len(), 1 << 12);
        s.ensure(5000);
        assert_eq!(s.table.len(), 1 << 13);
        s.ensure(1 << 22);
        assert_eq!(s.table.len(), 1 << 20);
    }
}
