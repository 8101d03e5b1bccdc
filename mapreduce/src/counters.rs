//! User counters, as in Hadoop: named totals that map and reduce tasks add
//! to, summed over the job's tasks (and, on a cluster, over its processes).

use std::collections::BTreeMap;
use std::fmt;

/// Named `u64` counters.
///
/// A map task adds to them through [`Emitter::counters`](crate::Emitter::counters)
/// and a reduce task through the `counters` argument of
/// [`Job::reduce_iter`](crate::Job::reduce_iter). Each attempt counts
/// into its own set, which is added to the job's only when the attempt
/// succeeds, so a retried task counts once. The job's totals come back
/// from [`Runner::run_counted`](crate::Runner::run_counted) and its
/// siblings, and from the cluster entry points.
///
/// Names starting with `mapreduce.` are the runner's own (e.g.
/// `mapreduce.input_bytes`); a job should use other names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    values: BTreeMap<String, u64>,
}

impl Counters {
    /// No counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` to the counter `name` (wrapping at `u64::MAX` is not
    /// expected: the sum saturates).
    pub fn add(&mut self, name: &str, n: u64) {
        if let Some(v) = self.values.get_mut(name) {
            *v = v.saturating_add(n);
        } else {
            self.values.insert(name.to_owned(), n);
        }
    }

    /// The counter `name`, 0 when it was never added to.
    #[must_use]
    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Every counter with its value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// The number of counters.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no counter was added to.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds every counter of `other` to these.
    pub fn merge(&mut self, other: &Counters) {
        for (k, v) in other.iter() {
            self.add(k, v);
        }
    }

    /// The counters without the runner's own (`mapreduce.*`).
    #[must_use]
    pub fn user(&self) -> Counters {
        Counters {
            values: self
                .values
                .iter()
                .filter(|(k, _)| !k.starts_with("mapreduce."))
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
        }
    }
}

impl std::ops::Index<&str> for Counters {
    type Output = u64;

    /// The counter `name`.
    ///
    /// # Panics
    ///
    /// When there is no counter `name` ([`Counters::get`] gives 0 instead).
    fn index(&self, name: &str) -> &u64 {
        self.values
            .get(name)
            .unwrap_or_else(|| panic!("no counter {name:?}"))
    }
}

impl<'a> FromIterator<(&'a str, u64)> for Counters {
    fn from_iter<I: IntoIterator<Item = (&'a str, u64)>>(iter: I) -> Self {
        let mut c = Counters::new();
        for (k, v) in iter {
            c.add(k, v);
        }
        c
    }
}

impl fmt::Display for Counters {
    /// One `name value` line per counter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.values {
            writeln!(f, "{k} {v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_merges_and_filters() {
        let mut a = Counters::new();
        a.add("lines", 2);
        a.add("lines", 3);
        a.add("mapreduce.input_bytes", 10);
        let mut b: Counters = [("lines", 1), ("words", 7)].into_iter().collect();
        b.merge(&a);
        assert_eq!(b.get("lines"), 6);
        assert_eq!(b["words"], 7);
        assert_eq!(b.get("missing"), 0);
        assert_eq!(
            b.user().iter().collect::<Vec<_>>(),
            [("lines", 6), ("words", 7)]
        );
        a.add("lines", u64::MAX);
        assert_eq!(a.get("lines"), u64::MAX);
    }
}
