//! Progress reports: a snapshot type for callbacks and the terminal bar.

use std::io::Write;
use std::time::Duration;

/// The phase a job is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Map tasks are running.
    Map,
    /// Reduce tasks are running.
    Reduce,
    /// The job has finished (successfully or not).
    Done,
}

/// A snapshot of a running job, passed to the progress callback about ten
/// times a second and once at the end of each phase.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Input bytes mapped so far (text input; 0 for record iterators).
    pub bytes_mapped: u64,
    /// Total input bytes, when known.
    pub bytes_total: Option<u64>,
    /// Records mapped so far.
    pub records_mapped: u64,
    /// Map tasks finished.
    pub splits_done: usize,
    /// Map tasks in all, when known in advance.
    pub splits_total: Option<usize>,
    /// Partitions reduced.
    pub partitions_done: usize,
    /// Partitions in all (R).
    pub partitions_total: usize,
    /// Bytes written to spill runs so far.
    pub spilled_bytes: u64,
    /// Time since the job started, by the runner's clock.
    pub elapsed: Duration,
}

impl Progress {
    /// Input bytes mapped per second so far.
    #[must_use]
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.bytes_mapped as f64 / s
        } else {
            0.0
        }
    }

    /// The estimated time left for the map phase, from the rate so far;
    /// `None` when the total is unknown or nothing has been mapped yet.
    #[must_use]
    pub fn eta(&self) -> Option<Duration> {
        let total = self.bytes_total?;
        let rate = self.rate();
        if rate <= 0.0 {
            return None;
        }
        let left = total.saturating_sub(self.bytes_mapped) as f64;
        // A rate from a clock that jumped far ahead can make this exceed
        // what a `Duration` holds.
        Some(Duration::try_from_secs_f64(left / rate).unwrap_or(Duration::MAX))
    }

    /// One line for a terminal: phase, bar, bytes, rate, ETA, partitions.
    #[must_use]
    pub fn render(&self) -> String {
        const WIDTH: usize = 24;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let (fraction, what) = match self.phase {
            Phase::Map => match self.bytes_total {
                Some(t) if t > 0 => (
                    self.bytes_mapped.min(t) as f64 / t as f64,
                    format!("{:.1}/{:.1} MiB", mib(self.bytes_mapped.min(t)), mib(t)),
                ),
                _ => (0.0, format!("{} records", self.records_mapped)),
            },
            Phase::Reduce | Phase::Done => (
                if self.partitions_total > 0 {
                    self.partitions_done as f64 / self.partitions_total as f64
                } else {
                    1.0
                },
                format!(
                    "{}/{} partitions",
                    self.partitions_done, self.partitions_total
                ),
            ),
        };
        let filled = ((fraction * WIDTH as f64) as usize).min(WIDTH);
        let eta = match (self.phase, self.eta()) {
            (Phase::Map, Some(e)) => format!(" ETA {}s", e.as_secs()),
            _ => String::new(),
        };
        format!(
            "{:<6} [{}{}] {:>3.0}% {} {:.1} MiB/s{}",
            match self.phase {
                Phase::Map => "map",
                Phase::Reduce => "reduce",
                Phase::Done => "done",
            },
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            fraction * 100.0,
            what,
            mib(self.rate() as u64),
            eta
        )
    }
}

/// Redraws the bar in place on stderr.
pub(crate) fn draw(p: &Progress, last: bool) {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r\x1b[2K{}", p.render());
    if last {
        let _ = writeln!(err);
    }
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Progress {
        Progress {
            phase: Phase::Map,
            bytes_mapped: 50 << 20,
            bytes_total: Some(100 << 20),
            records_mapped: 10,
            splits_done: 1,
            splits_total: Some(2),
            partitions_done: 0,
            partitions_total: 4,
            spilled_bytes: 0,
            elapsed: Duration::from_secs(5),
        }
    }

    #[test]
    fn rate_and_eta() {
        let p = snapshot();
        assert_eq!(p.rate(), (10 << 20) as f64);
        assert_eq!(p.eta(), Some(Duration::from_secs(5)));
        let line = p.render();
        assert!(line.contains("50%"), "{line}");
        assert!(line.contains("ETA 5s"), "{line}");
        let mut r = p.clone();
        r.phase = Phase::Reduce;
        r.partitions_done = 1;
        assert!(r.render().contains("1/4 partitions"));
        r.elapsed = Duration::ZERO;
        assert_eq!(r.rate(), 0.0);
        assert_eq!(r.eta(), None);
    }

    /// A clock that jumped to its end gives a tiny rate; the ETA saturates
    /// instead of overflowing `Duration`.
    #[test]
    fn eta_saturates() {
        let mut p = snapshot();
        p.bytes_mapped = 1;
        p.bytes_total = Some(u64::MAX);
        p.elapsed = Duration::MAX;
        assert_eq!(p.eta(), Some(Duration::MAX));
        assert!(p.render().contains("ETA"));
    }
}
