//! The k-way merge of a partition's sorted sources (in-memory runs and
//! spill segments), grouping equal keys and combining their values.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::hash::Hash;

use crate::buffer::Entry;
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
