//! `Keyed`: one limiter state per key, with bounded memory.

use std::fmt;
use std::hash::Hash;

use hashbrown::HashTable;

use crate::sync::{AtomicU32, AtomicU64, Ordering, RwLock};
use crate::{Algorithm, BuildError, CheckError, Decision};

/// The fewest entries a shard holds before a full sweep is worth it.
const MIN_SWEEP: usize = 64;

/// The most shards (the shard index takes 16 bits of the key's hash).
const MAX_SHARDS: usize = 1 << 16;

/// A last-seen stamp counts ticks of 2^20 ns (about 1.05 ms) of the
/// template's clock.
const TICK_SHIFT: u32 = 20;

/// The last-seen stamp of a check at `now`: its tick modulo 2^32 (the
/// counter wraps every 2^52 ns, about 52 days; ages are differences modulo
/// 2^32, see [`age`]).
#[inline]
fn tick(now: u64) -> u32 {
    // Truncation is the point: stamps are ticks modulo 2^32.
    (now >> TICK_SHIFT) as u32
}

/// Ticks since `seen` at tick `now`, taking the stamps as modulo 2^32: exact
/// for ages below 2^31 ticks (about 26 days). A stamp up to 2^31 ticks
/// *ahead* of `now` (written by a thread that read the clock after the
/// evicting one) has age 0; an entry idle for more than 2^31 ticks can
/// therefore look recent, which only spares it from eviction.
#[inline]
fn age(now: u32, seen: u32) -> u32 {
    let a = now.wrapping_sub(seen);
    if a > u32::MAX / 2 {
        0
    } else {
        a
    }
}

/// One shard: `(key, cell)` pairs stored inline in a hash table indexed
/// by the hash that also picked the shard (one hash per check), the
/// last-seen stamp of each bucket beside the table, and the length at which
/// the next full sweep runs.
///
/// Aligned to 128 bytes (a pair of cache lines), so that inside its
/// `RwLock` it starts on the line pair after the lock word: every check
/// writes the lock word (taking and releasing the read lock) while the
/// table's header is only read, and two threads on one shard (a hot key)
/// then bounce the lock's line alone instead of re-fetching the header
/// along with it.
#[repr(align(128))]
struct Shard<K, C> {
    table: HashTable<(K, C)>,
    /// `seen[i]`: the tick of the last check (admitted or denied) of the
    /// key in bucket `i` of `table`; meaningless for an empty bucket. Kept
    /// apart so that a table entry stays as small as a key and its state
    /// (16 bytes for `u64` keys and one-word states): the check of a
    /// present key misses in cache on that entry, and a bigger table misses
    /// more. Bucket indices stay valid because hashbrown never rehashes
    /// this table: [`Keyed::grow`] rebuilds it, stamps included, before an
    /// insertion would.
    seen: Box<[AtomicU32]>,
    sweep_at: usize,
}

/// A shard behind its lock: the lock word on one line pair, the shard on
/// the next.
type LockedShard<K, C> = Padded<RwLock<Shard<K, C>>>;

/// A locked shard on cache lines of its own, so neighbours' locks do not
/// share one.
#[repr(align(128))]
struct Padded<T>(T);

// A table entry of a `u64` key and a one-word state (GCRA, token and leaky
// bucket) is 16 bytes, and an empty shard behind its lock 256: the lock's
// line pair, then the shard's. (loom's atomics and locks are bigger.)
#[cfg(not(sysblocks_loom))]
const _: () = {
    assert!(std::mem::size_of::<(u64, AtomicU64)>() == 16);
    assert!(std::mem::size_of::<LockedShard<u64, AtomicU64>>() == 256);
};

/// A rate limiter per key (client IP, API token, ...) for any [`Algorithm`],
/// in a sharded map whose memory stays bounded without the caller doing
/// anything:
///
/// - a key whose state can no longer be told from a new key's (a GCRA key
///   whose theoretical arrival time has passed, an empty window, a full
///   bucket) is dropped: an insertion sweeps its shard whenever the shard
///   has doubled since its last sweep or is full (amortised O(1) per
///   insertion). Dropping such state never changes a decision;
/// - a hard cap of `max_keys`: when a shard is full of live states after
///   its sweep, an eighth of it (at least one key) is evicted: the least
///   recently seen keys, those whose last check (admitted or denied) is
///   oldest, exactly within the shard (keys are spread over shards by
///   hash), so the O(len) selection is paid once per `len / 8` insertions.
///   Only this can forget live state, which makes that key's next request
///   be judged as a new key's.
///
/// "Last seen" is a 32-bit stamp per key counting ticks of 2^20 ns (about
/// 1.05 ms) of the template's clock: keys seen within the same tick are
/// equally recent, and ages are exact up to 2^31 ticks (about 26 days; the
/// counter wraps and ages are taken modulo 2^32, so a key idle for longer
/// than that can look recent). Under concurrent checks of one key the stamp
/// is the tick of one of them.
///
/// Checking a key that is present takes its shard's *read* lock, so threads
/// checking keys of one shard (a hot key, say) proceed together: the
/// lock-free algorithms decide with a compare-and-swap on the key's state
/// word (a denial is one load), the others under a per-key mutex (their
/// [`Algorithm::Cell`]). The stamp is written only when its tick changes.
/// Only an insertion (and the sweeps and evictions it triggers) takes the
/// write lock.
///
/// The template limiter passed to [`Keyed::builder`] supplies the
/// configuration and the clock; its own state is not used.
///
/// # Examples
///
/// ```
/// use sysblocks_rate_limiter::{Gcra, Keyed, ManualClock, Quota};
///
/// let clock = ManualClock::new();
/// let per_ip = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock.clone())?)
///     .max_keys(10_000)
///     .build()?;
/// assert!(per_ip.check_key(&"10.0.0.1").is_allowed());
/// assert!(!per_ip.check_key(&"10.0.0.1").is_allowed());
/// assert!(per_ip.check_key(&"10.0.0.2").is_allowed());
/// assert_eq!(per_ip.len(), 2);
/// # Ok::<(), sysblocks_rate_limiter::BuildError>(())
/// ```
pub struct Keyed<K, A: Algorithm> {
    template: A,
    shards: Box<[LockedShard<K, A::Cell>]>,
    hasher: ahash::RandomState,
    shard_bits: u32,
    shard_cap: usize,
    evictions: AtomicU64,
}

impl<K, A: Algorithm + fmt::Debug> fmt::Debug for Keyed<K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("template", &self.template)
            .field("shards", &self.shards.len())
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Keyed`] limiter.
#[derive(Debug)]
#[must_use]
pub struct KeyedBuilder<A> {
    template: A,
    max_keys: usize,
    shards: Option<usize>,
    seed: Option<u64>,
}

impl<A: Algorithm> KeyedBuilder<A> {
    /// Most keys held at once (default 1,048,576). Memory is bounded by
    /// this times the per-key size.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Number of shards, rounded up to a power of two, at most 65,536
    /// (default: 64 per available core, so that two threads rarely meet on
    /// one shard lock; a shard costs 256 bytes when empty). Fewer than
    /// `max_keys` are used if `max_keys` is small, so that the cap holds
    /// exactly.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// A fixed seed for the shard and map hashers, for reproducible runs.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Builds the keyed limiter.
    ///
    /// # Errors
    ///
    /// [`BuildError::Zero`] for `max_keys` or `shards` of 0;
    /// [`BuildError::TooMany`] for more than 65,536 shards.
    pub fn build<K: Hash + Eq + Clone>(self) -> Result<Keyed<K, A>, BuildError> {
        if self.max_keys == 0 {
            return Err(BuildError::Zero {
                setting: "max_keys",
            });
        }
        let wanted = match self.shards {
            Some(0) => return Err(BuildError::Zero { setting: "shards" }),
            Some(n) if n > MAX_SHARDS => {
                return Err(BuildError::TooMany {
                    setting: "shards",
                    max: MAX_SHARDS,
                })
            }
            Some(n) => n,
            None => default_shards(),
        };
        let mut shards = wanted.next_power_of_two();
        while shards > self.max_keys {
            shards /= 2;
        }
        let shard_cap = self.max_keys / shards;
        let hasher = match self.seed {
            Some(s) => ahash::RandomState::with_seeds(s, s ^ 0x9e37_79b9, s.rotate_left(17), 7),
            None => ahash::RandomState::new(),
        };
        let shards: Box<[_]> = (0..shards)
            .map(|_| {
                Padded(RwLock::new(Shard {
                    table: HashTable::new(),
                    seen: Box::default(),
                    sweep_at: MIN_SWEEP,
                }))
            })
            .collect();
        Ok(Keyed {
            template: self.template,
            shard_bits: shards.len().trailing_zeros(),
            shards,
            hasher,
            shard_cap,
            evictions: AtomicU64::new(0),
        })
    }
}

fn default_shards() -> usize {
    #[cfg(sysblocks_loom)]
    {
        2
    }
    #[cfg(not(sysblocks_loom))]
    {
        std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get) * 64
    }
}

impl<A: Algorithm> Keyed<A, A> {
    /// A builder from a template limiter (configuration and clock).
    pub fn builder(template: A) -> KeyedBuilder<A> {
        KeyedBuilder {
            template,
            max_keys: 1 << 20,
            shards: None,
            seed: None,
        }
    }
}

impl<K: Hash + Eq + Clone, A: Algorithm> Keyed<K, A> {
    /// The shard of a key's hash. Bits 40.. pick it: the table inside
    /// takes its bucket from the low bits and its tag from the top 7, which
    /// must still vary.
    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, A::Cell>> {
        let i = ((hash >> 40) as usize) & ((1usize << self.shard_bits) - 1);
        &self.shards[i].0
    }

    /// [`RateLimiter::check`](crate::RateLimiter::check) for `key`.
    pub fn check_key(&self, key: &K) -> Decision {
        match self.check_key_n(key, 1) {
            Ok(d) => d,
            Err(e) => Decision::from_error(e),
        }
    }

    /// [`RateLimiter::check_n`](crate::RateLimiter::check_n) for `key`.
    ///
    /// # Errors
    ///
    /// [`CheckError::CostExceedsLimit`] as for the template limiter.
    #[inline]
    pub fn check_key_n(&self, key: &K, cost: u32) -> Result<Decision, CheckError> {
        let now = self.template.now_nanos();
        let hash = self.hasher.hash_one(key);
        let lock = self.shard(hash);
        {
            let shard = lock.read();
            if let Some(i) = shard.table.find_bucket_index(hash, |(k, _)| k == key) {
                return self.check_present(&shard, i, now, cost);
            }
        }
        self.check_new(lock, hash, key, now, cost)
    }

    /// Checks the key in bucket `i`: stamps it and decides on its cell.
    #[inline]
    fn check_present(
        &self,
        shard: &Shard<K, A::Cell>,
        i: usize,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        let t = tick(now);
        let seen = &shard.seen[i];
        // Stored only when the tick changes, so that the checks of a hot key
        // (mostly denials, which store nothing) leave its line shared.
        if seen.load(Ordering::Relaxed) != t {
            seen.store(t, Ordering::Relaxed);
        }
        let (_, cell) = shard.table.get_bucket(i).expect("a found bucket is full");
        self.template.decide_cell(cell, now, cost)
    }

    /// Checks a key that was absent under the read lock: under the write
    /// lock, checks it if another thread inserted it meanwhile, or decides
    /// on a fresh state and inserts the result unless it is
    /// fresh-equivalent.
    fn check_new(
        &self,
        lock: &RwLock<Shard<K, A::Cell>>,
        hash: u64,
        key: &K,
        now: u64,
        cost: u32,
    ) -> Result<Decision, CheckError> {
        let mut guard = lock.write();
        let shard = &mut *guard;
        if let Some(i) = shard.table.find_bucket_index(hash, |(k, _)| k == key) {
            return self.check_present(shard, i, now, cost);
        }
        let t = &self.template;
        let mut state = t.fresh_state(now);
        let decision = t.decide(&mut state, now, cost)?;
        if !t.is_fresh_equivalent(&state, now) {
            self.insert(shard, hash, key.clone(), t.new_cell(state), now);
        }
        Ok(decision)
    }

    fn insert(&self, shard: &mut Shard<K, A::Cell>, hash: u64, key: K, cell: A::Cell, now: u64) {
        let t = &self.template;
        if shard.table.len() >= shard.sweep_at.min(self.shard_cap) {
            // Amortised: a sweep costs the shard's length and runs again only
            // after the shard has doubled (or reached its cap).
            shard
                .table
                .retain(|(_, c)| !t.is_cell_fresh_equivalent(c, now));
            if shard.table.len() >= self.shard_cap {
                self.evict_least_recently_seen(shard, now);
            }
            shard.sweep_at = (shard.table.len() * 2).max(MIN_SWEEP);
        }
        if shard.table.capacity() == shard.table.len() {
            self.grow(shard);
        }
        // Room is left, so hashbrown inserts without rehashing: the other
        // buckets keep their stamps.
        let i = shard
            .table
            .insert_unique(hash, (key, cell), |(k, _)| self.hasher.hash_one(k))
            .bucket_index();
        shard.seen[i].store(tick(now), Ordering::Relaxed);
    }

    /// Moves a shard whose table has no room left into a table of twice
    /// its length (at most the shard's cap, at least one more), carrying
    /// each key's stamp to its new bucket.
    fn grow(&self, shard: &mut Shard<K, A::Cell>) {
        let len = shard.table.len();
        let mut table = HashTable::with_capacity((len * 2).min(self.shard_cap).max(len + 1).max(4));
        let seen: Box<[AtomicU32]> = (0..table.num_buckets())
            .map(|_| AtomicU32::new(0))
            .collect();
        let full: Vec<usize> = shard.table.iter_buckets().collect();
        for i in full {
            let stamp = shard.seen[i].load(Ordering::Relaxed);
            let Ok(entry) = shard.table.get_bucket_entry(i) else {
                unreachable!("listed buckets are full")
            };
            let (entry, _) = entry.remove();
            let hash = self.hasher.hash_one(&entry.0);
            let j = table
                .insert_unique(hash, entry, |(k, _)| self.hasher.hash_one(k))
                .bucket_index();
            seen[j].store(stamp, Ordering::Relaxed);
        }
        shard.table = table;
        shard.seen = seen;
    }

    /// Evicts an eighth of a full shard (at least one key, exactly that
    /// many): the keys with the oldest last-seen stamps, so the O(len)
    /// selection is paid once per `len / 8` insertions. Among keys seen in
    /// the same tick at the cut, the selection's order decides.
    fn evict_least_recently_seen(&self, shard: &mut Shard<K, A::Cell>, now: u64) {
        let now = tick(now);
        let len = shard.table.len();
        let count = (self.shard_cap / 8)
            .max(1)
            .min(len)
            .max(len + 1 - self.shard_cap);
        let mut by_age: Vec<(u32, usize)> = shard
            .table
            .iter_buckets()
            .map(|i| (age(now, shard.seen[i].load(Ordering::Relaxed)), i))
            .collect();
        // The `count` oldest come first (in no particular order).
        by_age.select_nth_unstable_by(count - 1, |a, b| b.0.cmp(&a.0));
        for &(_, i) in &by_age[..count] {
            if let Ok(entry) = shard.table.get_bucket_entry(i) {
                entry.remove();
            }
        }
        self.evictions
            .fetch_add((len - shard.table.len()) as u64, Ordering::Relaxed);
    }

    /// Blocks until `cost` cells are admitted for `key`; see
    /// [`RateLimiter::wait_n_with`](crate::RateLimiter::wait_n_with).
    ///
    /// # Errors
    ///
    /// As [`Keyed::check_key_n`]; [`CheckError::EndOfClock`] if the key
    /// could be admitted only beyond the clock's range.
    pub fn wait_key_n_with(
        &self,
        key: &K,
        cost: u32,
        sleeper: &dyn crate::Sleeper,
    ) -> Result<Decision, CheckError> {
        crate::limiter::wait_loop(|| self.check_key_n(key, cost), sleeper)
    }

    /// Drops every key whose state is equivalent to a new key's now. Never
    /// needed for bounded memory; useful before [`Keyed::len`] in tests and
    /// reports.
    pub fn sweep(&self) {
        let now = self.template.now_nanos();
        for shard in self.shards.iter() {
            shard
                .0
                .write()
                .table
                .retain(|(_, c)| !self.template.is_cell_fresh_equivalent(c, now));
        }
    }

    /// Keys held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.read().table.len()).sum()
    }

    /// Whether no key is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys held at once (the `max_keys` cap, rounded down to a
    /// multiple of the shard count).
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shard_cap * self.shards.len()
    }

    /// Live states evicted by the `max_keys` cap so far.
    #[must_use]
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// The template limiter.
    pub fn template(&self) -> &A {
        &self.template
    }
}
