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

/// The seeds of the stable key hash. Fixed, so that a key lands in the same
/// partition, and part files list keys in the same order, in every run of
/// one build.
const SEEDS: [u64; 4] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
];

/// The two hashes of a key in one job.
///
/// - `stable`, with the public fixed [`SEEDS`]: what the [`Partitioner`]
///   is given, and the order of spill runs and part files (by (hash, key)).
///   It decides where a key goes, never how long a lookup takes, so input
///   crafted against the public seeds can at worst crowd its keys into one
///   partition or sort them by key: no quadratic work.
/// - `table`, seeded at random for every run: the hash of the tables that
///   group keys (a map task's buffer, a partition's in-memory grouping),
///   so input cannot be crafted to make their probes long (hash flooding).
///
/// Two runs of one job thus give identical output, including the part
/// files and the order of their lines; only the tables' layout differs. A
/// key's table hash is not stored: tables recompute it when they grow.
#[derive(Clone)]
pub(crate) struct KeyHashers {
    pub(crate) stable: ahash::RandomState,
    pub(crate) table: ahash::RandomState,
}

impl KeyHashers {
    /// The stable hasher and a table hasher with fresh random seeds.
    pub(crate) fn for_run() -> Self {
        Self {
            stable: stable_hasher(),
            // Seeded from the OS (ahash's `runtime-rng`), differently for
            // each instance.
            table: ahash::RandomState::new(),
        }
    }
}

/// The hasher of the stable key hash.
pub(crate) fn stable_hasher() -> ahash::RandomState {
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
    /// The key's stable hash ([`KeyHashers::stable`]).
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
        std::iter::once(&self.first).chain(self.more_values(more).iter())
    }

    /// The values after `first`.
    pub(crate) fn more_values<'a>(&'a self, more: &'a [Vec<V>]) -> &'a [V] {
        if self.more == NO_MORE {
            &[]
        } else {
            &more[self.more as usize]
        }
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
    hashers: KeyHashers,
    partitions: usize,
    /// Estimated bytes held.
    pub(crate) bytes: usize,
    /// A bad partition index seen since the last check.
    pub(crate) error: Option<TaskError>,
}

impl<K: Hash + Eq + Codec, V: Codec> MapBuffer<K, V> {
    pub(crate) fn new(partitions: usize, capacity: usize, hashers: &KeyHashers) -> Self {
        Self {
            table: HashTable::with_capacity(capacity),
            more: Vec::new(),
            hashers: hashers.clone(),
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
        let hash = self.hashers.table.hash_one(key);
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
        let hash = self.hashers.table.hash_one(&key);
        if let Some(e) = self.table.find_mut(hash, |e| e.key == key) {
            self.bytes += absorb(e, &mut self.more, value, combine);
            return;
        }
        self.insert_new(hash, key, value, partitioner);
    }

    /// Inserts a key the table does not hold; `table_hash` is its hash by
    /// the table hasher.
    fn insert_new(&mut self, table_hash: u64, key: K, value: V, partitioner: &dyn Partitioner<K>) {
        let hash = self.hashers.stable.hash_one(&key);
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
        // `part < partitions <= Runner::MAX_PARTITIONS`, checked by the builder.
        let part = part as u32;
        let table_hasher = &self.hashers.table;
        self.table.insert_unique(
            table_hash,
            Entry {
                hash,
                part,
                more: NO_MORE,
                key,
                first: value,
            },
            |e| table_hasher.hash_one(&e.key),
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
        let more = std::mem::take(&mut self.more);
        let mut entries: Vec<Entry<K, V>> = std::mem::take(&mut self.table).into_iter().collect();
        let index = group_by_partition(&mut entries, self.partitions);
        MemRun {
            entries,
            index,
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

/// Reorders `entries` so that each partition's entries are contiguous, in
/// ascending partition order; returns the non-empty partitions with the end
/// of their entries. Memory is proportional to the entries, not to R: a
/// counting sort when R is at most the number of entries, else a sort.
fn group_by_partition<K, V>(entries: &mut [Entry<K, V>], partitions: usize) -> Vec<(u32, usize)> {
    if partitions > entries.len() {
        entries.sort_unstable_by_key(|e| e.part);
    } else if partitions > 1 {
        // `next[p]`: where partition p's next entry goes.
        let mut next = vec![0usize; partitions];
        for e in entries.iter() {
            next[e.part as usize] += 1;
        }
        let mut start = 0;
        for n in &mut next {
            start += std::mem::replace(n, start);
        }
        let mut dest: Vec<usize> = entries
            .iter()
            .map(|e| {
                let d = next[e.part as usize];
                next[e.part as usize] += 1;
                d
            })
            .collect();
        // Apply the permutation in place: each swap puts one entry where it
        // belongs.
        for i in 0..entries.len() {
            while dest[i] != i {
                let d = dest[i];
                entries.swap(i, d);
                dest.swap(i, d);
            }
        }
    }
    let mut index: Vec<(u32, usize)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match index.last_mut() {
            Some((p, end)) if *p == e.part => *end = i + 1,
            _ => index.push((e.part, i + 1)),
        }
    }
    index
}

/// A task's output kept in memory: its entries grouped by partition, and
/// sorted within each partition once [`MemRun::sort`] ran. Only partitions
/// with entries take room.
#[derive(Debug)]
pub(crate) struct MemRun<K, V> {
    /// Grouped by partition, in ascending partition order.
    entries: Vec<Entry<K, V>>,
    /// Each non-empty partition, ascending, with the end of its entries
    /// (the start is the previous one's end).
    index: Vec<(u32, usize)>,
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
        let mut start = 0;
        for &(_, end) in &self.index {
            let part = &mut self.entries[start..end];
            if by_hash {
                part.sort_unstable_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.key.cmp(&b.key)));
            } else {
                part.sort_unstable_by(|a, b| a.key.cmp(&b.key));
            }
            start = end;
        }
        self.sorted = true;
    }
}

impl<K, V> MemRun<K, V> {
    /// The entries of partition `p` (sorted once [`MemRun::sort`] ran).
    pub(crate) fn partition(&self, p: usize) -> &[Entry<K, V>] {
        match self.index.binary_search_by(|&(q, _)| (q as usize).cmp(&p)) {
            Ok(i) => {
                let start = if i == 0 { 0 } else { self.index[i - 1].1 };
                &self.entries[start..self.index[i].1]
            }
            Err(_) => &[],
        }
    }

    /// The non-empty partitions in ascending order, with their entries.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = (usize, &[Entry<K, V>])> {
        let starts = std::iter::once(0).chain(self.index.iter().map(|&(_, end)| end));
        self.index
            .iter()
            .zip(starts)
            .map(|(&(p, end), start)| (p as usize, &self.entries[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(part: u32, key: u32) -> Entry<u32, ()> {
        Entry {
            hash: 0,
            part,
            more: NO_MORE,
            key,
            first: (),
        }
    }

    /// The stable hash is the same in every run; the table hash is not
    /// (with overwhelming probability: 64 keys agree by chance with
    /// probability 2^-4096).
    #[test]
    fn table_seeds_differ_per_run() {
        let (a, b) = (KeyHashers::for_run(), KeyHashers::for_run());
        let keys: Vec<String> = (0..64).map(|i| format!("key{i}")).collect();
        let stable =
            |h: &KeyHashers| -> Vec<u64> { keys.iter().map(|k| h.stable.hash_one(k)).collect() };
        let table =
            |h: &KeyHashers| -> Vec<u64> { keys.iter().map(|k| h.table.hash_one(k)).collect() };
        assert_eq!(stable(&a), stable(&b));
        assert_eq!(
            stable(&a),
            stable(&KeyHashers {
                stable: stable_hasher(),
                table: stable_hasher()
            })
        );
        assert_ne!(table(&a), table(&b));
        assert_ne!(table(&a), stable(&a));
    }

    /// Both grouping strategies (counting sort when R <= entries, a sort
    /// otherwise) give each partition its entries, and index only the
    /// non-empty partitions.
    #[test]
    fn groups_by_partition_in_room_proportional_to_entries() {
        let parts = [3u32, 0, 3, 1, 0, 3, 5, 1];
        for r in [6usize, 8, 1 << 16] {
            let mut entries: Vec<_> = parts
                .iter()
                .enumerate()
                .map(|(i, &p)| entry(p, i as u32))
                .collect();
            let index = group_by_partition(&mut entries, r);
            let run = MemRun {
                entries,
                index,
                more: Vec::new(),
                bytes: 0,
                sorted: false,
            };
            let got: Vec<(usize, Vec<u32>)> = run
                .partitions()
                .map(|(p, es)| {
                    let mut keys: Vec<u32> = es.iter().map(|e| e.key).collect();
                    keys.sort_unstable();
                    (p, keys)
                })
                .collect();
            assert_eq!(
                got,
                vec![
                    (0, vec![1, 4]),
                    (1, vec![3, 7]),
                    (3, vec![0, 2, 5]),
                    (5, vec![6])
                ],
                "R = {r}"
            );
            assert_eq!(run.index.len(), 4);
            assert!(run.partition(2).is_empty());
            assert!(run.partition(r - 1).is_empty() || r == 6);
            assert_eq!(run.partition(5).len(), 1);
        }
    }
}
