//! `compare`: the side-by-side report of every sysblocks crate against the
//! peers its users would otherwise pick.
//!
//! Usage: `compare [--quick | --smoke] [--only <crate>]`. The measuring cases
//! arrive crate by crate; a crate whose cases are not written yet is listed
//! as missing, never skipped silently.

use std::process::ExitCode;

/// The crates the report covers, with the peers each is measured against.
const CRATES: &[(&str, &str)] = &[
    ("lru-ttl-cache", "quick_cache, moka, mini_moka, Mutex<lru::LruCache>"),
    ("consistent-hash", "hashring, consistent_hash_ring, maglev, jump-consistent-hash, jumphash, anchorhash, hrw-hash"),
    ("rate-limiter", "governor, ratelimit"),
    ("task-queue", "crossbeam-channel, flume, kanal"),
    ("lb", "tower p2c"),
    ("mapreduce", "hand-written rayon fold + reduce"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Smoke,
    Quick,
    Full,
}

fn main() -> ExitCode {
    let mut mode = Mode::Full;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => mode = Mode::Smoke,
            "--quick" => mode = Mode::Quick,
            "--full" => mode = Mode::Full,
            "--only" => match args.next() {
                Some(name) if CRATES.iter().any(|(c, _)| *c == name) => only = Some(name),
                Some(name) => {
                    eprintln!(
                        "compare: unknown crate {name:?}; expected one of {}",
                        names()
                    );
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("compare: --only needs a crate name ({})", names());
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: compare [--smoke | --quick | --full] [--only <crate>]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("compare: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    println!("# sysblocks comparison ({mode:?} mode)\n");
    println!("| crate | peers | status |");
    println!("|---|---|---|");
    for (name, peers) in CRATES {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        println!("| {name} | {peers} | missing: no cases yet |");
    }
    ExitCode::SUCCESS
}

fn names() -> String {
    CRATES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}
