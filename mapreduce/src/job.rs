//! The user's side of a job: [`Job`] and the [`Emitter`] map output goes to.

use std::borrow::Borrow;
use std::hash::Hash;
use std::path::Path;

use crate::buffer::{CombineFn, MapBuffer};
use crate::codec::Codec;
use crate::counters::Counters;
use crate::error::TaskError;
use crate::partition::Partitioner;

/// A MapReduce job: `map` turns records into key-value pairs, `combine`
/// folds values of one key as they are emitted (optional), and `reduce`
/// turns each key's values into one output.
///
/// The runner calls these from several threads at once, hence `Sync`. A task
/// may be attempted more than once (after an error or a panic), so `map` and
/// `reduce` should not have side effects beyond what they return.
pub trait Job: Sync {
    /// One input record: `[u8]` (a line, without its `'\n'`) for
    /// [`TextInput`](crate::TextInput), the item type for record iterators.
    type Record: ?Sized;
    /// The intermediate key. `Ord` orders the output and the spill runs.
    type Key: Hash + Eq + Ord + Clone + Codec + Send + Sync;
    /// The intermediate value.
    type Value: Clone + Codec + Send + Sync;
    /// What `reduce` returns for one key.
    type Output: Send;

    /// Maps one record, emitting any number of key-value pairs.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] fails this attempt of the map task; the task is
    /// retried from the start of its split up to the runner's retry limit.
    fn map(
        &self,
        record: &Self::Record,
        emit: &mut Emitter<'_, Self::Key, Self::Value>,
    ) -> Result<(), TaskError>;

    /// Offers `value` to the accumulator `acc` of the same key. Return `None`
    /// when `value` was folded into `acc`, or `Some(value)` to keep it as a
    /// separate value. The default keeps every value (no combiner).
    ///
    /// A combiner must be associative: the runner applies it to values in
    /// emission order inside a map task, and again across tasks and spill
    /// runs, always in split order (it need not be commutative).
    fn combine(
        &self,
        key: &Self::Key,
        acc: &mut Self::Value,
        value: Self::Value,
    ) -> Option<Self::Value> {
        let _ = (key, acc);
        Some(value)
    }

    /// Reduces all values of `key` (in split order, after combining) to
    /// one output. One key's values must fit in memory; a job whose keys
    /// may have more values overrides [`Job::reduce_iter`] instead.
    ///
    /// # Errors
    ///
    /// A [`TaskError`] fails this attempt of the reduce task; the partition
    /// is reduced again from the start up to the runner's retry limit.
    fn reduce(&self, key: &Self::Key, values: Vec<Self::Value>) -> Result<Self::Output, TaskError>;

    /// Reduces the values of `key` (in split order, after combining) as
    /// they are read, and may add to the reduce task's `counters`. The
    /// runner calls this method; the default collects the values and
    /// calls [`Job::reduce`].
    ///
    /// Override it when one key's values may not fit in memory (a hot
    /// key): when the partition was spilled, `values` streams them from
    /// the sorted runs, holding a window of each run rather than all of
    /// them. A job that overrides it can implement `reduce` by calling it
    /// with `Values::from(values)`.
    ///
    /// Values left unread are skipped. A run that cannot be read ends
    /// `values` early and fails the attempt, whatever this returns.
    ///
    /// # Errors
    ///
    /// As [`Job::reduce`].
    fn reduce_iter(
        &self,
        key: &Self::Key,
        values: Values<'_, Self::Value>,
        counters: &mut Counters,
    ) -> Result<Self::Output, TaskError> {
        let _ = counters;
        self.reduce(key, values.into_vec())
    }
}

/// The values of one key, for [`Job::reduce_iter`]: in memory, or streamed
/// from the partition's sorted runs.
pub struct Values<'a, V> {
    inner: ValuesInner<'a, V>,
}

enum ValuesInner<'a, V> {
    Vec(std::vec::IntoIter<V>),
    Stream(&'a mut dyn Iterator<Item = V>),
}

impl<'a, V> Values<'a, V> {
    /// Values read from `stream` (the merge of a spilled partition).
    pub(crate) fn stream(stream: &'a mut dyn Iterator<Item = V>) -> Self {
        Self {
            inner: ValuesInner::Stream(stream),
        }
    }

    /// All the values, in a vector (without copying when they already are).
    pub(crate) fn into_vec(self) -> Vec<V> {
        match self.inner {
            ValuesInner::Vec(it) => it.collect(),
            ValuesInner::Stream(s) => s.collect(),
        }
    }
}

impl<V> From<Vec<V>> for Values<'_, V> {
    fn from(values: Vec<V>) -> Self {
        Self {
            inner: ValuesInner::Vec(values.into_iter()),
        }
    }
}

impl<V> Iterator for Values<'_, V> {
    type Item = V;

    #[inline]
    fn next(&mut self) -> Option<V> {
        match &mut self.inner {
            ValuesInner::Vec(it) => it.next(),
            ValuesInner::Stream(s) => s.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            ValuesInner::Vec(it) => it.size_hint(),
            ValuesInner::Stream(s) => s.size_hint(),
        }
    }
}

impl<V> std::fmt::Debug for Values<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

/// Where the record being mapped came from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub(crate) file: Option<&'a Path>,
    pub(crate) file_index: usize,
    pub(crate) offset: u64,
}

impl<'a> Origin<'a> {
    /// The input file, for [`TextInput`](crate::TextInput); `None` for
    /// record iterators.
    #[must_use]
    pub fn file(&self) -> Option<&'a Path> {
        self.file
    }

    /// The file's index in the input's file list (0 for record iterators).
    #[must_use]
    pub fn file_index(&self) -> usize {
        self.file_index
    }

    /// The byte offset of the line in its file, or the record's index in
    /// the iterator.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

/// Receives the key-value pairs of one map task. Values of a key already in
/// the task's buffer are offered to [`Job::combine`] at once, so a combining
/// job holds one value per distinct key.
pub struct Emitter<'a, K, V> {
    pub(crate) buf: &'a mut MapBuffer<K, V>,
    pub(crate) combine: &'a CombineFn<'a, K, V>,
    pub(crate) partitioner: &'a dyn Partitioner<K>,
    pub(crate) origin: Origin<'a>,
    pub(crate) counters: &'a mut Counters,
}

impl<K: Hash + Eq + Codec, V: Codec> Emitter<'_, K, V> {
    /// Emits `key` and `value`.
    #[inline]
    pub fn emit(&mut self, key: K, value: V) {
        self.buf
            .emit_owned(key, value, self.combine, self.partitioner);
    }

    /// Emits a borrowed key, which is converted to `K` only when the task's
    /// buffer does not hold it yet (e.g. `&[u8]` for a `Vec<u8>` or
    /// [`Word`](crate::Word) key).
    #[inline]
    pub fn emit_ref<Q>(&mut self, key: &Q, value: V)
    where
        K: Borrow<Q> + for<'q> From<&'q Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.buf
            .emit_borrowed(key, value, self.combine, self.partitioner);
    }

    /// Where the current record came from.
    #[must_use]
    pub fn origin(&self) -> Origin<'_> {
        self.origin
    }

    /// This map task's counters: what is added to them counts toward the
    /// job's totals once the task succeeds (see [`Counters`]).
    pub fn counters(&mut self) -> &mut Counters {
        self.counters
    }
}
