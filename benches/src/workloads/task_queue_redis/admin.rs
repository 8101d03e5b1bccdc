//! The administrative connection of the Redis cases: the server's CPU
//! time and command counts around a round, flushing between rounds.

use std::collections::HashMap;

use super::{CommandStat, ServerCost};

/// An administrative connection to the server (stats, flushing).
pub struct Admin {
    pub(super) url: String,
    conn: redis::Connection,
}

impl Admin {
    /// Connects to `url`.
    ///
    /// # Panics
    ///
    /// If the server cannot be reached.
    #[must_use]
    pub fn connect(url: &str) -> Self {
        let conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect to the compare redis-server");
        Self {
            url: url.to_owned(),
            conn,
        }
    }

    fn info(&mut self, section: &str) -> HashMap<String, String> {
        let text: String = redis::cmd("INFO")
            .arg(section)
            .query(&mut self.conn)
            .expect("INFO");
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect()
    }

    fn cpu_us(&mut self) -> f64 {
        let info = self.info("cpu");
        let get = |k: &str| {
            info.get(k)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (get("used_cpu_user") + get("used_cpu_sys")) * 1e6
    }

    pub(super) fn reset_stats(&mut self) -> f64 {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut self.conn)
            .expect("CONFIG RESETSTAT");
        self.cpu_us()
    }

    /// The cost since `reset_stats`, without the commands this connection
    /// and the completion probes sent.
    pub(super) fn cost(&mut self, cpu_before: f64) -> ServerCost {
        let cpu_us = self.cpu_us() - cpu_before;
        let mut calls: Vec<CommandStat> = self
            .info("commandstats")
            .into_iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("cmdstat_")?.to_owned();
                let field = |f: &str| -> Option<u64> {
                    v.split(',')
                        .find_map(|x| x.strip_prefix(f)?.strip_prefix('='))?
                        .parse()
                        .ok()
                };
                Some(CommandStat {
                    name,
                    calls: field("calls")?,
                    usec: field("usec")?,
                })
            })
            .filter(|c| !matches!(c.name.as_str(), "info" | "config|resetstat" | "scard"))
            .collect();
        calls.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
        ServerCost {
            cpu_us,
            commands: calls.iter().map(|c| c.calls).sum(),
            calls,
        }
    }

    pub(super) fn flush(&mut self) {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut self.conn)
            .expect("FLUSHALL");
    }

    pub(super) fn scard(&mut self, key: &str) -> u64 {
        redis::cmd("SCARD")
            .arg(key)
            .query(&mut self.conn)
            .expect("SCARD")
    }
}
