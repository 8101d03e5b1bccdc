//! Property tests: random operation sequences (with weights, TTL, TTI and a
//! manual clock) agree with a plain reference model, a `Vec` kept in
//! recency order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use sysblocks_lru_ttl_cache::{Cache, LruCache, ManualClock, RemovalCause};

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
    ]
}

#[derive(Debug, Clone, Copy)]
struct Config {
    capacity: u64,
    weighted: bool,
    ttl: Option<u64>,
    tti: Option<u64>,
}

fn config() -> impl Strategy<Value = Config> {
    (
        1u64..12,
        any::<bool>(),
        proptest::option::of(1u64..15),
        proptest::option::of(1u64..15),
    )
        .prop_map(|(capacity, weighted, ttl, tti)| Config {
            capacity,
            weighted,
            ttl,
            tti,
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
}

impl Entry {
    fn deadline(&self) -> u64 {
        self.ttl_at.min(self.idle_at)
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
        if w > self.cfg.capacity || ttl == Some(0) {
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
                Op::SetCapacity(_) => {}
                Op::Purge => {
                    c.purge_expired();
                    m.purge();
                }
            }
            prop_assert_eq!(c.len(), m.entries.len(), "len after op {} {:?}", n, op);
            prop_assert_eq!(c.weighted_size(), m.total(), "weight after op {} {:?}", n, op);
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
