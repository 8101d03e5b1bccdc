//! The k-way merge, used twice: a partition's sorted sources (in-memory
//! runs and spill segments) are merged into groups of equal keys with
//! their values combined ([`Merger`]), and the sorted partitions' outputs
//! into one sorted result ([`merge_sorted`]). Also the merge's in-memory
//! alternative, grouping a partition in a hash table ([`group_in_memory`]).

use std::cmp::Ordering as CmpOrdering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::hash::Hash;

use hashbrown::HashTable;

use crate::buffer::{CombineFn, Entry, MemRun};
use crate::codec::Codec;
use crate::error::TaskError;
use crate::spill::SegmentReader;

/// One sorted stream of (key, values).
pub(crate) enum Source<'a, K, V> {
    Mem(std::slice::Iter<'a, Entry<K, V>>, &'a [Vec<V>]),
    Disk(SegmentReader<K, V>),
    /// Frames a cluster worker received, in memory or in its spill file.
    #[cfg(feature = "timely")]
    Received(SegmentReader<K, V, crate::cluster::inbox::Pieces<'a>>),
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
            #[cfg(feature = "timely")]
            Self::Received(r) => r.next_entry(),
        }
    }
}

/// The heads of a k-way merge, one per source: the smallest `order` comes
/// out first, and equal orders in source order (so that equal keys keep
/// their sources' order).
struct Heads<O, T> {
    heap: BinaryHeap<Head<O, T>>,
}

/// The next item of source `src`.
struct Head<O, T> {
    order: O,
    src: usize,
    item: T,
}

impl<O: Ord, T> PartialEq for Head<O, T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl<O: Ord, T> Eq for Head<O, T> {}

impl<O: Ord, T> PartialOrd for Head<O, T> {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl<O: Ord, T> Ord for Head<O, T> {
    /// Reversed, so that the max-heap pops the smallest (order, source).
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .order
            .cmp(&self.order)
            .then_with(|| other.src.cmp(&self.src))
    }
}

impl<O: Ord, T> Heads<O, T> {
    fn with_capacity(sources: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(sources),
        }
    }

    /// Adds the first item of source `src` (at most one head per source).
    fn push(&mut self, order: O, src: usize, item: T) {
        self.heap.push(Head { order, src, item });
    }

    /// The order of the smallest head.
    fn peek_order(&self) -> Option<&O> {
        self.heap.peek().map(|h| &h.order)
    }

    /// Takes the smallest head; `next(src)`, its source's next item, takes
    /// its place (one sift instead of a pop and a push).
    fn try_pop_refill<E>(
        &mut self,
        next: impl FnOnce(usize) -> Result<Option<(O, T)>, E>,
    ) -> Result<Option<Head<O, T>>, E> {
        let Some(mut top) = self.heap.peek_mut() else {
            return Ok(None);
        };
        Ok(Some(match next(top.src)? {
            // Replacing the top sifts it down when `top` is dropped.
            Some((order, item)) => {
                let src = top.src;
                std::mem::replace(&mut *top, Head { order, src, item })
            }
            None => PeekMut::pop(top),
        }))
    }

    /// [`Heads::try_pop_refill`] with a source that cannot fail.
    fn pop_refill(&mut self, next: impl FnOnce(usize) -> Option<(O, T)>) -> Option<Head<O, T>> {
        match self.try_pop_refill(|src| Ok::<_, Infallible>(next(src))) {
            Ok(head) => head,
            Err(never) => match never {},
        }
    }
}

/// Merges sources given in split order; equal keys come out once, with the
/// values of earlier sources first. Sources are sorted by key, or by
/// (hash, key) when the merger is given a hasher.
pub(crate) struct Merger<'a, K, V> {
    sources: Vec<Source<'a, K, V>>,
    /// Ordered by (the key's hash when the merge is in hash order, else 0;
    /// the key), holding the key's first value and any further values.
    heads: Heads<(u64, K), (V, Vec<V>)>,
    hasher: Option<ahash::RandomState>,
}

/// Source `src`'s next entry as a head of the merge.
#[allow(clippy::type_complexity)]
fn next_head<K: Hash + Codec + Clone, V: Codec + Clone>(
    source: &mut Source<'_, K, V>,
    hasher: Option<&ahash::RandomState>,
) -> Result<Option<((u64, K), (V, Vec<V>))>, TaskError> {
    Ok(source.next_entry()?.map(|(key, first, rest)| {
        let hash = hasher.map_or(0, |h| h.hash_one(&key));
        ((hash, key), (first, rest))
    }))
}

impl<'a, K: Ord + Hash + Codec + Clone, V: Codec + Clone> Merger<'a, K, V> {
    pub(crate) fn new(
        mut sources: Vec<Source<'a, K, V>>,
        hasher: Option<ahash::RandomState>,
    ) -> Result<Self, TaskError> {
        let mut heads = Heads::with_capacity(sources.len());
        for (src, source) in sources.iter_mut().enumerate() {
            if let Some((order, item)) = next_head(source, hasher.as_ref())? {
                heads.push(order, src, item);
            }
        }
        Ok(Self {
            sources,
            heads,
            hasher,
        })
    }

    /// The smallest head, replaced by its source's next entry.
    #[allow(clippy::type_complexity)]
    fn pop(&mut self) -> Result<Option<Head<(u64, K), (V, Vec<V>)>>, TaskError> {
        let (sources, hasher) = (&mut self.sources, self.hasher.as_ref());
        self.heads
            .try_pop_refill(|src| next_head(&mut sources[src], hasher))
    }

    /// The next key and all its values, combined with `combine`.
    pub(crate) fn next_group(
        &mut self,
        combine: &CombineFn<'_, K, V>,
    ) -> Result<Option<(K, Vec<V>)>, TaskError> {
        let Some(top) = self.pop()? else {
            return Ok(None);
        };
        let (_, key) = top.order;
        let (first, rest) = top.item;
        // `values` then `last`: the values so far; later sources' values
        // are offered to `last`, the accumulator.
        let mut values = Vec::new();
        let mut last = first;
        for v in rest {
            values.push(std::mem::replace(&mut last, v));
        }
        while self.heads.peek_order().is_some_and(|(_, k)| *k == key) {
            let (first, rest) = self.pop()?.expect("peeked").item;
            for v in std::iter::once(first).chain(rest) {
                if let Some(v) = combine(&key, &mut last, v) {
                    values.push(std::mem::replace(&mut last, v));
                }
            }
        }
        values.push(last);
        Ok(Some((key, values)))
    }
}

/// Merges vectors sorted by key (keys unique across them) into one sorted
/// vector.
pub(crate) fn merge_sorted<K: Ord, O>(parts: Vec<Vec<(K, O)>>) -> Vec<(K, O)> {
    let total = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    let mut iters: Vec<std::vec::IntoIter<(K, O)>> =
        parts.into_iter().map(Vec::into_iter).collect();
    let mut heads = Heads::with_capacity(iters.len());
    for (src, it) in iters.iter_mut().enumerate() {
        if let Some((key, out)) = it.next() {
            heads.push(key, src, out);
        }
    }
    while let Some(h) = heads.pop_refill(|src| iters[src].next()) {
        out.push((h.order, h.item));
    }
    out
}

/// One key of a partition grouped in memory: its values are `values` then
/// `last` (the accumulator later values are offered to).
pub(crate) struct Group<K, V> {
    /// The key's stable hash (the order of part files).
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) values: Vec<V>,
    pub(crate) last: V,
}

/// Groups partition `p` of in-memory runs given in split order: equal keys
/// come out once, with the values of earlier runs first, later runs'
/// values offered to `combine` as in [`Merger::next_group`]. The groups are
/// in no particular order. The table is keyed by `table`, the run's seeded
/// hasher (see [`KeyHashers`](crate::buffer::KeyHashers)). Stops with
/// [`TaskError::Cancelled`] when `cancelled` says so (checked once per run).
pub(crate) fn group_in_memory<K: Hash + Eq + Clone, V: Clone>(
    runs: &[&MemRun<K, V>],
    p: usize,
    table: &ahash::RandomState,
    combine: &CombineFn<'_, K, V>,
    cancelled: impl Fn() -> bool,
) -> Result<Vec<Group<K, V>>, TaskError> {
    let largest = runs.iter().map(|r| r.partition(p).len()).max().unwrap_or(0);
    let mut groups: HashTable<Group<K, V>> = HashTable::with_capacity(largest + largest / 4);
    for run in runs {
        if cancelled() {
            return Err(TaskError::Cancelled);
        }
        for e in run.partition(p) {
            let mut vals = e.values(&run.more).cloned();
            let h = table.hash_one(&e.key);
            if let Some(g) = groups.find_mut(h, |g| g.key == e.key) {
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
                groups.insert_unique(
                    h,
                    Group {
                        hash: e.hash,
                        key: e.key.clone(),
                        values,
                        last,
                    },
                    |g| table.hash_one(&g.key),
                );
            }
        }
    }
    Ok(groups.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sorted_interleaves_sorted_parts() {
        let parts = vec![
            vec![(1, 'a'), (4, 'd'), (9, 'i')],
            vec![],
            vec![(2, 'b'), (3, 'c')],
            vec![(5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')],
        ];
        let out = merge_sorted(parts);
        assert_eq!(
            out,
            vec![
                (1, 'a'),
                (2, 'b'),
                (3, 'c'),
                (4, 'd'),
                (5, 'e'),
                (6, 'f'),
                (7, 'g'),
                (8, 'h'),
                (9, 'i')
            ]
        );
        assert!(merge_sorted(Vec::<Vec<(u8, ())>>::new()).is_empty());
    }

    #[test]
    fn equal_orders_come_out_in_source_order() {
        let mut sources =
            [vec![(1, "s0")], vec![(1, "s1"), (2, "s1")], vec![(1, "s2")]].map(Vec::into_iter);
        let mut heads = Heads::with_capacity(3);
        for src in [2, 0, 1] {
            let (order, item) = sources[src].next().unwrap();
            heads.push(order, src, item);
        }
        let mut out = Vec::new();
        while let Some(h) = heads.pop_refill(|src| sources[src].next()) {
            out.push((h.order, h.src, h.item));
        }
        assert_eq!(
            out,
            vec![(1, 0, "s0"), (1, 1, "s1"), (1, 2, "s2"), (2, 1, "s1")]
        );
    }
}
