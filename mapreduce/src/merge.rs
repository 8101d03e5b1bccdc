//! The k-way merge of a partition's sorted sources (in-memory runs and
//! spill segments), grouping equal keys and combining their values.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;

use crate::buffer::Entry;
use crate::codec::Codec;
use crate::error::TaskError;
use crate::job::CombineFn;
use crate::spill::SegmentReader;

/// One sorted stream of (key, values).
pub(crate) enum Source<'a, K, V> {
    Mem(std::slice::Iter<'a, Entry<K, V>>),
    Disk(SegmentReader<K, V>),
}

impl<K: Codec + Clone, V: Codec + Clone> Source<'_, K, V> {
    fn next_entry(&mut self) -> Result<Option<(K, Vec<V>)>, TaskError> {
        match self {
            Self::Mem(it) => Ok(it.next().map(|e| {
                let mut values = Vec::with_capacity(e.value_count());
                values.extend(e.values().cloned());
                (e.key.clone(), values)
            })),
            Self::Disk(r) => r.next_entry(),
        }
    }
}

struct Head<K, V> {
    key: K,
    values: Vec<V>,
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
            .key
            .cmp(&self.key)
            .then_with(|| other.src.cmp(&self.src))
    }
}

/// Merges sources given in split order; equal keys come out once, with the
/// values of earlier sources first.
pub(crate) struct Merger<'a, K, V> {
    sources: Vec<Source<'a, K, V>>,
    heap: BinaryHeap<Head<K, V>>,
}

impl<'a, K: Ord + Codec + Clone, V: Codec + Clone> Merger<'a, K, V> {
    pub(crate) fn new(mut sources: Vec<Source<'a, K, V>>) -> Result<Self, TaskError> {
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (src, s) in sources.iter_mut().enumerate() {
            if let Some((key, values)) = s.next_entry()? {
                heap.push(Head { key, values, src });
            }
        }
        Ok(Self { sources, heap })
    }

    fn refill(&mut self, src: usize) -> Result<(), TaskError> {
        if let Some((key, values)) = self.sources[src].next_entry()? {
            self.heap.push(Head { key, values, src });
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
        let mut values = top.values;
        while self.heap.peek().is_some_and(|h| h.key == key) {
            let h = self.heap.pop().expect("peeked");
            self.refill(h.src)?;
            for v in h.values {
                match values.last_mut() {
                    Some(last) => {
                        if let Some(v) = combine(&key, last, v) {
                            values.push(v);
                        }
                    }
                    None => values.push(v),
                }
            }
        }
        Ok(Some((key, values)))
    }
}
