//! Property tests: random operation sequences (with weights, TTL, TTI and a
//! manual clock) agree with a plain reference model, a `Vec` kept in
//! recency order. The configurations include an [`Expiry`] policy, and
//! the operations `retain`, `invalidate_entries_if`, `set_capacity` and
//! the entry API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sysblocks_lru_ttl_cache::{Cache, Expiry, LruCache, ManualClock, Policy, RemovalCause};

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Peek(u8),
    Insert(u8, u8),
    InsertTtl(u8, u8, u8),
    Remove(u8),
    PopLru,
    Advance(u8),
    SetCapacity(u8),
    Purge,
    /// Keep the keys whose bit is set.
    Retain(u16),
    /// `entry(k).or_insert(v)` (on `LruCache`: `get`, then `insert` on a miss).
    Entry(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12).prop_map(Op::Get),
        1 => (0u8..12).prop_map(Op::Peek),
        4 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (0u8..12, any::<u8>(), 0u8..20).prop_map(|(k, v, t)| Op::InsertTtl(k, v, t)),
        1 => (0u8..12).prop_map(Op::Remove),
        1 => Just(Op::PopLru),
        2 => (0u8..8).prop_map(Op::Advance),
        1 => (1u8..16).prop_map(Op::SetCapacity),
        1 => Just(Op::Purge),
        1 => any::<u16>().prop_map(Op::Retain),
        2 => (0u8..12, any::<u8>()).prop_map(|(k, v)| Op::Entry(k, v)),
    ]
}

#[derive(Debug, Clone, Copy)]
struct Config {
    capacity: u64,
    weighted: bool,
    ttl: Option<u64>,
    tti: Option<u64>,
    /// With the [`ByValue`] expiry policy.
    policy: bool,
}

/// An expiry policy: an entry lives `v % 7` ns after creation (0: not
/// stored), reads of an even value give it 5 ns more from the read,
/// updates keep the deadline.
struct ByValue;

impl Expiry<u8, u8> for ByValue {
    fn expire_after_create(&self, _k: &u8, v: &u8, _now: Duration) -> Option<Duration> {
        Some(Duration::from_nanos(u64::from(v % 7)))
    }

    fn expire_after_read(
        &self,
        _k: &u8,
        v: &u8,
        _now: Duration,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        if v % 2 == 0 {
            Some(Duration::from_nanos(5))
        } else {
            remaining
        }
    }
}

fn config() -> impl Strategy<Value = Config> {
    (
        1u64..12,
        any::<bool>(),
        proptest::option::of(1u64..15),
        proptest::option::of(1u64..15),
        any::<bool>(),
    )
        .prop_map(|(capacity, weighted, ttl, tti, policy)| Config {
            capacity,
            weighted,
            ttl,
            tti,
            policy,
        })
}

fn weight(cfg: &Config, v: u8) -> u64 {
    if cfg.weighted {
        u64::from(v % 5)
    } else {
        1
    }
}

#[derive(Debug, Clone)]
struct Entry {
    key: u8,
    value: u8,
    weight: u64,
    ttl_at: u64,
    idle_at: u64,
    /// The policy's deadline.
    var_at: u64,
}

impl Entry {
    fn deadline(&self) -> u64 {
        self.ttl_at.min(self.idle_at).min(self.var_at)
    }
}

/// Index 0 is the most recently used.
struct Model {
    cfg: Config,
    now: u64,
    entries: Vec<Entry>,
    events: Vec<(u8, u8, RemovalCause)>,
}

impl Model {
    fn total(&self) -> u64 {
        self.entries.iter().map(|e| e.weight).sum()
    }

    fn purge(&mut self) {
        let now = self.now;
        let mut kept = Vec::new();
        for e in self.entries.drain(..) {
            if e.deadline() <= now {
                self.events.push((e.key, e.value, RemovalCause::Expired));
            } else {
                kept.push(e);
            }
        }
        self.entries = kept;
    }

    fn pos(&self, k: u8) -> Option<usize> {
        self.entries.iter().position(|e| e.key == k)
    }

    fn evict(&mut self, extra: u64) {
        while self.total() + extra > self.cfg.capacity {
            let Some(e) = self.entries.pop() else { break };
            self.events.push((e.key, e.value, RemovalCause::Size));
        }
    }

    fn get(&mut self, k: u8) -> Option<u8> {
        self.purge();
        let i = self.pos(k)?;
        let mut e = self.entries.remove(i);
        if let Some(tti) = self.cfg.tti {
            e.idle_at = self.now + tti;
        }
        if self.cfg.policy && e.value % 2 == 0 {
            e.var_at = self.now + 5;
        }
        let v = e.value;
        self.entries.insert(0, e);
        Some(v)
    }

    fn peek(&self, k: u8) -> Option<u8> {
        let e = &self.entries[self.pos(k)?];
        (e.deadline() > self.now).then_some(e.value)
    }

    fn insert(&mut self, k: u8, v: u8, ttl: Option<u64>) -> Option<u8> {
        self.purge();
        let w = weight(&self.cfg, v);
        let ttl = ttl.or(self.cfg.ttl);
        let old = self.pos(k).map(|i| self.entries.remove(i));
        let var_at = match (&old, self.cfg.policy) {
            (_, false) => u64::MAX,
            (Some(e), true) => e.var_at,
            (None, true) => self.now + u64::from(v % 7),
        };
        if w > self.cfg.capacity || ttl == Some(0) || var_at <= self.now {
            let cause = if w > self.cfg.capacity {
                RemovalCause::Rejected
            } else {
                RemovalCause::Expired
            };
            self.events.push((k, v, cause));
            return old.map(|e| e.value);
        }
        if old.is_none() {
            self.evict(w);
        }
        self.entries.insert(
            0,
            Entry {
                key: k,
                value: v,
                weight: w,
                ttl_at: ttl.map_or(u64::MAX, |t| self.now + t),
                idle_at: self.cfg.tti.map_or(u64::MAX, |t| self.now + t),
                var_at,
            },
        );
        if old.is_some() {
            self.evict(0);
        }
        old.map(|e| e.value)
    }

    fn remove(&mut self, k: u8) -> Option<u8> {
        self.purge();
        let i = self.pos(k)?;
        Some(self.entries.remove(i).value)
    }

    fn pop_lru(&mut self) -> Option<(u8, u8)> {
        self.purge();
        self.entries.pop().map(|e| (e.key, e.value))
    }

    /// Keeps the keys whose bit is set in `mask`.
    fn retain(&mut self, mask: u16) {
        self.purge();
        let mut kept = Vec::new();
        for e in self.entries.drain(..) {
            if mask & (1 << e.key) != 0 {
                kept.push(e);
            } else {
                self.events.push((e.key, e.value, RemovalCause::Explicit));
            }
        }
        self.entries = kept;
    }

    /// `entry(k).or_insert(v)`: the value and whether it is fresh.
    fn entry(&mut self, k: u8, v: u8) -> (u8, bool) {
        match self.get(k) {
            Some(old) => (old, false),
            None => {
                self.insert(k, v, None);
                (v, true)
            }
        }
    }

    fn live_keys(&self) -> Vec<u8> {
        self.entries
            .iter()
            .filter(|e| e.deadline() > self.now)
            .map(|e| e.key)
            .collect()
    }
}

type Events = Arc<Mutex<Vec<(u8, u8, RemovalCause)>>>;

fn build_lru(cfg: &Config, clock: &ManualClock, events: &Events) -> LruCache<u8, u8> {
    let ev = Arc::clone(events);
    let mut b = LruCache::builder()
        .max_capacity(cfg.capacity)
        .clock(clock.clone())
        .eviction_listener(move |k, v, c| ev.lock().unwrap().push((k, v, c)));
    if cfg.weighted {
        b = b.weigher(|_k: &u8, v: &u8| u64::from(*v % 5));
    }
    if let Some(t) = cfg.ttl {
        b = b.time_to_live(Duration::from_nanos(t));
    }
    if let Some(t) = cfg.tti {
        b = b.time_to_idle(Duration::from_nanos(t));
    }
    if cfg.policy {
        b = b.expire_after(ByValue);
    }
    b.build().unwrap()
}

fn sorted(mut v: Vec<(u8, u8, RemovalCause)>) -> Vec<(u8, u8, RemovalCause)> {
    v.sort_by_key(|&(k, v, c)| (k, v, format!("{c:?}")));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn lru_cache_agrees_with_model(cfg in config(), ops in proptest::collection::vec(op(), 1..120)) {
        let clock = ManualClock::new();
        let events: Events = Arc::default();
        let mut c = build_lru(&cfg, &clock, &events);
        let mut m = Model { cfg, now: 0, entries: Vec::new(), events: Vec::new() };
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Get(k) => prop_assert_eq!(c.get(&k).copied(), m.get(k), "op {} {:?}", n, op),
                Op::Peek(k) => {
                    prop_assert_eq!(c.peek(&k).copied(), m.peek(k), "op {} {:?}", n, op);
                    prop_assert_eq!(c.contains_key(&k), m.peek(k).is_some());
                }
                Op::Insert(k, v) => prop_assert_eq!(c.insert(k, v), m.insert(k, v, None), "op {} {:?}", n, op),
                Op::InsertTtl(k, v, t) => prop_assert_eq!(
                    c.insert_with_ttl(k, v, Duration::from_nanos(u64::from(t))),
                    m.insert(k, v, Some(u64::from(t))),
                    "op {} {:?}", n, op
                ),
                Op::Remove(k) => prop_assert_eq!(c.remove(&k), m.remove(k), "op {} {:?}", n, op),
                Op::PopLru => prop_assert_eq!(c.pop_lru(), m.pop_lru(), "op {} {:?}", n, op),
                Op::Advance(d) => {
                    clock.advance(Duration::from_nanos(u64::from(d)));
                    m.now += u64::from(d);
                }
                Op::SetCapacity(cap) => {
                    c.set_capacity(u64::from(cap)).unwrap();
                    m.cfg.capacity = u64::from(cap);
                    m.purge();
                    m.evict(0);
                }
                Op::Purge => {
                    c.purge_expired();
                    m.purge();
                }
                Op::Retain(mask) => {
                    if n % 2 == 0 {
                        c.retain(|k, _| mask & (1 << k) != 0);
                    } else {
                        c.invalidate_entries_if(|k, _| mask & (1 << k) == 0);
                    }
                    m.retain(mask);
                }
                Op::Entry(k, v) => {
                    let got = match c.get(&k) {
                        Some(old) => (*old, false),
                        None => {
                            c.insert(k, v);
                            (v, true)
                        }
                    };
                    prop_assert_eq!(got, m.entry(k, v), "op {} {:?}", n, op);
                }
            }
            prop_assert_eq!(c.len(), m.entries.len(), "len after op {} {:?}", n, op);
            prop_assert_eq!(c.weighted_size(), m.total(), "weight after op {} {:?}", n, op);
            let keys: Vec<u8> = c.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(keys, m.live_keys(), "order after op {} {:?}", n, op);
        }
        prop_assert_eq!(sorted(events.lock().unwrap().clone()), sorted(m.events.clone()));
    }

    /// `Cache` with one shard is the same exact LRU (ops it offers).
    #[test]
    fn one_shard_cache_agrees_with_model(cfg in config(), ops in proptest::collection::vec(op(), 1..120)) {
        let clock = ManualClock::new();
        let events: Events = Arc::default();
        let ev = Arc::clone(&events);
        let mut b = Cache::builder()
            .max_capacity(cfg.capacity)
            .shards(1)
            .clock(clock.clone())
            .eviction_listener(move |k, v, c| ev.lock().unwrap().push((k, v, c)));
        if cfg.weighted {
            b = b.weigher(|_k: &u8, v: &u8| u64::from(*v % 5));
        }
        if let Some(t) = cfg.ttl {
            b = b.time_to_live(Duration::from_nanos(t));
        }
        if let Some(t) = cfg.tti {
            b = b.time_to_idle(Duration::from_nanos(t));
        }
        if cfg.policy {
            b = b.expire_after(ByValue);
        }
        let c: Cache<u8, u8> = b.build().unwrap();
        let mut m = Model { cfg, now: 0, entries: Vec::new(), events: Vec::new() };
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Get(k) | Op::Peek(k) => prop_assert_eq!(c.get(&k), m.get(k), "op {} {:?}", n, op),
                Op::Insert(k, v) => {
                    if let Some(old) = m.insert(k, v, None) {
                        m.events.push((k, old, RemovalCause::Replaced));
                    }
                    c.insert(k, v);
                }
                Op::InsertTtl(k, v, t) => {
                    if let Some(old) = m.insert(k, v, Some(u64::from(t))) {
                        m.events.push((k, old, RemovalCause::Replaced));
                    }
                    c.insert_with_ttl(k, v, Duration::from_nanos(u64::from(t)));
                }
                Op::Remove(_) | Op::PopLru => {
                    let got = c.remove(&k_of(op));
                    let want = m.remove(k_of(op));
                    if let Some(v) = want {
                        m.events.push((k_of(op), v, RemovalCause::Explicit));
                    }
                    prop_assert_eq!(got, want, "op {} {:?}", n, op);
                }
                Op::Advance(d) => {
                    clock.advance(Duration::from_nanos(u64::from(d)));
                    m.now += u64::from(d);
                }
                Op::SetCapacity(cap) => {
                    c.set_capacity(u64::from(cap)).unwrap();
                    prop_assert_eq!(c.max_capacity(), u64::from(cap));
                    m.cfg.capacity = u64::from(cap);
                    m.purge();
                    m.evict(0);
                }
                Op::Purge => {
                    c.purge_expired();
                    m.purge();
                }
                Op::Retain(mask) => {
                    let before = m.events.len();
                    m.retain(mask);
                    if n % 2 == 0 {
                        c.retain(|k, _| mask & (1 << k) != 0);
                    } else {
                        let removed = c.invalidate_entries_if(|k, _| mask & (1 << k) == 0);
                        let want = m.events[before..].iter().filter(|e| e.2 == RemovalCause::Explicit).count();
                        prop_assert_eq!(removed, want, "op {} {:?}", n, op);
                    }
                }
                Op::Entry(k, v) => {
                    let e = c.entry(k).or_insert(v);
                    prop_assert_eq!(e.key(), &k);
                    let got = (*e.value(), e.is_fresh());
                    prop_assert_eq!(got, m.entry(k, v), "op {} {:?}", n, op);
                }
            }
            prop_assert_eq!(c.len(), m.entries.len(), "len after op {} {:?}", n, op);
            prop_assert_eq!(c.weighted_size(), m.total(), "weight after op {} {:?}", n, op);
            let snapshot: Vec<u8> = c.iter().map(|(k, _)| k).collect();
            prop_assert_eq!(snapshot, m.live_keys(), "iter after op {} {:?}", n, op);
        }
        let s = c.stats();
        prop_assert_eq!(s.expirations(), m.events.iter().filter(|e| e.2 == RemovalCause::Expired).count() as u64);
        prop_assert_eq!(sorted(events.lock().unwrap().clone()), sorted(m.events.clone()));
    }
}

fn k_of(op: &Op) -> u8 {
    match *op {
        Op::Remove(k) => k,
        _ => 0,
    }
}

// ----- W-TinyLFU ------------------------------------------------------------------
//
// A plain, slow W-TinyLFU written from the policy's description (Caffeine's
// design as the crate documents it): the queues are `Vec`s oldest first,
// the sketch a flat `Vec<u8>` of counters. Unweighted, no expiry. The real
// cache must make the same decision at every request.

mod wtinylfu {
    use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

    /// A deterministic hasher both sides use.
    #[derive(Default)]
    pub(crate) struct Mul(u64);

    impl Hasher for Mul {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
            }
        }
    }

    pub(crate) type Fixed = BuildHasherDefault<Mul>;

    fn mix(x: u64) -> u64 {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    const W: usize = 0;
    const PROB: usize = 1;
    const PROT: usize = 2;

    pub(crate) struct Model {
        cap: u64,
        /// Window, probation, protected: keys oldest first.
        q: [Vec<u64>; 3],
        counters: Vec<u8>,
        max_words: usize,
        size: u64,
        sample: u64,
        window_max: u64,
        protected_max: u64,
        period: u64,
        hits: u64,
        misses: u64,
        prev_rate: f64,
        step: f64,
        rng: u64,
    }

    fn hash(k: u64) -> u64 {
        Fixed::default().hash_one(k)
    }

    impl Model {
        pub(crate) fn new(cap: u64) -> Self {
            // The sketch is sized for at least 256 entries.
            let max_words = (cap.max(256) as usize)
                .clamp(16, 1 << 30)
                .next_power_of_two();
            let mut m = Self {
                cap,
                q: [Vec::new(), Vec::new(), Vec::new()],
                counters: Vec::new(),
                max_words,
                size: 0,
                sample: 0,
                window_max: 0,
                protected_max: 0,
                period: (cap * 80).min(1 << 15),
                hits: 0,
                misses: 0,
                prev_rate: 0.0,
                // The first step grows the window.
                step: 0.0625 * cap as f64,
                rng: 0x2545_f491_4f6c_dd1d,
            };
            m.window_max = (cap - (cap as f64 * 0.99) as u64).max(1);
            m.protected_max = (0.8 * (cap - m.window_max) as f64) as u64;
            m.resize(max_words.min(1 << 12));
            m
        }

        fn resize(&mut self, words: usize) {
            self.counters = vec![0; 16 * words];
            self.size = 0;
            self.sample = 10 * self.cap.max(256).min(words as u64);
        }

        fn cells(&self, k: u64) -> Vec<usize> {
            let words = self.counters.len() / 16;
            let h = mix(hash(k));
            (0..4u64)
                .map(|r| {
                    let hr = mix(h.wrapping_add(r));
                    ((hr >> 8) as usize % words) * 16 + 4 * r as usize + (hr & 3) as usize
                })
                .collect()
        }

        fn increment(&mut self, k: u64) {
            let mut added = false;
            for c in self.cells(k) {
                if self.counters[c] < 15 {
                    self.counters[c] += 1;
                    added = true;
                }
            }
            if added {
                self.size += 1;
                if self.size >= self.sample {
                    let odd = self.counters.iter().filter(|&&c| c % 2 == 1).count() as u64;
                    self.counters.iter_mut().for_each(|c| *c /= 2);
                    self.size = (self.size - odd / 4) / 2;
                }
            }
        }

        fn freq(&self, k: u64) -> u8 {
            self.cells(k)
                .iter()
                .map(|&c| self.counters[c])
                .min()
                .unwrap()
        }

        fn queue_of(&self, k: u64) -> Option<usize> {
            (0..3).find(|&q| self.q[q].contains(&k))
        }

        fn take(&mut self, k: u64) {
            for q in &mut self.q {
                q.retain(|&x| x != k);
            }
        }

        fn move_to(&mut self, k: u64, q: usize) {
            self.take(k);
            self.q[q].push(k);
        }

        fn demote(&mut self) {
            while self.q[PROT].len() as u64 > self.protected_max {
                let k = self.q[PROT][0];
                self.move_to(k, PROB);
            }
        }

        fn oldest(&self, qs: &[usize]) -> Option<u64> {
            qs.iter().find_map(|&q| self.q[q].first().copied())
        }

        fn len(&self) -> usize {
            self.q.iter().map(Vec::len).sum()
        }

        fn climb(&mut self) {
            let n = self.hits + self.misses;
            if n < self.period {
                return;
            }
            let rate = self.hits as f64 / n as f64;
            let change = rate - self.prev_rate;
            let amount = if change >= 0.0 { self.step } else { -self.step };
            self.step = if change.abs() >= 0.05 {
                0.0625 * self.cap as f64 * if amount >= 0.0 { 1.0 } else { -1.0 }
            } else {
                0.9 * amount
            };
            self.prev_rate = rate;
            self.hits = 0;
            self.misses = 0;
            self.demote();
            if amount > 0.0 {
                let mut quota = (amount as u64).min(self.protected_max);
                self.protected_max -= quota;
                self.window_max += quota;
                self.demote();
                for _ in 0..1000 {
                    match self.oldest(&[PROB, PROT]) {
                        Some(k) if quota >= 1 => {
                            quota -= 1;
                            self.move_to(k, W);
                        }
                        _ => break,
                    }
                }
                self.protected_max += quota;
                self.window_max -= quota;
            } else if amount < 0.0 && self.window_max > 1 {
                let mut quota = ((-amount) as u64).min(self.window_max - 1);
                self.protected_max += quota;
                self.window_max -= quota;
                for _ in 0..1000 {
                    match self.oldest(&[W]) {
                        Some(k) if quota >= 1 => {
                            quota -= 1;
                            self.move_to(k, PROB);
                        }
                        _ => break,
                    }
                }
                self.protected_max -= quota;
                self.window_max += quota;
            }
        }

        fn touch(&mut self, k: u64, q: usize) {
            self.increment(k);
            self.hits += 1;
            if q == PROB {
                self.move_to(k, PROT);
                self.demote();
            } else {
                self.move_to(k, q);
            }
            self.climb();
        }

        /// A lookup: whether it hit.
        pub(crate) fn get(&mut self, k: u64) -> bool {
            match self.queue_of(k) {
                Some(q) => {
                    self.touch(k, q);
                    true
                }
                None => false,
            }
        }

        pub(crate) fn insert(&mut self, k: u64) {
            if let Some(q) = self.queue_of(k) {
                self.touch(k, q);
                return;
            }
            let words = self.counters.len() / 16;
            let entries = self.len() + 1;
            if entries > words && words < self.max_words {
                self.resize(entries.next_power_of_two().min(self.max_words));
            }
            self.increment(k);
            self.misses += 1;
            while self.len() as u64 + 1 > self.cap {
                let mut moved = 0;
                while self.q[W].len() as u64 + 1 > self.window_max && !self.q[W].is_empty() {
                    let k = self.q[W][0];
                    self.move_to(k, PROB);
                    moved += 1;
                }
                let candidate = if moved > 0 {
                    self.q[PROB].last().copied()
                } else {
                    self.q[W].first().copied()
                };
                let victim = self.oldest(&[PROB, PROT, W]).unwrap();
                let out = match candidate {
                    Some(c) if c != victim => {
                        let (fc, fv) = (self.freq(c), self.freq(victim));
                        let admit = if fc > fv {
                            true
                        } else if fc >= 6 {
                            self.rng = mix(self.rng);
                            self.rng & 127 == 0
                        } else {
                            false
                        };
                        if admit {
                            victim
                        } else {
                            c
                        }
                    }
                    _ => victim,
                };
                self.take(out);
            }
            self.q[W].push(k);
            self.climb();
        }

        /// Keys in the cache's iteration order.
        pub(crate) fn order(&self) -> Vec<u64> {
            [W, PROT, PROB]
                .iter()
                .flat_map(|&q| self.q[q].iter().rev().copied())
                .collect()
        }
    }
}

fn tinylfu_cache(cap: u64) -> LruCache<u64, u64, wtinylfu::Fixed> {
    LruCache::builder()
        .max_capacity(cap)
        .policy(Policy::WTinyLfu)
        .hasher(wtinylfu::Fixed::default())
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Gets and inserts on a few hot and many cold keys, at capacities from
    /// 1 to 40 (the climber's period is 80 requests per entry, so the
    /// smallest climb several times): every lookup hits or misses as in the model,
    /// and the entries and their order agree throughout.
    #[test]
    fn wtinylfu_agrees_with_model(
        cap in 1u64..40,
        ops in proptest::collection::vec((any::<bool>(), 0u64..16, 0u64..200), 1..600),
    ) {
        let mut c = tinylfu_cache(cap);
        let mut m = wtinylfu::Model::new(cap);
        for (i, &(get, hot, cold)) in ops.iter().enumerate() {
            // Half the requests go to 16 hot keys.
            let k = if cold % 2 == 0 { hot } else { 16 + cold };
            if get {
                let hit = c.get(&k).is_some();
                prop_assert_eq!(hit, m.get(k), "op {}: get {}", i, k);
                if !hit {
                    c.insert(k, k);
                    m.insert(k);
                }
            } else {
                c.insert(k, k);
                m.insert(k);
            }
            let got: Vec<u64> = c.iter().map(|(k, _)| *k).collect();
            prop_assert_eq!(got, m.order(), "op {}", i);
        }
    }
}

/// The model and the cache on the first 300,000 requests of OLTP at 1000
/// entries (30 climber periods): identical hit or miss at every request.
#[test]
fn wtinylfu_agrees_with_model_on_oltp() {
    use std::io::Read;
    let Some(path) =
        sysblocks_testkit::shared_data(env!("CARGO_MANIFEST_DIR"), "traces/arc/OLTP.lis.zst")
    else {
        return;
    };
    let mut raw = String::new();
    zstd::Decoder::new(std::fs::File::open(path).unwrap())
        .unwrap()
        .read_to_string(&mut raw)
        .unwrap();
    let keys: Vec<u64> = raw
        .lines()
        .flat_map(|l| {
            let mut f = l.split_whitespace();
            let s: u64 = f.next().unwrap().parse().unwrap();
            let n: u64 = f.next().unwrap().parse().unwrap();
            s..s + n
        })
        .take(300_000)
        .collect();
    let mut c = tinylfu_cache(1000);
    let mut m = wtinylfu::Model::new(1000);
    let mut hits = 0;
    for (i, &k) in keys.iter().enumerate() {
        let hit = c.get(&k).is_some();
        assert_eq!(hit, m.get(k), "request {i}: {k}");
        if hit {
            hits += 1;
        } else {
            c.insert(k, k);
            m.insert(k);
        }
    }
    assert!(hits > 0);
    assert_eq!(c.iter().map(|(k, _)| *k).collect::<Vec<_>>(), m.order());
}

// ----- the new operations under W-TinyLFU -------------------------------------------
//
// W-TinyLFU's choice of victim has its own model above; here the reference
// model is the ledger every policy must keep: each value written is, at
// every step, either in the cache or reported once to the listener, the
// weight never exceeds the capacity, `retain` and `invalidate_entries_if`
// leave exactly the kept keys, `iter` agrees with `len` and the weights,
// and the entry API is fresh exactly when the key was absent.

#[derive(Debug, Clone)]
enum BulkOp {
    Insert(u8, u8),
    Get(u8),
    Entry(u8, u8),
    Retain(u16),
    Invalidate(u16),
    SetCapacity(u8),
    Remove(u8),
}

fn bulk_op() -> impl Strategy<Value = BulkOp> {
    prop_oneof![
        4 => (0u8..12, any::<u8>()).prop_map(|(k, v)| BulkOp::Insert(k, v)),
        3 => (0u8..12).prop_map(BulkOp::Get),
        3 => (0u8..12, any::<u8>()).prop_map(|(k, v)| BulkOp::Entry(k, v)),
        1 => any::<u16>().prop_map(BulkOp::Retain),
        1 => any::<u16>().prop_map(BulkOp::Invalidate),
        1 => (2u8..24).prop_map(BulkOp::SetCapacity),
        1 => (0u8..12).prop_map(BulkOp::Remove),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn new_operations_keep_the_ledger_under_both_policies(
        tinylfu in any::<bool>(),
        weighted in any::<bool>(),
        shards in 1usize..3,
        ops in proptest::collection::vec(bulk_op(), 1..150),
    ) {
        let events: Events = Arc::default();
        let ev = Arc::clone(&events);
        let policy = if tinylfu { Policy::WTinyLfu } else { Policy::Lru };
        let mut b = Cache::builder()
            .max_capacity(8)
            .shards(shards)
            .policy(policy)
            .eviction_listener(move |k, v, c| ev.lock().unwrap().push((k, v, c)));
        if weighted {
            b = b.weigher(|_k: &u8, v: &u8| u64::from(*v % 4));
        }
        let c: Cache<u8, u8> = b.build().unwrap();
        // The live value per key, as the ledger says.
        let mut live: std::collections::HashMap<u8, u8> = Default::default();
        let mut capacity = 8u64;
        for (n, op) in ops.iter().enumerate() {
            match *op {
                BulkOp::Insert(k, v) => {
                    c.insert(k, v);
                    live.insert(k, v);
                }
                BulkOp::Get(k) => {
                    let _ = c.get(&k);
                }
                BulkOp::Entry(k, v) => {
                    let present = c.contains_key(&k);
                    let e = c.entry(k).or_insert(v);
                    prop_assert_eq!(e.is_fresh(), !present, "op {} {:?}", n, op);
                    if e.is_fresh() {
                        prop_assert_eq!(*e.value(), v);
                        live.insert(k, v);
                    } else {
                        prop_assert_eq!(Some(e.value()), live.get(&k));
                    }
                }
                BulkOp::Retain(mask) => {
                    c.retain(|k, _| mask & (1 << k) != 0);
                    for k in 0..12u8 {
                        if mask & (1 << k) == 0 {
                            prop_assert!(!c.contains_key(&k));
                        }
                    }
                }
                BulkOp::Invalidate(mask) => {
                    let before = c.len();
                    let removed = c.invalidate_entries_if(|k, _| mask & (1 << k) != 0);
                    prop_assert_eq!(c.len(), before - removed);
                    for k in 0..12u8 {
                        if mask & (1 << k) != 0 {
                            prop_assert!(!c.contains_key(&k));
                        }
                    }
                }
                BulkOp::SetCapacity(cap) => {
                    let cap = u64::from(cap).max(shards as u64);
                    c.set_capacity(cap).unwrap();
                    capacity = cap;
                }
                BulkOp::Remove(k) => {
                    let got = c.remove(&k);
                    if let Some(v) = got {
                        prop_assert_eq!(Some(&v), live.get(&k));
                    }
                }
            }
            // The ledger: what the listener reported has left (a `Replaced`
            // value was already overwritten in `live`).
            for (k, v, cause) in events.lock().unwrap().drain(..) {
                if cause != RemovalCause::Replaced {
                    prop_assert_eq!(live.remove(&k), Some(v), "op {} {:?}: {:?}", n, op, cause);
                }
            }
            let snapshot: std::collections::HashMap<u8, u8> = c.iter().collect();
            prop_assert_eq!(&snapshot, &live, "op {} {:?}", n, op);
            prop_assert_eq!(c.len(), live.len());
            let weight: u64 = if weighted {
                live.values().map(|v| u64::from(v % 4)).sum()
            } else {
                live.len() as u64
            };
            prop_assert_eq!(c.weighted_size(), weight);
            prop_assert!(c.weighted_size() <= capacity, "op {} {:?}", n, op);
        }
    }
}
