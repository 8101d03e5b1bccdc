//! [`Iter`]: walking an [`LruCache`] in eviction order.

use std::fmt;
use std::hash::{BuildHasher, Hash};

use super::{LruCache, Order};
use crate::deadlines::Deadlines;

/// Iterator over `(key, value)` in eviction order, the last evicted first;
/// see [`LruCache::iter`].
pub struct Iter<'a, K, V, S = ahash::RandomState> {
    pub(super) cache: Option<&'a LruCache<K, V, S>>,
    /// Exact LRU: one past the next log position to look at (walking down).
    pub(super) pos: u64,
    /// W-TinyLFU: where the walk over the queues is.
    pub(super) cursor: (u32, u32),
    pub(super) expiry: Option<(&'a Deadlines, u64)>,
}

impl<'a, K: Hash + Eq, V, S: BuildHasher> Iterator for Iter<'a, K, V, S> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let c = self.cache?;
        loop {
            let i = match &c.order {
                Order::Lru(log) => {
                    if self.pos <= log.tail() {
                        return None;
                    }
                    self.pos -= 1;
                    let Some(i) = log.live_at(&c.nodes, self.pos) else {
                        continue;
                    };
                    i
                }
                Order::TinyLfu(t) => t.walk(&mut self.cursor)?,
            };
            match self.expiry {
                Some((e, now)) if e.deadline(i) <= now => continue,
                _ => return Some((&c.nodes[i].key, &c.nodes[i].value)),
            }
        }
    }
}

impl<K, V, S> fmt::Debug for Iter<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}
