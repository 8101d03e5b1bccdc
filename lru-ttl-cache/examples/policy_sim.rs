//! Offline hit-ratio simulator: keys only, single-threaded, every trace in
//! `../shared/data` at the capacities of `compare --only lru-ttl-cache`.
//! It chose the crate's second policy by measurement: exact LRU against
//! W-TinyLFU (Caffeine's design: count-min sketch of 4-bit counters with
//! periodic halving, optional doorkeeper, window LRU + segmented LRU main
//! 20/80, hill-climbing window) and S3-FIFO (Yang et al., SOSP 2023: small
//! FIFO 10%, main FIFO with a 2-bit frequency, ghost FIFO), in the paper's
//! variant and in libCacheSim's current one.
//!
//! ```text
//! cargo run --release -p sysblocks-lru-ttl-cache --example policy_sim [trace ...]
//! cargo run --release -p sysblocks-lru-ttl-cache --example policy_sim -- --policies=ours,LRU
//! cargo run --release -p sysblocks-lru-ttl-cache --example policy_sim -- \
//!     '--policies=W,W:period=10/decay=0.98/seed=2,W:door/min=128' ps sprite
//! ```
//!
//! `ours` is the crate's own `Policy::WTinyLfu` (through `LruCache`, with
//! its default, randomly keyed hasher; `ours2`, `ours3`: other keys). `W`
//! is a simulated W-TinyLFU with the crate's constants, and
//! `W:knob=value/...` the same with other knobs (see [`Knobs`]: climber
//! period, bounds, decay, restart threshold, step, first direction,
//! sampling only when full, holding on a workload shift, sketch minimum,
//! width, halving period, growth, doorkeeper, protected share, hash seed,
//! ARC-style ghost adaptation instead of the climber; `debug` prints
//! every climb). Rejected this way, on three or four seeds against one
//! compare run's peers: Caffeine's period and decay, sampling only when
//! full, holding on a shift, other sketch sizes and halving periods, the
//! doorkeeper, other protected shares, one lazy sketch growth, and ghost
//! adaptation (a rejected candidate's return says little on a frequency
//! trace: far worse).
//!
//! Replay: for each key, a lookup; on a miss, an insert. Prints one line
//! per trace and capacity, hit ratios in percent.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::PathBuf;

// ----- traces ----------------------------------------------------------------

fn data_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/traces");
    d.is_dir().then_some(d)
}

fn read_all(path: &std::path::Path) -> Vec<u8> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "zst") {
        zstd::Decoder::new(f)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
    } else {
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .unwrap();
    }
    out
}

/// (name, keys) of every trace.
fn traces(filter: &[String]) -> Vec<(String, Vec<u64>)> {
    let dir = data_dir().expect("../shared/data/traces");
    let mut out = Vec::new();
    let want = |n: &str| filter.is_empty() || filter.iter().any(|f| f == n);
    for name in ["OLTP", "P2", "P3", "P6", "P12"] {
        if !want(name) {
            continue;
        }
        let raw = read_all(&dir.join(format!("arc/{name}.lis.zst")));
        let mut keys = Vec::new();
        for line in std::str::from_utf8(&raw).unwrap().lines() {
            let mut f = line.split_whitespace();
            let (Some(s), Some(n)) = (f.next(), f.next()) else {
                continue;
            };
            let (s, n): (u64, u64) = (s.parse().unwrap(), n.parse().unwrap());
            keys.extend(s..s + n);
        }
        out.push((name.to_owned(), keys));
    }
    let mut lirs: Vec<_> = std::fs::read_dir(dir.join("lirs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    lirs.sort();
    for p in lirs {
        let name = p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(".trace.gz")
            .to_owned();
        if !want(&name) {
            continue;
        }
        let raw = read_all(&p);
        let keys = std::str::from_utf8(&raw)
            .unwrap()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "*")
            .map(|l| l.parse().unwrap())
            .collect();
        out.push((name, keys));
    }
    if want("cloudphysics") {
        let raw = read_all(&dir.join("cloudphysics.oracleGeneral.bin.zst"));
        let keys = raw
            .chunks_exact(24)
            .map(|r| u64::from_le_bytes(r[4..12].try_into().unwrap()))
            .collect();
        out.push(("cloudphysics".to_owned(), keys));
    }
    out
}

/// The compare's capacities: fixed on the ARC traces, else shares of the
/// trace's distinct keys.
fn caps(name: &str, keys: &[u64]) -> Vec<u64> {
    match name {
        "OLTP" => vec![1000, 2000, 5000, 10_000, 15_000],
        "P2" | "P3" | "P6" | "P12" => vec![1000, 10_000, 100_000, 500_000, 1_000_000],
        _ => {
            let distinct = keys.iter().collect::<HashSet<_>>().len() as f64;
            [0.02, 0.05, 0.1, 0.2, 0.4]
                .iter()
                .map(|f| ((f * distinct) as u64).max(10))
                .collect()
        }
    }
}

// ----- intrusive lists over a slab --------------------------------------------

const NIL: u32 = u32::MAX;

/// Doubly linked lists over one slab: node `q` (for `q < lists`) is list
/// `q`'s sentinel; `next` walks from the oldest (LRU) to the newest.
struct Lists {
    prev: Vec<u32>,
    next: Vec<u32>,
    list: Vec<u8>,
    key: Vec<u64>,
    len: Vec<usize>,
    free: Vec<u32>,
}

impl Lists {
    fn new(lists: usize) -> Self {
        let ids: Vec<u32> = (0..lists as u32).collect();
        Self {
            prev: ids.clone(),
            next: ids,
            list: (0..lists as u8).collect(),
            key: vec![0; lists],
            len: vec![0; lists],
            free: Vec::new(),
        }
    }
    fn alloc(&mut self, key: u64) -> u32 {
        if let Some(i) = self.free.pop() {
            self.key[i as usize] = key;
            return i;
        }
        self.prev.push(NIL);
        self.next.push(NIL);
        self.list.push(0);
        self.key.push(key);
        (self.key.len() - 1) as u32
    }
    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
        self.len[self.list[i as usize] as usize] -= 1;
    }
    /// Appends `i` as the newest of list `q`.
    fn push(&mut self, q: u8, i: u32) {
        let s = u32::from(q);
        let last = self.prev[s as usize];
        self.next[last as usize] = i;
        self.prev[i as usize] = last;
        self.next[i as usize] = s;
        self.prev[s as usize] = i;
        self.list[i as usize] = q;
        self.len[q as usize] += 1;
    }
    fn oldest(&self, q: u8) -> Option<u32> {
        let n = self.next[q as usize];
        (n != u32::from(q)).then_some(n)
    }
    fn newest(&self, q: u8) -> Option<u32> {
        let n = self.prev[q as usize];
        (n != u32::from(q)).then_some(n)
    }
    fn release(&mut self, i: u32) {
        self.unlink(i);
        self.free.push(i);
    }
}

// ----- policies ----------------------------------------------------------------

trait Policy {
    /// One request: whether it hit (a miss inserts).
    fn access(&mut self, key: u64) -> bool;
}

struct Lru {
    map: HashMap<u64, u32>,
    l: Lists,
    cap: usize,
}

impl Lru {
    fn new(cap: u64) -> Self {
        Self {
            map: HashMap::new(),
            l: Lists::new(1),
            cap: cap as usize,
        }
    }
}

impl Policy for Lru {
    fn access(&mut self, key: u64) -> bool {
        if let Some(&i) = self.map.get(&key) {
            self.l.unlink(i);
            self.l.push(0, i);
            return true;
        }
        if self.map.len() >= self.cap {
            let v = self.l.oldest(0).unwrap();
            self.map.remove(&self.l.key[v as usize]);
            self.l.release(v);
        }
        let i = self.l.alloc(key);
        self.l.push(0, i);
        self.map.insert(key, i);
        false
    }
}

/// The crate's own [`Policy::WTinyLfu`](sysblocks_lru_ttl_cache::Policy),
/// through `LruCache`.
struct Ours(sysblocks_lru_ttl_cache::LruCache<u64, (), ahash::RandomState>);

impl Ours {
    fn new(cap: u64, seed: u64) -> Self {
        Self(
            sysblocks_lru_ttl_cache::LruCache::builder()
                .max_capacity(cap)
                .policy(sysblocks_lru_ttl_cache::Policy::WTinyLfu)
                .hasher(ahash::RandomState::with_seeds(seed, 1, 2, 3))
                .build()
                .unwrap(),
        )
    }
}

impl Policy for Ours {
    fn access(&mut self, key: u64) -> bool {
        if self.0.get(&key).is_some() {
            return true;
        }
        self.0.insert(key, ());
        false
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Count-min sketch of 4-bit counters, four rows packed in `u64` words
/// (16 counters a word), halved every `sample` increments (Caffeine's
/// `FrequencySketch`), with an optional doorkeeper bloom filter in front.
struct Sketch {
    table: Vec<u64>,
    mask: usize,
    size: u64,
    sample: u64,
    door: Option<Vec<u64>>,
}

impl Sketch {
    /// Sized for `entries` (`width` words each), halved every `sample`
    /// increments.
    fn new(entries: u64, sample: u64, doorkeeper: bool, width: u64) -> Self {
        let words = ((entries * width).max(16) as usize).next_power_of_two();
        Self {
            table: vec![0; words],
            mask: words - 1,
            size: 0,
            sample: sample.max(1),
            door: doorkeeper.then(|| vec![0; words]),
        }
    }
    fn slots(&self, key: u64) -> [(usize, u32); 4] {
        let h = mix(key);
        let mut out = [(0, 0); 4];
        for (r, o) in out.iter_mut().enumerate() {
            let hr = mix(h.wrapping_add(r as u64));
            // Word, and counter `4 * r + (hr & 3)` within it: each row its
            // own quarter of the word's counters.
            *o = (
                (hr >> 8) as usize & self.mask,
                (4 * r as u32 + (hr & 3) as u32) * 4,
            );
        }
        out
    }
    fn door_bits(&self, key: u64) -> [(usize, u64); 2] {
        let h = mix(key ^ 0x5555);
        let bits = (self.mask + 1) * 64;
        [
            ((h as usize % bits) / 64, 1 << (h % 64)),
            (((h >> 32) as usize % bits) / 64, 1 << ((h >> 32) % 64)),
        ]
    }
    fn increment(&mut self, key: u64) {
        let b = self.door_bits(key);
        if let Some(door) = self.door.as_mut() {
            if b.iter().any(|&(w, m)| door[w] & m == 0) {
                for (w, m) in b {
                    door[w] |= m;
                }
                return;
            }
        }
        let mut added = false;
        for (w, shift) in self.slots(key) {
            let c = (self.table[w] >> shift) & 15;
            if c < 15 {
                self.table[w] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample {
                self.reset();
            }
        }
    }
    fn frequency(&self, key: u64) -> u32 {
        let f = self
            .slots(key)
            .iter()
            .map(|&(w, shift)| ((self.table[w] >> shift) & 15) as u32)
            .min()
            .unwrap();
        let d = self.door.as_ref().map_or(0, |door| {
            u32::from(self.door_bits(key).iter().all(|&(w, m)| door[w] & m != 0))
        });
        f + d
    }
    fn reset(&mut self) {
        let mut odd = 0u64;
        for t in &mut self.table {
            odd += u64::from((*t & 0x1111_1111_1111_1111).count_ones());
            *t = (*t >> 1) & 0x7777_7777_7777_7777;
        }
        self.size = (self.size - odd / 4) / 2;
        if let Some(d) = self.door.as_mut() {
            d.iter_mut().for_each(|w| *w = 0);
        }
    }
}

const WINDOW: u8 = 0;
const PROBATION: u8 = 1;
const PROTECTED: u8 = 2;

/// The knobs of the simulated W-TinyLFU (`W:` policies on the command
/// line, e.g. `W:period=10/decay=0.98/full`).
#[derive(Clone, Copy, Debug)]
struct Knobs {
    /// Initial window share of the capacity.
    window: f64,
    /// Climber sample period, requests per entry of capacity.
    period: u64,
    /// Longest climber sample period, in requests.
    max_period: u64,
    /// Shortest climber sample period, in requests.
    min_period: u64,
    /// Step decay per period.
    decay: f64,
    /// Hit-ratio change that restarts the step.
    restart: f64,
    /// Step, share of the capacity.
    step: f64,
    /// The climber samples only once the cache is full (Caffeine).
    full: bool,
    /// Whether the climber runs at all.
    climb: bool,
    /// The sketch is sized for at least this many entries.
    min_entries: u64,
    /// Sketch words per entry.
    width: u64,
    /// Sketch halving period, increments per entry it is sized for.
    reset: u64,
    /// Doorkeeper bloom filter in front of the sketch.
    door: bool,
    /// Hash seed (the crate's hasher is randomly keyed).
    seed: u64,
    /// Protected share of main.
    protected: f64,
    /// The sketch starts at 4096 words at most and grows (dropping its
    /// counts) as the cache fills, as the crate's does.
    grow: bool,
    /// The climber's first step grows the window (the crate; Caffeine's
    /// code shrinks it first).
    up: bool,
    /// Print the window size after every climb (stderr).
    debug: bool,
    /// A hit-ratio change past the restart threshold is the workload's,
    /// not the last step's: the window holds (the step still restarts).
    hold: bool,
    /// ARC-style adaptation instead of the climber when non-zero: a miss
    /// on a rejected candidate (window ghost) grows the window, a miss on
    /// an evicted victim (main ghost) shrinks it, by this share of the
    /// capacity times the ghosts' size ratio.
    ghost: f64,
    /// With `grow`: one growth, to the full size, once the cache is half
    /// full (Caffeine, moka), instead of doubling as the cache fills.
    lazy: bool,
}

impl Default for Knobs {
    /// The crate's current constants.
    fn default() -> Self {
        Self {
            window: 0.01,
            period: 80,
            max_period: 1 << 15,
            min_period: 0,
            decay: 0.9,
            restart: 0.05,
            step: 0.0625,
            full: false,
            climb: true,
            min_entries: 256,
            width: 1,
            reset: 10,
            door: false,
            seed: 0,
            protected: 0.8,
            grow: true,
            up: true,
            debug: false,
            hold: false,
            ghost: 0.0,
            lazy: false,
        }
    }
}

impl Knobs {
    /// `key=value` pairs separated by `/`; a bare key sets a flag.
    fn parse(spec: &str) -> Self {
        let mut k = Self::default();
        for kv in spec.split('/').filter(|s| !s.is_empty()) {
            let (key, v) = kv.split_once('=').unwrap_or((kv, "1"));
            let f: f64 = v.parse().unwrap_or_else(|_| panic!("{kv}"));
            match key {
                "window" => k.window = f,
                "period" => k.period = f as u64,
                "max_period" => k.max_period = f as u64,
                "min_period" => k.min_period = f as u64,
                "decay" => k.decay = f,
                "restart" => k.restart = f,
                "step" => k.step = f,
                "full" => k.full = f != 0.0,
                "climb" => k.climb = f != 0.0,
                "min" => k.min_entries = f as u64,
                "width" => k.width = f as u64,
                "reset" => k.reset = f as u64,
                "door" => k.door = f != 0.0,
                "seed" => k.seed = f as u64,
                "protected" => k.protected = f,
                "grow" => k.grow = f != 0.0,
                "up" => k.up = f != 0.0,
                "debug" => k.debug = f != 0.0,
                "hold" => k.hold = f != 0.0,
                "ghost" => k.ghost = f,
                "lazy" => k.lazy = f != 0.0,
                _ => panic!("unknown knob {key}"),
            }
        }
        k
    }
}

/// W-TinyLFU as Caffeine's `BoundedLocalCache`, unweighted, with knobs.
struct WTinyLfu {
    map: HashMap<u64, u32>,
    l: Lists,
    sketch: Sketch,
    k: Knobs,
    cap: i64,
    window_max: i64,
    protected_max: i64,
    /// Requests per climber sample.
    period: u64,
    /// The entries the sketch is sized for, at most.
    entries: u64,
    // Hill climber.
    hits: u64,
    misses: u64,
    prev_rate: f64,
    step: f64,
    adjustment: i64,
    rng: u64,
    /// Ghosts: keys that lost a duel, by where they were (0: candidate
    /// from the window, 1: victim from main), FIFO with sequence numbers.
    ghosts: [VecDeque<(u64, u64)>; 2],
    ghost_map: HashMap<u64, (usize, u64)>,
    ghost_seq: u64,
}

impl WTinyLfu {
    fn new(cap: u64, k: Knobs) -> Self {
        let c = cap as i64;
        let window = (c - ((1.0 - k.window) * c as f64) as i64).max(1);
        let entries = cap.max(k.min_entries);
        let first = if k.grow { entries.min(4096) } else { entries };
        Self {
            map: HashMap::new(),
            l: Lists::new(3),
            sketch: Sketch::new(first, k.reset * first, k.door, k.width),
            entries,
            period: (k.period * cap.max(1)).min(k.max_period).max(k.min_period),
            cap: c,
            window_max: window,
            protected_max: (k.protected * (c - window) as f64) as i64,
            k,
            hits: 0,
            misses: 0,
            prev_rate: 0.0,
            step: if k.up { k.step } else { -k.step } * c as f64,
            adjustment: 0,
            rng: 0x1234_5678,
            ghosts: [VecDeque::new(), VecDeque::new()],
            ghost_map: HashMap::new(),
            ghost_seq: 0,
        }
    }
    fn remember(&mut self, key: u64, which: usize) {
        if self.k.ghost == 0.0 {
            return;
        }
        self.ghost_seq += 1;
        self.ghosts[which].push_back((key, self.ghost_seq));
        self.ghost_map.insert(key, (which, self.ghost_seq));
        while self.ghosts[0].len() + self.ghosts[1].len() > self.cap as usize {
            let w = usize::from(self.ghosts[0].len() < self.ghosts[1].len());
            let (k, seq) = self.ghosts[w].pop_front().unwrap();
            if self.ghost_map.get(&k) == Some(&(w, seq)) {
                self.ghost_map.remove(&k);
            }
        }
    }
    /// A miss on `key`: moves the window by the ghost it hits.
    fn ghost_miss(&mut self, key: u64) {
        let Some((which, _)) = self.ghost_map.remove(&key) else {
            return;
        };
        let (a, b) = (
            self.ghosts[0].len().max(1) as f64,
            self.ghosts[1].len().max(1) as f64,
        );
        let base = (self.k.ghost * self.cap as f64).max(1.0);
        if which == 0 {
            self.adjustment = (base * (b / a).max(1.0)) as i64;
        } else {
            self.adjustment = -((base * (a / b).max(1.0)) as i64);
        }
        self.apply_adjustment();
    }
    fn hash(&self, key: u64) -> u64 {
        mix(key ^ self.k.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn len(&self, q: u8) -> i64 {
        self.l.len[q as usize] as i64
    }
    fn admit(&mut self, cand: u64, victim: u64) -> bool {
        let (c, v) = (
            self.sketch.frequency(self.hash(cand)),
            self.sketch.frequency(self.hash(victim)),
        );
        if c > v {
            return true;
        }
        if c >= 6 {
            // Caffeine: a warm candidate gets in now and then, against
            // hash flooding.
            self.rng = mix(self.rng);
            return self.rng & 127 == 0;
        }
        false
    }
    fn evict(&mut self, i: u32) {
        self.map.remove(&self.l.key[i as usize]);
        self.l.release(i);
    }
    fn demote_protected(&mut self) {
        while self.len(PROTECTED) > self.protected_max {
            let i = self.l.oldest(PROTECTED).unwrap();
            self.l.unlink(i);
            self.l.push(PROBATION, i);
        }
    }
    fn maintain(&mut self) {
        let mut candidates = 0;
        while self.len(WINDOW) > self.window_max {
            let i = self.l.oldest(WINDOW).unwrap();
            self.l.unlink(i);
            self.l.push(PROBATION, i);
            candidates += 1;
        }
        while self.map.len() as i64 > self.cap {
            let cand = if candidates > 0 {
                self.l.newest(PROBATION)
            } else {
                self.l.oldest(WINDOW)
            };
            let victim = self
                .l
                .oldest(PROBATION)
                .or_else(|| self.l.oldest(PROTECTED))
                .or_else(|| self.l.oldest(WINDOW))
                .unwrap();
            candidates -= 1;
            match cand {
                None => self.evict(victim),
                Some(c) if c == victim => self.evict(c),
                Some(c) => {
                    let (ck, vk) = (self.l.key[c as usize], self.l.key[victim as usize]);
                    if self.admit(ck, vk) {
                        self.evict(victim);
                        self.remember(vk, 1);
                    } else {
                        self.evict(c);
                        self.remember(ck, 0);
                    }
                }
            }
        }
        if self.k.climb && self.k.ghost == 0.0 {
            self.climb_step();
        }
    }
    fn climb_step(&mut self) {
        let n = self.hits + self.misses;
        if n < self.period {
            return;
        }
        let rate = self.hits as f64 / n as f64;
        let change = rate - self.prev_rate;
        let mut amount = if change >= 0.0 { self.step } else { -self.step };
        let restart = change.abs() >= self.k.restart;
        self.step = if restart {
            self.k.step * self.cap as f64 * if amount >= 0.0 { 1.0 } else { -1.0 }
        } else {
            self.k.decay * amount
        };
        if self.k.debug {
            eprintln!(
                "rate {:.3} window {} step {:.1}",
                rate, self.window_max, amount
            );
        }
        if restart && self.k.hold {
            amount = 0.0;
        }
        self.prev_rate = rate;
        self.adjustment = amount as i64;
        self.hits = 0;
        self.misses = 0;
        self.apply_adjustment();
    }
    fn apply_adjustment(&mut self) {
        self.demote_protected();
        if self.adjustment > 0 {
            // Grow the window: main's protected share shrinks, and the
            // oldest of main move to the window.
            let mut quota = self.adjustment.min(self.protected_max);
            self.protected_max -= quota;
            self.window_max += quota;
            self.demote_protected();
            for _ in 0..1000 {
                if quota == 0 {
                    break;
                }
                let Some(i) = self
                    .l
                    .oldest(PROBATION)
                    .or_else(|| self.l.oldest(PROTECTED))
                else {
                    break;
                };
                self.l.unlink(i);
                self.l.push(WINDOW, i);
                quota -= 1;
            }
            self.protected_max += quota;
            self.window_max -= quota;
        } else if self.adjustment < 0 && self.window_max > 1 {
            let mut quota = (-self.adjustment).min(self.window_max - 1);
            self.protected_max += quota;
            self.window_max -= quota;
            for _ in 0..1000 {
                if quota == 0 {
                    break;
                }
                let Some(i) = self.l.oldest(WINDOW) else {
                    break;
                };
                self.l.unlink(i);
                self.l.push(PROBATION, i);
                quota -= 1;
            }
            self.protected_max -= quota;
            self.window_max += quota;
        }
    }
    /// Whether the climber counts this request.
    fn sampling(&self) -> bool {
        !self.k.full || self.map.len() as i64 >= self.cap
    }
}

impl Policy for WTinyLfu {
    fn access(&mut self, key: u64) -> bool {
        self.sketch.increment(self.hash(key));
        let sampling = self.sampling();
        if let Some(&i) = self.map.get(&key) {
            self.hits += u64::from(sampling);
            match self.l.list[i as usize] {
                PROBATION => {
                    self.l.unlink(i);
                    self.l.push(PROTECTED, i);
                    self.demote_protected();
                }
                q => {
                    self.l.unlink(i);
                    self.l.push(q, i);
                }
            }
            if self.k.climb && self.k.ghost == 0.0 {
                self.climb_step();
            }
            return true;
        }
        self.misses += u64::from(sampling);
        if self.k.ghost != 0.0 {
            self.ghost_miss(key);
        }
        let words = (self.sketch.mask + 1) as u64;
        let due = if self.k.lazy {
            2 * self.map.len() as u64 >= self.cap as u64
        } else {
            self.map.len() as u64 >= words * self.k.width
        };
        if self.k.grow && due && words < self.entries {
            let e = if self.k.lazy {
                self.entries
            } else {
                (self.map.len() as u64 + 1)
                    .next_power_of_two()
                    .min(self.entries)
            };
            self.sketch = Sketch::new(e, self.k.reset * e, self.k.door, self.k.width);
            self.sketch.increment(self.hash(key));
        }
        let i = self.l.alloc(key);
        self.l.push(WINDOW, i);
        self.map.insert(key, i);
        self.maintain();
        false
    }
}

const SMALL: u8 = 0;
const MAIN: u8 = 1;

/// S3-FIFO. `threshold`: accesses in the small queue that earn a move to
/// main (the paper: 1; libCacheSim's `S3FIFO.c` today: 2). `fill_main`:
/// before the first eviction, a new entry that finds the small queue full
/// goes to main (libCacheSim today; the paper's version does not).
struct S3Fifo {
    map: HashMap<u64, (u8, u8)>,
    q: [VecDeque<u64>; 2],
    ghost: VecDeque<(u64, u64)>,
    ghost_map: HashMap<u64, u64>,
    ghost_seq: u64,
    small_cap: usize,
    main_cap: usize,
    ghost_cap: usize,
    threshold: u8,
    fill_main: bool,
    evicted: bool,
}

impl S3Fifo {
    fn new(cap: u64, small_ratio: f64, threshold: u8, fill_main: bool) -> Self {
        let small = (cap as f64 * small_ratio) as usize;
        Self {
            map: HashMap::new(),
            q: [VecDeque::new(), VecDeque::new()],
            ghost: VecDeque::new(),
            ghost_map: HashMap::new(),
            ghost_seq: 0,
            small_cap: small,
            main_cap: cap as usize - small,
            ghost_cap: (cap as f64 * 0.9) as usize,
            threshold,
            fill_main,
            evicted: false,
        }
    }
    fn ghost_insert(&mut self, key: u64) {
        if self.ghost_cap == 0 || self.ghost_map.contains_key(&key) {
            return;
        }
        while self.ghost_map.len() >= self.ghost_cap {
            let (k, s) = self.ghost.pop_front().unwrap();
            if self.ghost_map.get(&k) == Some(&s) {
                self.ghost_map.remove(&k);
            }
        }
        self.ghost_seq += 1;
        self.ghost.push_back((key, self.ghost_seq));
        self.ghost_map.insert(key, self.ghost_seq);
    }
    fn evict(&mut self) {
        self.evicted = true;
        if self.q[1].len() > self.main_cap || self.q[0].is_empty() {
            while let Some(k) = self.q[1].pop_front() {
                let e = self.map.get_mut(&k).unwrap();
                if e.1 >= 1 {
                    e.1 = e.1.min(3) - 1;
                    self.q[1].push_back(k);
                } else {
                    self.map.remove(&k);
                    return;
                }
            }
        } else {
            while let Some(k) = self.q[0].pop_front() {
                let e = self.map.get_mut(&k).unwrap();
                if e.1 >= self.threshold {
                    *e = (MAIN, 0);
                    self.q[1].push_back(k);
                } else {
                    self.map.remove(&k);
                    self.ghost_insert(k);
                    return;
                }
            }
        }
    }
}

impl Policy for S3Fifo {
    fn access(&mut self, key: u64) -> bool {
        if let Some(e) = self.map.get_mut(&key) {
            e.1 = e.1.saturating_add(1);
            return true;
        }
        let ghost_hit = self.ghost_map.remove(&key).is_some();
        if !ghost_hit && self.small_cap <= 1 {
            return false; // libCacheSim: an object as large as the small queue is not cached
        }
        while self.map.len() >= self.small_cap + self.main_cap {
            self.evict();
        }
        let q = if ghost_hit
            || (self.fill_main && !self.evicted && self.q[0].len() >= self.small_cap)
        {
            MAIN
        } else {
            SMALL
        };
        self.q[q as usize].push_back(key);
        self.map.insert(key, (q, 0));
        false
    }
}

// ----- driver ------------------------------------------------------------------

fn ratio(p: &mut dyn Policy, keys: &[u64]) -> f64 {
    let hits = keys.iter().filter(|&&k| p.access(k)).count();
    100.0 * hits as f64 / keys.len() as f64
}

type Make = Box<dyn Fn(u64) -> Box<dyn Policy>>;

fn main() {
    let (chosen, filter): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .partition(|a| a.starts_with("--policies="));
    let chosen: Vec<&str> = chosen
        .iter()
        .flat_map(|a| a["--policies=".len()..].split(','))
        .collect();
    let fixed: Vec<(&str, Make)> = vec![
        ("ours", Box::new(|c| Box::new(Ours::new(c, 1)))),
        ("ours2", Box::new(|c| Box::new(Ours::new(c, 2)))),
        ("ours3", Box::new(|c| Box::new(Ours::new(c, 3)))),
        ("LRU", Box::new(|c| Box::new(Lru::new(c)))),
        // The simulated W-TinyLFU with the crate's constants.
        (
            "W",
            Box::new(|c| Box::new(WTinyLfu::new(c, Knobs::default()))),
        ),
        (
            "S3-paper",
            Box::new(|c| Box::new(S3Fifo::new(c, 0.1, 1, false))),
        ),
        (
            "S3-lcs",
            Box::new(|c| Box::new(S3Fifo::new(c, 0.1, 2, true))),
        ),
    ];
    let mut policies: Vec<(String, Make)> = Vec::new();
    for (n, make) in fixed {
        if chosen.is_empty() || chosen.contains(&n) {
            policies.push((n.to_owned(), make));
        }
    }
    // `W:knob=v/...`: the simulated W-TinyLFU with other knobs.
    for spec in chosen.iter().filter_map(|c| c.strip_prefix("W:")) {
        let k = Knobs::parse(spec);
        policies.push((
            format!("W:{spec}"),
            Box::new(move |c| Box::new(WTinyLfu::new(c, k))),
        ));
    }
    print!("{:<14}{:>9}", "trace", "cap");
    for (n, _) in &policies {
        print!(" {n:>9}");
    }
    println!();
    for (name, keys) in traces(&filter) {
        for cap in caps(&name, &keys) {
            print!("{name:<14}{cap:>9}");
            for (_, make) in &policies {
                print!(" {:>9.3}", ratio(&mut *make(cap), &keys));
            }
            println!();
        }
    }
}
