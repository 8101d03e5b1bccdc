//! Where the cluster's processes are: timely's standard flags (`-w`, `-n`,
//! `-p`, `-h`) parsed into [`ClusterConfig`], with typed errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ClusterError;

/// The first port of the default addresses, as in timely:
/// `localhost:2101`, `localhost:2102`, ...
const DEFAULT_PORT: u16 = 2101;

/// How many processes run the job, which one this is, the addresses of all
/// of them, and the worker threads per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    threads: usize,
    process: usize,
    addresses: Vec<String>,
    connect_timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self::threads(1)
    }
}

impl ClusterConfig {
    /// Upper bound on `-w` and `-n`.
    pub const MAX_WORKERS: usize = 1024;

    /// One process with `threads` workers (timely's thread allocator: no
    /// sockets). A zero is reported by [`ClusterConfig::validate`].
    #[must_use]
    pub fn threads(threads: usize) -> Self {
        Self {
            threads,
            process: 0,
            addresses: vec![format!("localhost:{DEFAULT_PORT}")],
            connect_timeout: Duration::from_secs(30),
        }
    }

    /// Process `process` of the processes at `addresses` (`host:port`,
    /// in process order), with `threads` workers each.
    ///
    /// # Errors
    ///
    /// [`ClusterError::ProcessIndex`] when `process` is not below the
    /// number of addresses; [`ClusterError::Flag`] for zero or too many
    /// threads or processes.
    pub fn cluster(
        threads: usize,
        process: usize,
        addresses: Vec<String>,
    ) -> Result<Self, ClusterError> {
        let c = Self {
            threads,
            process,
            addresses,
            connect_timeout: Duration::from_secs(30),
        };
        c.validate()?;
        Ok(c)
    }

    /// How long the processes may take to connect to each other before
    /// the job fails with [`ClusterError::Unreachable`] (30 s by default).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Parses timely's standard flags out of `args` (without the program
    /// name) and returns the configuration with the other arguments, in
    /// order:
    ///
    /// - `-w N`, `--threads N`: workers per process (default 1);
    /// - `-n N`, `--processes N`: processes (default 1);
    /// - `-p I`, `--process I`: this process, from 0 (default 0);
    /// - `-h FILE`, `--hostfile FILE`: one `host:port` line per process, in
    ///   process order (default `localhost:2101`, `localhost:2102`, ...).
    ///
    /// `--` ends the flags; what follows is returned as is.
    ///
    /// # Errors
    ///
    /// [`ClusterError::Flag`] for a flag without a value or with a bad one,
    /// [`ClusterError::Hostfile`] / [`ClusterError::HostfileLine`] for a
    /// hostfile that cannot be read or has a bad line,
    /// [`ClusterError::ProcessCount`] when the hostfile lists a different
    /// number of processes than `-n`, and [`ClusterError::ProcessIndex`]
    /// when `-p` is not below `-n`.
    pub fn from_args<I, S>(args: I) -> Result<(Self, Vec<String>), ClusterError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut threads = 1usize;
        let mut processes: Option<usize> = None;
        let mut process = 0usize;
        let mut hostfile: Option<PathBuf> = None;
        let mut rest = Vec::new();
        let mut it = args.into_iter().map(Into::into);
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (a.clone(), None),
            };
            let value = |it: &mut dyn Iterator<Item = String>| {
                inline
                    .clone()
                    .or_else(|| it.next())
                    .ok_or(ClusterError::Flag {
                        flag: flag.clone(),
                        reason: "missing value".into(),
                    })
            };
            match flag.as_str() {
                "-w" | "--threads" => threads = number(&flag, &value(&mut it)?)?,
                "-n" | "--processes" => processes = Some(number(&flag, &value(&mut it)?)?),
                "-p" | "--process" => process = index(&flag, &value(&mut it)?)?,
                "-h" | "--hostfile" => hostfile = Some(PathBuf::from(value(&mut it)?)),
                "--" => {
                    rest.extend(it.by_ref());
                }
                _ => rest.push(a),
            }
        }
        let addresses = match (&hostfile, processes) {
            (Some(path), n) => {
                let addrs = read_hostfile(path)?;
                if let Some(n) = n {
                    if n != addrs.len() {
                        return Err(ClusterError::ProcessCount {
                            processes: n,
                            addresses: addrs.len(),
                        });
                    }
                }
                addrs
            }
            (None, n) => default_addresses(n.unwrap_or(1)),
        };
        let c = Self {
            threads,
            process,
            addresses,
            connect_timeout: Duration::from_secs(30),
        };
        c.validate()?;
        Ok((c, rest))
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// As [`ClusterConfig::cluster`].
    pub fn validate(&self) -> Result<(), ClusterError> {
        let bad = |flag: &str, reason: &str| ClusterError::Flag {
            flag: flag.into(),
            reason: reason.into(),
        };
        if self.threads == 0 {
            return Err(bad("-w", "must be at least 1"));
        }
        if self.addresses.is_empty() {
            return Err(bad("-n", "must be at least 1"));
        }
        if self.threads > Self::MAX_WORKERS || self.addresses.len() > Self::MAX_WORKERS {
            return Err(bad("-w/-n", "more than ClusterConfig::MAX_WORKERS"));
        }
        if self.process >= self.addresses.len() {
            return Err(ClusterError::ProcessIndex {
                process: self.process,
                processes: self.addresses.len(),
            });
        }
        Ok(())
    }

    /// Workers per process (`-w`).
    #[must_use]
    pub fn threads_per_process(&self) -> usize {
        self.threads
    }

    /// Processes (`-n`).
    #[must_use]
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// This process (`-p`).
    #[must_use]
    pub fn process(&self) -> usize {
        self.process
    }

    /// Workers across all processes.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.threads * self.addresses.len()
    }

    /// The processes' addresses, in process order.
    #[must_use]
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// The connect timeout.
    #[must_use]
    pub fn connect_timeout_value(&self) -> Duration {
        self.connect_timeout
    }

    /// Timely's configuration: the thread or process allocator for one
    /// process, TCP between processes otherwise.
    pub(crate) fn to_timely(&self) -> timely::Config {
        let communication = if self.addresses.len() == 1 {
            timely::CommunicationConfig::Process(self.threads)
        } else {
            timely::CommunicationConfig::Cluster {
                threads: self.threads,
                process: self.process,
                addresses: self.addresses.clone(),
                report: false,
                zerocopy: false,
            }
        };
        timely::Config {
            communication,
            worker: timely::WorkerConfig::default(),
        }
    }
}

fn number(flag: &str, v: &str) -> Result<usize, ClusterError> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ClusterError::Flag {
            flag: flag.into(),
            reason: format!("expected a positive integer, got {v:?}"),
        }),
    }
}

fn index(flag: &str, v: &str) -> Result<usize, ClusterError> {
    v.parse::<usize>().map_err(|_| ClusterError::Flag {
        flag: flag.into(),
        reason: format!("expected a process index, got {v:?}"),
    })
}

/// `localhost:2101`, `localhost:2102`, ... for `n` processes.
fn default_addresses(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("localhost:{}", usize::from(DEFAULT_PORT) + i))
        .collect()
}

/// The `host:port` lines of a hostfile (blank lines and `#` comments
/// skipped).
fn read_hostfile(path: &Path) -> Result<Vec<String>, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Hostfile {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let ok = line
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(ClusterError::HostfileLine {
                path: path.to_path_buf(),
                line: i + 1,
            });
        }
        out.push(line.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(ClusterConfig, Vec<String>), ClusterError> {
        ClusterConfig::from_args(args.iter().copied())
    }

    #[test]
    fn standard_flags() {
        let (c, rest) = parse(&["-w", "2", "in.txt", "--processes=3", "-p", "1"]).unwrap();
        assert_eq!(c.threads_per_process(), 2);
        assert_eq!(c.processes(), 3);
        assert_eq!(c.process(), 1);
        assert_eq!(c.workers(), 6);
        assert_eq!(c.addresses()[2], "localhost:2103");
        assert_eq!(rest, vec!["in.txt".to_string()]);
        let (c, rest) = parse(&["x", "--", "-w", "3"]).unwrap();
        assert_eq!(c.workers(), 1);
        assert_eq!(rest, vec!["x", "-w", "3"]);
    }

    #[test]
    fn bad_flags_are_typed() {
        assert!(matches!(parse(&["-w"]), Err(ClusterError::Flag { .. })));
        assert!(matches!(
            parse(&["-w", "0"]),
            Err(ClusterError::Flag { .. })
        ));
        assert!(matches!(
            parse(&["-n", "x"]),
            Err(ClusterError::Flag { .. })
        ));
        assert!(matches!(
            parse(&["-n", "2", "-p", "2"]),
            Err(ClusterError::ProcessIndex {
                process: 2,
                processes: 2
            })
        ));
    }

    #[test]
    fn hostfiles() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("hosts");
        std::fs::write(&good, "# two\n127.0.0.1:4000\n\n127.0.0.1:4001\n").unwrap();
        let g = good.to_str().unwrap();
        let (c, _) = parse(&["-h", g, "-p", "1"]).unwrap();
        assert_eq!(c.addresses(), ["127.0.0.1:4000", "127.0.0.1:4001"]);
        assert!(matches!(
            parse(&["-h", g, "-n", "3"]),
            Err(ClusterError::ProcessCount {
                processes: 3,
                addresses: 2
            })
        ));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "127.0.0.1:4000\nnoport\n").unwrap();
        assert!(matches!(
            parse(&["-h", bad.to_str().unwrap()]),
            Err(ClusterError::HostfileLine { line: 2, .. })
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            parse(&["-h", missing.to_str().unwrap()]),
            Err(ClusterError::Hostfile { .. })
        ));
    }
}
