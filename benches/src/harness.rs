//! The measuring core of `compare`: interleaved repetitions of ours and each
//! peer on the same input, medians, and ratios to the best peer.

use std::time::{Duration, Instant};

/// How long the report runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A few milliseconds per case: proves the code runs (CI).
    Smoke,
    /// Under three minutes in all on two cores.
    Quick,
    /// The default: enough repetitions for stable medians.
    Full,
}

impl Mode {
    /// Target wall time of one sample of one contender.
    #[must_use]
    pub fn sample_time(self) -> Duration {
        match self {
            Self::Smoke => Duration::from_micros(500),
            Self::Quick => Duration::from_millis(20),
            Self::Full => Duration::from_millis(100),
        }
    }

    /// Interleaved repetitions per contender.
    #[must_use]
    pub fn repetitions(self) -> usize {
        match self {
            Self::Smoke => 1,
            Self::Quick => 5,
            Self::Full => 11,
        }
    }

    /// Scales a workload size (keys, items) down for the short modes.
    #[must_use]
    pub fn scale(self, full: usize) -> usize {
        match self {
            Self::Smoke => (full / 100).max(1),
            Self::Quick => (full / 4).max(1),
            Self::Full => full,
        }
    }
}

/// A timed routine: given an iteration count, runs that many operations and
/// returns the time they took (setup excluded).
pub type Routine<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// One implementation under test in a case.
pub struct Contender<'a> {
    /// Display name, for example `ours` or `quick_cache`.
    pub name: String,
    /// Whether this is the sysblocks implementation.
    pub ours: bool,
    routine: Routine<'a>,
}

impl<'a> Contender<'a> {
    /// Ours if `ours`, else a peer's implementation.
    pub fn new(
        name: impl Into<String>,
        ours: bool,
        routine: impl FnMut(u64) -> Duration + 'a,
    ) -> Self {
        Self {
            name: name.into(),
            ours,
            routine: Box::new(routine),
        }
    }

    /// Our implementation.
    pub fn ours(name: impl Into<String>, routine: impl FnMut(u64) -> Duration + 'a) -> Self {
        Self::new(name, true, routine)
    }

    /// A peer's implementation.
    pub fn peer(name: impl Into<String>, routine: impl FnMut(u64) -> Duration + 'a) -> Self {
        Self::new(name, false, routine)
    }
}

/// Times `iters` calls of `op`, the usual body of a [`Routine`].
pub fn time_iters(iters: u64, mut op: impl FnMut(u64)) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        op(i);
    }
    start.elapsed()
}

/// The samples of one contender in one case.
#[derive(Debug, Clone)]
pub struct Series {
    /// Contender name.
    pub name: String,
    /// Whether it is ours.
    pub ours: bool,
    /// One value per repetition, in the case's unit.
    pub samples: Vec<f64>,
}

impl Series {
    /// Median of the samples (NaN-free by construction).
    #[must_use]
    pub fn median(&self) -> f64 {
        median(&self.samples)
    }
}

/// The result of one case: a value per contender and repetition.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Crate the case belongs to.
    pub krate: String,
    /// Case name, for example `get zipf 1 thread`.
    pub name: String,
    /// Unit of the samples, for example `ns/op` or `bytes/entry`.
    pub unit: String,
    /// Whether smaller values are better (times, bytes) or larger (hit ratio).
    pub lower_is_better: bool,
    /// One series per contender, ours first.
    pub series: Vec<Series>,
}

impl CaseResult {
    /// Our series, if the case has one.
    #[must_use]
    pub fn ours(&self) -> Option<&Series> {
        self.series.iter().find(|s| s.ours)
    }

    /// The best peer by median.
    #[must_use]
    pub fn best_peer(&self) -> Option<&Series> {
        let peers = self.series.iter().filter(|s| !s.ours);
        if self.lower_is_better {
            peers.min_by(|a, b| a.median().total_cmp(&b.median()))
        } else {
            peers.max_by(|a, b| a.median().total_cmp(&b.median()))
        }
    }

    /// How many times better ours is than the best peer (> 1 is a win).
    #[must_use]
    pub fn advantage(&self) -> Option<f64> {
        let (ours, peer) = (self.ours()?.median(), self.best_peer()?.median());
        let r = if self.lower_is_better {
            peer / ours
        } else {
            ours / peer
        };
        r.is_finite().then_some(r)
    }

    /// The lowest and highest per-repetition advantage: repetition `i` of
    /// ours against repetition `i` of the best peer (they ran back to back,
    /// interleaved). This is the noise a rerun's ratio should fall within.
    /// `None` for single-sample cases.
    #[must_use]
    pub fn advantage_spread(&self) -> Option<(f64, f64)> {
        let (ours, peer) = (self.ours()?, self.best_peer()?);
        if ours.samples.len() < 2 || ours.samples.len() != peer.samples.len() {
            return None;
        }
        let ratios = ours
            .samples
            .iter()
            .zip(&peer.samples)
            .filter_map(|(&o, &p)| {
                let r = if self.lower_is_better { p / o } else { o / p };
                r.is_finite().then_some(r)
            });
        let (lo, hi) = ratios.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
            (lo.min(r), hi.max(r))
        });
        (lo <= hi).then_some((lo, hi))
    }
}

/// Runs a timed case: calibrates each contender to the mode's sample time,
/// then runs the repetitions interleaved (ours, peer, ours, peer, ...) so
/// that machine drift hits every contender alike. Samples are ns per op.
pub fn run_timed(
    krate: &str,
    name: &str,
    mode: Mode,
    mut contenders: Vec<Contender<'_>>,
) -> CaseResult {
    let target = mode.sample_time();
    let iters: Vec<u64> = contenders
        .iter_mut()
        .map(|c| calibrate(&mut c.routine, target))
        .collect();
    let mut series: Vec<Series> = contenders
        .iter()
        .map(|c| Series {
            name: c.name.clone(),
            ours: c.ours,
            samples: Vec::new(),
        })
        .collect();
    for _ in 0..mode.repetitions() {
        for ((c, s), &n) in contenders.iter_mut().zip(series.iter_mut()).zip(&iters) {
            let t = (c.routine)(n);
            s.samples.push(t.as_nanos() as f64 / n as f64);
        }
    }
    CaseResult {
        krate: krate.to_owned(),
        name: name.to_owned(),
        unit: "ns/op".to_owned(),
        lower_is_better: true,
        series,
    }
}

/// A measured (not timed) case: one series per `(name, ours, samples)`, for
/// example heap bytes per node or a hit ratio. Ours should come first.
#[must_use]
pub fn measured(
    krate: &str,
    name: &str,
    unit: &str,
    lower_is_better: bool,
    series: Vec<(&str, bool, Vec<f64>)>,
) -> CaseResult {
    CaseResult {
        krate: krate.to_owned(),
        name: name.to_owned(),
        unit: unit.to_owned(),
        lower_is_better,
        series: series
            .into_iter()
            .map(|(name, ours, samples)| Series {
                name: name.to_owned(),
                ours,
                samples,
            })
            .collect(),
    }
}

/// Doubles the iteration count until one run takes a tenth of the target,
/// then scales to the target.
fn calibrate(routine: &mut Routine<'_>, target: Duration) -> u64 {
    let mut n: u64 = 1;
    loop {
        let t = routine(n);
        if t >= target / 10 || n >= 1 << 40 {
            let per = t.as_nanos().max(1) as f64 / n as f64;
            return ((target.as_nanos() as f64 / per) as u64).clamp(1, 1 << 40);
        }
        n *= 2;
    }
}

/// Median of a slice (0 for an empty one).
#[must_use]
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn spread_pairs_repetitions() {
        let r = CaseResult {
            krate: "x".into(),
            name: "y".into(),
            unit: "ns/op".into(),
            lower_is_better: true,
            series: vec![
                Series {
                    name: "ours".into(),
                    ours: true,
                    samples: vec![10.0, 20.0, 10.0],
                },
                Series {
                    name: "peer".into(),
                    ours: false,
                    samples: vec![30.0, 20.0, 15.0],
                },
            ],
        };
        assert_eq!(r.advantage_spread(), Some((1.0, 3.0)));
        let single = CaseResult {
            series: r
                .series
                .iter()
                .map(|s| Series {
                    samples: s.samples[..1].to_vec(),
                    ..s.clone()
                })
                .collect(),
            ..r.clone()
        };
        assert_eq!(single.advantage_spread(), None);
    }

    #[test]
    fn advantage_uses_best_peer() {
        let r = CaseResult {
            krate: "x".into(),
            name: "y".into(),
            unit: "ns/op".into(),
            lower_is_better: true,
            series: vec![
                Series {
                    name: "ours".into(),
                    ours: true,
                    samples: vec![10.0],
                },
                Series {
                    name: "a".into(),
                    ours: false,
                    samples: vec![30.0],
                },
                Series {
                    name: "b".into(),
                    ours: false,
                    samples: vec![20.0],
                },
            ],
        };
        assert_eq!(r.best_peer().unwrap().name, "b");
        assert_eq!(r.advantage(), Some(2.0));
    }

    #[test]
    fn measured_case_ranks_higher_is_better() {
        let r = measured(
            "x",
            "hit ratio",
            "ratio",
            false,
            vec![
                ("ours", true, vec![0.5]),
                ("a", false, vec![0.4]),
                ("b", false, vec![0.25]),
            ],
        );
        assert_eq!(r.best_peer().unwrap().name, "a");
        assert_eq!(r.advantage(), Some(1.25));
    }

    #[test]
    fn interleaved_run_collects_every_repetition() {
        let r = run_timed(
            "x",
            "spin",
            Mode::Smoke,
            vec![
                Contender::ours("ours", |n| {
                    time_iters(n, |i| {
                        std::hint::black_box(i);
                    })
                }),
                Contender::peer("peer", |n| {
                    time_iters(n, |i| {
                        std::hint::black_box(i * 2);
                    })
                }),
            ],
        );
        assert_eq!(r.series.len(), 2);
        assert!(r
            .series
            .iter()
            .all(|s| s.samples.len() == Mode::Smoke.repetitions()));
    }
}
