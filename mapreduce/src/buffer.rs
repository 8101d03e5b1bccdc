//! A map task's in-memory buffer: one hash table of distinct keys with
//! their (combined) values, and its sorted form, the in-memory run.

use std::borrow::Borrow;
use std::hash::Hash;
use std::mem::size_of;

use hashbrown::HashTable;

use crate::codec::Codec;
use crate::error::TaskError;
use crate::partition::Partitioner;

/// A job's combine function ([`Job::combine`](crate::Job::combine)) as the
/// buffer and the merge call it.
pub(crate) type CombineFn<'a, K, V> = dyn Fn(&K, &mut V, V) -> Option<V> + 'a;

/// The seeds of the key hash. Fixed, so that a key lands in the same
/// partition in every run of one build.
const SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The hasher every task uses for keys.
pub(crate) fn key_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3])
}

/// No values beyond `first`.
const NO_MORE: u32 = u32::MAX;

/// One distinct key of a task with its values: `first`, plus, when the
/// combiner kept some separate, the list `more` indexes in the buffer's
/// side store (so that an entry of a combining job stays small: 48 bytes
/// for a [`Word`](crate::Word) and a `u64`).
#[derive(Debug)]
pub(crate) struct Entry<K, V> {
    pub(crate) hash: u64,
    pub(crate) part: u32,
    more: u32,
    pub(crate) key: K,
    pub(crate) first: V,
}

// An entry of a combining job stays small: a word count's is 48 bytes.
const _: () = assert!(size_of::<Entry<crate::Word, u64>>() == 48);

impl<K, V> Entry<K, V> {
    /// All values, in emission order; `more` is the side store of the
    /// buffer or run that holds the entry.
    pub(crate) fn values<'a>(&'a self, more: &'a [Vec<V>]) -> impl Iterator<Item = &'a V> {
        let rest: &[V] = if self.more == NO_MORE {
            &[]
        } else {
            &more[self.more as usize]
        };
        std::iter::once(&self.first).chain(rest.iter())
    }

    pub(crate) fn value_count(&self, more: &[Vec<V>]) -> usize {
        if self.more == NO_MORE {
            1
        } else {
            1 + more[self.more as usize].len()
        }
    }
}

/// Estimated bytes for one table slot (entry plus control byte, and the
/// table's spare capacity on average).
fn entry_cost<K, V>() -> usize {
    size_of::<Entry<K, V>>() * 3 / 2 + 2
}

/// Offers `value` to the last value of `e`; returns the bytes added.
#[inline]
fn absorb<K, V: Codec>(
    e: &mut Entry<K, V>,
    more: &mut Vec<Vec<V>>,
    value: V,
    combine: &CombineFn<'_, K, V>,
) -> usize {
    let acc = if e.more == NO_MORE {
        &mut e.first
    } else {
        more[e.more as usize]
            .last_mut()
            .expect("side lists are never empty")
    };
    let before = acc.heap_bytes();
    match combine(&e.key, acc, value) {
        None => acc.heap_bytes().saturating_sub(before),
        Some(v) => {
            let grown = acc.heap_bytes().saturating_sub(before);
            let mut cost = size_of::<V>() + v.heap_bytes();
            if e.more == NO_MORE {
                // More than u32::MAX - 1 lists would not fit in memory.
                e.more = u32::try_from(more.len()).expect("fewer than 2^32 value lists");
                more.push(Vec::new());
                cost += size_of::<Vec<V>>();
            }
            more[e.more as usize].push(v);
            grown + cost
        }
    }
}

/// The buffer of one map task.
pub(crate) struct MapBuffer<K, V> {
    table: HashTable<Entry<K, V>>,
    /// Values the combiner kept separate, one list per entry that has some.
    more: Vec<Vec<V>>,
    hasher: ahash::RandomState,
    partitions: usize,
    /// Estimated bytes held.
    pub(crate) bytes: usize,
    /// A bad partition index seen since the last check.
    pub(crate) error: Option<TaskError>,
}

impl<K: Hash + Eq + Codec, V: Codec> MapBuffer<K, V> {
    pub(crate) fn new(partitions: usize, capacity: usize) -> Self {
        Self {
            table: HashTable::with_capacity(capacity),
            more: Vec::new(),
            hasher: key_hasher(),
            partitions,
            bytes: 0,
            error: None,
        }
    }

    #[inline]
    pub(crate) fn emit_borrowed<Q>(
        &mut self,
        key: &Q,
        value: V,
        combine: &CombineFn<'_, K, V>,
        partitioner: &dyn Partitioner<K>,
    ) where
        K: Borrow<Q> + for<'q> From<&'q Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        if let Some(e) = self.table.find_mut(hash, |e| e.key.borrow() == key) {
            self.bytes += absorb(e, &mut self.more, value, combine);
            return;
        }
        self.insert_new(hash, K::from(key), value, partitioner);
    }

    #[inline]
    pub(crate) fn emit_owned(
        &mut self,
        key: K,
        value: V,
        combine: &CombineFn<'_, K, V>,
        partitioner: &dyn Partitioner<K>,
    ) {
        let hash = self.hasher.hash_one(&key);
        if let Some(e) = self.table.find_mut(hash, |e| e.key == key) {
            self.bytes += absorb(e, &mut self.more, value, combine);
            return;
        }
        self.insert_new(hash, key, value, partitioner);
    }

    fn insert_new(&mut self, hash: u64, key: K, value: V, partitioner: &dyn Partitioner<K>) {
        let part = partitioner.partition(&key, hash, self.partitions);
        if part >= self.partitions {
            if self.error.is_none() {
                self.error = Some(TaskError::BadPartition {
                    partition: part,
                    partitions: self.partitions,
                });
            }
            return;
        }
        self.bytes += entry_cost::<K, V>() + key.heap_bytes() + value.heap_bytes();
        // `part < partitions <= u32::MAX`, checked by the builder.
        let part = part as u32;
        self.table.insert_unique(
            hash,
            Entry {
                hash,
                part,
                more: NO_MORE,
                key,
                first: value,
            },
            |e| e.hash,
        );
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Estimated bytes per distinct key, before heap data.
    pub(crate) fn entry_cost() -> usize {
        entry_cost::<K, V>()
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

impl<K: Ord, V> MapBuffer<K, V> {
    /// Empties the buffer into a run grouped by partition, in no particular
    /// order within a partition, releasing the table's memory.
    pub(crate) fn take_grouped(&mut self) -> MemRun<K, V> {
        let bytes = std::mem::take(&mut self.bytes);
        let table = std::mem::take(&mut self.table);
        let more = std::mem::take(&mut self.more);
        let guess = table.len() / self.partitions + table.len() / (8 * self.partitions) + 16;
        let mut parts: Vec<Vec<Entry<K, V>>> = (0..self.partitions)
            .map(|_| Vec::with_capacity(guess))
            .collect();
        for e in table {
            parts[e.part as usize].push(e);
        }
        MemRun {
            parts,
            more,
            bytes,
            sorted: false,
        }
    }

    /// Empties the buffer into a run sorted by (partition, key), or by
    /// (partition, hash, key) when `by_hash` (cheaper: most comparisons are
    /// of two integers), releasing the table's memory.
    pub(crate) fn take_sorted(&mut self, by_hash: bool) -> MemRun<K, V> {
        let mut run = self.take_grouped();
        run.sort(by_hash);
        run
    }
}

/// A task's output kept in memory: its entries grouped by partition, and
/// sorted within each partition once [`MemRun::sort`] ran.
#[derive(Debug)]
pub(crate) struct MemRun<K, V> {
    parts: Vec<Vec<Entry<K, V>>>,
    /// The side store of the entries' extra values.
    pub(crate) more: Vec<Vec<V>>,
    pub(crate) bytes: usize,
    sorted: bool,
}

impl<K: Ord, V> MemRun<K, V> {
    /// Sorts each partition by key, or by (hash, key) when `by_hash`.
    pub(crate) fn sort(&mut self, by_hash: bool) {
        if self.sorted {
            return;
        }
        for part in &mut self.parts {
            if by_hash {
                part.sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.key.cmp(&b.key)));
            } else {
                part.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            }
        }
        self.sorted = true;
    }
}

impl<K, V> MemRun<K, V> {
    /// The entries of partition `p` (sorted once [`MemRun::sort`] ran).
    pub(crate) fn partition(&self, p: usize) -> &[Entry<K, V>] {
        &self.parts[p]
    }

    pub(crate) fn partitions(&self) -> usize {
        self.parts.len()
    }
}
