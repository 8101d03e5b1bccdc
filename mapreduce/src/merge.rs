//! The k-way merge of a partition's sorted sources (in-memory runs and
//! spill segments), grouping equal keys and combining their values.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::hash::Hash;

use hashbrown::HashTable;

use crate::buffer::{Entry, MemRun};
use crate::codec::Codec;
use crate::error::TaskError;
use crate::job::CombineFn;
use crate::spill::SegmentReader;

/// One sorted stream of (key, values).
pub(crate) enum Source<'a, K, V> {
    Mem(std::slice::Iter<'a, Entry<K, V>>, &'a [Vec<V>]),
    Disk(SegmentReader<K, V>),
}

impl<K: Codec + Clone, V: Codec + Clone> Source<'_, K, V> {
    /// The next key with its first value and any further values (no
    /// allocation for a key with one value).
    #[allow(clippy::type_complexity)]
    fn next_entry(&mut self) -> Result<Option<(K, V, Vec<V>)>, TaskError> {
        match self {
            Self::Mem(it, more) => Ok(it.next().map(|e| {
                let mut values = e.values(more);
                let first = values.next().expect("an entry has a value").clone();
                (e.key.clone(), first, values.cloned().collect())
            })),
            Self::Disk(r) => r.next_entry(),
        }
    }
}

struct Head<K, V> {
    /// The key's hash when the merge is in hash order, else 0.
    hash: u64,
    key: K,
    first: V,
    rest: Vec<V>,
    src: usize,
}

impl<K: Ord, V> PartialEq for Head<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl<K: Ord, V> Eq for Head<K, V> {}

impl<K: Ord, V> PartialOrd for Head<K, V> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl<K: Ord, V> Ord for Head<K, V> {
    /// Reversed, so that the max-heap pops the smallest (key, source).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .hash
            .cmp(&self.hash)
            .then_with(|| other.key.cmp(&self.key))
            .then_with(|| other.src.cmp(&self.src))
    }
}

/// Merges sources given in split order; equal keys come out once, with the
/// values of earlier sources first. Sources are sorted by key, or by
/// (hash, key) when the merger is given a hasher.
pub(crate) struct Merger<'a, K, V> {
    sources: Vec<Source<'a, K, V>>,
    heap: BinaryHeap<Head<K, V>>,
    hasher: Option<ahash::RandomState>,
}

impl<'a, K: Ord + Hash + Codec + Clone, V: Codec + Clone> Merger<'a, K, V> {
    pub(crate) fn new(
        sources: Vec<Source<'a, K, V>>,
        hasher: Option<ahash::RandomState>,
    ) -> Result<Self, TaskError> {
        let mut m = Self {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            hasher,
        };
        for src in 0..m.sources.len() {
            m.refill(src)?;
        }
        Ok(m)
    }

    fn refill(&mut self, src: usize) -> Result<(), TaskError> {
        if let Some((key, first, rest)) = self.sources[src].next_entry()? {
            let hash = self.hasher.as_ref().map_or(0, |h| h.hash_one(&key));
            self.heap.push(Head {
                hash,
                key,
                first,
                rest,
                src,
            });
        }
        Ok(())
    }

    /// The next key and all its values, combined with `combine`.
    pub(crate) fn next_group(
        &mut self,
        combine: &CombineFn<'_, K, V>,
    ) -> Result<Option<(K, Vec<V>)>, TaskError> {
        let Some(top) = self.heap.pop() else {
            return Ok(None);
        };
        self.refill(top.src)?;
        let key = top.key;
        // `values` then `last`: the values so far; later sources' values
        // are offered to `last`, the accumulator.
        let mut values = Vec::new();
        let mut last = top.first;
        for v in top.rest {
            values.push(std::mem::replace(&mut last, v));
        }
        while self.heap.peek().is_some_and(|h| h.key == key) {
            let h = self.heap.pop().expect("peeked");
            self.refill(h.src)?;
            for v in std::iter::once(h.first).chain(h.rest) {
                if let Some(v) = combine(&key, &mut last, v) {
                    values.push(std::mem::replace(&mut last, v));
                }
            }
        }
        values.push(last);
        Ok(Some((key, values)))
    }
}

/// One key of a partition grouped in memory: its values are `values` then
/// `last` (the accumulator later values are offered to).
pub(crate) struct Group<K, V> {
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) values: Vec<V>,
    pub(crate) last: V,
}

/// Groups partition `p` of in-memory runs given in split order: equal keys
/// come out once, with the values of earlier runs first, later runs'
/// values offered to `combine` as in [`Merger::next_group`]. The groups are
/// in no particular order. Stops with [`TaskError::Cancelled`] when
/// `cancelled` says so (checked once per run).
pub(crate) fn group_in_memory<K: Eq + Clone, V: Clone>(
    runs: &[&MemRun<K, V>],
    p: usize,
    combine: &CombineFn<'_, K, V>,
    cancelled: impl Fn() -> bool,
) -> Result<Vec<Group<K, V>>, TaskError> {
    let largest = runs.iter().map(|r| r.partition(p).len()).max().unwrap_or(0);
    let mut table: HashTable<Group<K, V>> = HashTable::with_capacity(largest + largest / 4);
    for run in runs {
        if cancelled() {
            return Err(TaskError::Cancelled);
        }
        for e in run.partition(p) {
            let mut vals = e.values(&run.more).cloned();
            if let Some(g) = table.find_mut(e.hash, |g| g.key == e.key) {
                for v in vals {
                    if let Some(v) = combine(&g.key, &mut g.last, v) {
                        g.values.push(std::mem::replace(&mut g.last, v));
                    }
                }
            } else {
                let mut last = vals.next().expect("an entry has a value");
                let mut values = Vec::new();
                for v in vals {
                    values.push(std::mem::replace(&mut last, v));
                }
                table.insert_unique(
                    e.hash,
                    Group {
                        hash: e.hash,
                        key: e.key.clone(),
                        values,
                        last,
                    },
                    |g| g.hash,
                );
            }
        }
    }
    Ok(table.into_iter().collect())
}
