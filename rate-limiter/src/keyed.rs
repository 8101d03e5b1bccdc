//! `Keyed`: one limiter state per key, with bounded memory.

use std::fmt;
use std::hash::Hash;

use hashbrown::HashTable;

use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::{Algorithm, BuildError, CheckError, Decision};

/// The fewest entries a shard holds before a full sweep is worth it.
const MIN_SWEEP: usize = 64;

/// The most shards (the shard index takes 16 bits of the key's hash).
const MAX_SHARDS: usize = 1 << 16;

/// One shard: `(key, state)` pairs stored inline in a hash table indexed
/// by the hash that also picked the shard (one hash per check), and the
/// length at which the next full sweep runs. No per-key bookkeeping beyond
/// the state: eviction order comes from [`Algorithm::fresh_at`].
struct Shard<K, S> {
    table: HashTable<(K, S)>,
    sweep_at: usize,
}

/// A locked shard on its own cache line.
type LockedShard<K, S> = Padded<Mutex<Shard<K, S>>>;

/// A shard on its own cache line, so neighbours' locks do not share one.
#[repr(align(128))]
struct Padded<T>(T);

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
///   its sweep, an eighth of it (at least one key) is evicted: the states
///   that would become fresh-equivalent soonest ([`Algorithm::fresh_at`]; for
///   GCRA the smallest theoretical arrival time, i.e. the least recently
///   admitted keys), exactly within the shard (keys are spread over shards
///   by hash). A key being denied keeps its state longest, so an attacker
///   rotating new keys evicts its own one-request keys first. Only this can
///   forget live state, which makes that key's next request be judged as a
///   new key's.
///
/// States are stored inline in each shard's hash table (no per-key
/// allocation, no per-key bookkeeping: a check that is denied writes
/// nothing).
///
/// The template limiter passed to [`Keyed::builder`] supplies the
/// configuration and the clock; its own state is not used.
///
/// # Examples
///
/// ```
/// use rate_limiter::{Gcra, Keyed, ManualClock, Quota};
///
/// let clock = ManualClock::new();
/// let per_ip = Keyed::builder(Gcra::with_clock(Quota::per_second(1), clock.clone())?)
///     .max_keys(10_000)
///     .build()?;
/// assert!(per_ip.check_key(&"10.0.0.1").is_allowed());
/// assert!(!per_ip.check_key(&"10.0.0.1").is_allowed());
/// assert!(per_ip.check_key(&"10.0.0.2").is_allowed());
/// assert_eq!(per_ip.len(), 2);
/// # Ok::<(), rate_limiter::BuildError>(())
/// ```
pub struct Keyed<K, A: Algorithm> {
    template: A,
    shards: Box<[LockedShard<K, A::State>]>,
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
    /// one shard lock; a shard costs 128 bytes when empty). Fewer than `max_keys` are used if `max_keys` is
    /// small, so that the cap holds exactly.
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
                Padded(Mutex::new(Shard {
                    table: HashTable::new(),
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
    fn shard(&self, hash: u64) -> &Mutex<Shard<K, A::State>> {
        let i = ((hash >> 40) as usize) & ((1usize << self.shard_bits) - 1);
        &self.shards[i].0
    }

    /// [`RateLimiter::check`](crate::RateLimiter::check) for `key`.
    pub fn check_key(&self, key: &K) -> Decision {
        match self.check_key_n(key, 1) {
            Ok(d) => d,
            Err(CheckError::CostExceedsLimit { limit, .. }) => Decision::refused(limit),
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
        let mut guard = self.shard(hash).lock();
        let shard = &mut *guard;
        if let Some((_, state)) = shard.table.find_mut(hash, |(k, _)| k == key) {
            return self.template.decide(state, now, cost);
        }
        let mut state = self.template.fresh_state(now);
        let decision = self.template.decide(&mut state, now, cost)?;
        if !self.template.is_fresh_equivalent(&state, now) {
            self.insert(shard, hash, key.clone(), state, now);
        }
        Ok(decision)
    }

    fn insert(&self, shard: &mut Shard<K, A::State>, hash: u64, key: K, state: A::State, now: u64) {
        let t = &self.template;
        if shard.table.len() >= shard.sweep_at.min(self.shard_cap) {
            // Amortised: a sweep costs the shard's length and runs again only
            // after the shard has doubled (or reached its cap).
            shard.table.retain(|(_, s)| !t.is_fresh_equivalent(s, now));
            if shard.table.len() >= self.shard_cap {
                self.evict_soonest_fresh(shard);
            }
            shard.sweep_at = (shard.table.len() * 2).max(MIN_SWEEP);
        }
        shard
            .table
            .insert_unique(hash, (key, state), |(k, _)| self.hasher.hash_one(k));
    }

    /// Evicts an eighth of a full shard (at least one key, exactly that
    /// many): the states with the smallest [`Algorithm::fresh_at`], so the
    /// O(len) selection is paid once per `len / 8` insertions.
    fn evict_soonest_fresh(&self, shard: &mut Shard<K, A::State>) {
        let t = &self.template;
        let len = shard.table.len();
        let count = (self.shard_cap / 8)
            .max(1)
            .min(len)
            .max(len + 1 - self.shard_cap);
        let mut at: Vec<u64> = shard.table.iter().map(|(_, s)| t.fresh_at(s)).collect();
        let (below, &mut cut, _) = at.select_nth_unstable(count - 1);
        // Ties at the cut: evict just enough of them to make `count`.
        let mut ties = count - below.iter().filter(|&&a| a < cut).count();
        shard.table.retain(|(_, s)| {
            let a = t.fresh_at(s);
            if a < cut {
                false
            } else if a == cut && ties > 0 {
                ties -= 1;
                false
            } else {
                true
            }
        });
        self.evictions
            .fetch_add((len - shard.table.len()) as u64, Ordering::Relaxed);
    }

    /// Blocks until `cost` cells are admitted for `key`; see
    /// [`RateLimiter::wait_n_with`](crate::RateLimiter::wait_n_with).
    ///
    /// # Errors
    ///
    /// As [`Keyed::check_key_n`].
    pub fn wait_key_n_with(
        &self,
        key: &K,
        cost: u32,
        sleeper: &dyn crate::Sleeper,
    ) -> Result<Decision, CheckError> {
        loop {
            let d = self.check_key_n(key, cost)?;
            if d.is_allowed() {
                if !d.delay().is_zero() {
                    sleeper.sleep(d.delay());
                }
                return Ok(d);
            }
            let wait = d.retry_after().unwrap_or_default();
            sleeper.sleep(wait.max(std::time::Duration::from_nanos(1)));
        }
    }

    /// Drops every key whose state is equivalent to a new key's now. Never
    /// needed for bounded memory; useful before [`Keyed::len`] in tests and
    /// reports.
    pub fn sweep(&self) {
        let now = self.template.now_nanos();
        for shard in self.shards.iter() {
            shard
                .0
                .lock()
                .table
                .retain(|(_, s)| !self.template.is_fresh_equivalent(s, now));
        }
    }

    /// Keys held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.0.lock().table.len()).sum()
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
