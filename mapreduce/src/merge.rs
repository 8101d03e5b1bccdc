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

/// One sorted stream of keys, each followed by its values.
pub(crate) enum Source<'a, K, V> {
    /// An in-memory run's entries, and the values of the current one.
    Mem {
        entries: std::slice::Iter<'a, Entry<K, V>>,
        more: &'a [Vec<V>],
        first: Option<&'a V>,
        rest: std::slice::Iter<'a, V>,
    },
    Disk(SegmentReader<K, V>),
    /// Frames a cluster worker received, in memory or in its spill file.
    #[cfg(feature = "timely")]
    Received(SegmentReader<K, V, crate::cluster::inbox::Pieces<'a>>),
}

impl<'a, K, V> Source<'a, K, V> {
    /// A source of an in-memory run's sorted entries.
    pub(crate) fn mem(entries: &'a [Entry<K, V>], more: &'a [Vec<V>]) -> Self {
        Self::Mem {
            entries: entries.iter(),
            more,
            first: None,
            rest: [].iter(),
        }
    }
}

impl<K: Codec + Clone, V: Codec + Clone> Source<'_, K, V> {
    /// The next key; its values follow from [`Source::next_value`] (any
    /// left unread are skipped).
    fn next_key(&mut self) -> Result<Option<K>, TaskError> {
        match self {
            Self::Mem {
                entries,
                more,
                first,
                rest,
            } => Ok(entries.next().map(|e| {
                *first = Some(&e.first);
                *rest = e.more_values(more).iter();
                e.key.clone()
            })),
            Self::Disk(r) => Ok(r.next_key()?.map(|(k, _)| k)),
            #[cfg(feature = "timely")]
            Self::Received(r) => Ok(r.next_key()?.map(|(k, _)| k)),
        }
    }

    /// The next value of the current key.
    fn next_value(&mut self) -> Result<Option<V>, TaskError> {
        match self {
            Self::Mem { first, rest, .. } => Ok(first.take().or_else(|| rest.next()).cloned()),
            Self::Disk(r) => r.next_value(),
            #[cfg(feature = "timely")]
            Self::Received(r) => r.next_value(),
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

    /// Takes the smallest head.
    fn pop(&mut self) -> Option<Head<O, T>> {
        self.heap.pop()
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
///
/// A key's values are streamed ([`GroupValues`]): the merge holds one
/// window of each source's current frame, never all of a key's values.
pub(crate) struct Merger<'a, K, V> {
    state: MergeState<'a, K, V>,
    /// The current group's order (the key's hash when the merge is in hash
    /// order, else 0; the key).
    group: Option<(u64, K)>,
}

/// The merge without the current key, so that the key can be lent out
/// while its values are read.
struct MergeState<'a, K, V> {
    sources: Vec<Source<'a, K, V>>,
    /// The next key of every source not being read.
    heads: Heads<(u64, K), ()>,
    hasher: Option<ahash::RandomState>,
    /// The source whose values of the current key come next; `None`
    /// between two of the key's sources.
    cur: Option<usize>,
    /// Whether `cur` is the key's first source (whose values are not
    /// offered to the combiner again: its map task already did).
    first_source: bool,
    /// The value held back: later values are offered to it.
    last: Option<V>,
}

impl<'a, K: Ord + Hash + Codec + Clone, V: Codec + Clone> MergeState<'a, K, V> {
    /// Reads source `src`'s next key into the heads.
    fn refill(&mut self, src: usize) -> Result<(), TaskError> {
        if let Some(key) = self.sources[src].next_key()? {
            let hash = self.hasher.as_ref().map_or(0, |h| h.hash_one(&key));
            self.heads.push((hash, key), src, ());
        }
        Ok(())
    }

    /// The next value of the group `order`, combined with `combine`.
    fn next_value(
        &mut self,
        order: &(u64, K),
        combine: &CombineFn<'_, K, V>,
    ) -> Result<Option<V>, TaskError> {
        loop {
            let raw = match self.cur {
                Some(src) => match self.sources[src].next_value()? {
                    Some(v) => v,
                    None => {
                        self.cur = None;
                        self.refill(src)?;
                        continue;
                    }
                },
                None => {
                    if self.heads.peek_order().is_some_and(|o| o == order) {
                        let head = self.heads.pop().expect("peeked");
                        self.cur = Some(head.src);
                        self.first_source = false;
                        continue;
                    }
                    return Ok(self.last.take());
                }
            };
            let Some(acc) = self.last.as_mut() else {
                self.last = Some(raw);
                continue;
            };
            if self.first_source {
                return Ok(Some(std::mem::replace(acc, raw)));
            }
            if let Some(v) = combine(&order.1, acc, raw) {
                return Ok(Some(std::mem::replace(acc, v)));
            }
        }
    }
}

impl<'a, K: Ord + Hash + Codec + Clone, V: Codec + Clone> Merger<'a, K, V> {
    pub(crate) fn new(
        sources: Vec<Source<'a, K, V>>,
        hasher: Option<ahash::RandomState>,
    ) -> Result<Self, TaskError> {
        let mut state = MergeState {
            heads: Heads::with_capacity(sources.len()),
            sources,
            hasher,
            cur: None,
            first_source: true,
            last: None,
        };
        for src in 0..state.sources.len() {
            state.refill(src)?;
        }
        Ok(Self { state, group: None })
    }

    /// The next key and a stream of its values, combined with `combine`.
    /// Values of the previous key left unread are read (and dropped) first.
    #[allow(clippy::type_complexity)]
    pub(crate) fn next_group<'m>(
        &'m mut self,
        combine: &'m CombineFn<'m, K, V>,
    ) -> Result<Option<(&'m K, GroupValues<'m, 'a, K, V>)>, TaskError> {
        if let Some(order) = &self.group {
            while self.state.next_value(order, combine)?.is_some() {}
        }
        self.group = None;
        let Some(head) = self.state.heads.pop() else {
            return Ok(None);
        };
        self.state.cur = Some(head.src);
        self.state.first_source = true;
        self.state.last = None;
        let order = &*self.group.insert(head.order);
        Ok(Some((
            &order.1,
            GroupValues {
                state: &mut self.state,
                order,
                combine,
                error: None,
            },
        )))
    }
}

impl<K, V> Merger<'_, K, V> {
    /// The key of the group just read (whose values were all read:
    /// [`GroupValues::finish`]), by value.
    ///
    /// # Panics
    ///
    /// When no group was started since the last call.
    pub(crate) fn take_key(&mut self) -> K {
        debug_assert!(self.state.cur.is_none() && self.state.last.is_none());
        self.group.take().expect("a group was read").1
    }
}

/// The values of one key of a [`Merger`], combined, in split order. A read
/// error ends the iteration early; [`GroupValues::finish`] returns it.
pub(crate) struct GroupValues<'m, 'a, K, V> {
    state: &'m mut MergeState<'a, K, V>,
    order: &'m (u64, K),
    combine: &'m CombineFn<'m, K, V>,
    error: Option<TaskError>,
}

impl<K: Ord + Hash + Codec + Clone, V: Codec + Clone> Iterator for GroupValues<'_, '_, K, V> {
    type Item = V;

    fn next(&mut self) -> Option<V> {
        if self.error.is_some() {
            return None;
        }
        match self.state.next_value(self.order, self.combine) {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

impl<K: Ord + Hash + Codec + Clone, V: Codec + Clone> GroupValues<'_, '_, K, V> {
    /// Reads the values left (so that a damaged frame fails this key's
    /// task even when the reducer stopped early) and returns the first
    /// read error.
    pub(crate) fn finish(mut self) -> Result<(), TaskError> {
        while self.next().is_some() {}
        self.error.map_or(Ok(()), Err)
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
