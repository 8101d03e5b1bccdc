//! `compare`: the side-by-side report of every sysblocks crate against the
//! peers its users would otherwise pick.
//!
//! ```text
//! compare [--smoke | --quick | --full] [--only <crate>] [--write-readme]
//! ```
//!
//! `--write-readme` also replaces the results section of the root
//! `README.md` (between its `compare-results` markers) with this run's table.
//!
//! Every case runs ours and each peer in this process on the same input,
//! interleaved, and reports medians and the ratio to the best peer. Output:
//! Markdown on stdout, `target/compare/report.json` and
//! `target/compare/report.html`. A crate whose cases are not written yet is
//! listed as missing, never skipped silently.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use benches::compare::{self, CRATES};
use benches::harness::Mode;
use benches::report::Report;

/// Counts heap bytes for the memory cases (idle outside them).
#[global_allocator]
static ALLOC: benches::alloc::Counting = benches::alloc::Counting;

fn main() -> ExitCode {
    let mut mode = Mode::Full;
    let mut only: Option<String> = None;
    let mut write_readme = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smoke" => mode = Mode::Smoke,
            "--quick" => mode = Mode::Quick,
            "--full" => mode = Mode::Full,
            "--write-readme" => write_readme = true,
            "--only" => match args.next() {
                Some(name) if CRATES.iter().any(|c| *c == name) => only = Some(name),
                Some(name) => {
                    eprintln!(
                        "compare: unknown crate {name:?}; expected one of {}",
                        CRATES.join(", ")
                    );
                    return ExitCode::from(2);
                }
                None => {
                    eprintln!("compare: --only needs a crate name ({})", CRATES.join(", "));
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!(
                    "usage: compare [--smoke | --quick | --full] [--only <crate>] [--write-readme]"
                );
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("compare: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let mut report = Report {
        machine: machine(),
        mode: format!("{mode:?}").to_lowercase(),
        date: utc_now(),
        ..Report::default()
    };
    let selected: Vec<&str> = CRATES
        .iter()
        .copied()
        .filter(|c| only.as_deref().is_none_or(|o| o == *c))
        .collect();
    let tty = std::io::stderr().is_terminal();
    for (i, krate) in selected.iter().enumerate() {
        progress(tty, i, selected.len(), krate);
        compare::run_crate(krate, mode, &mut report);
    }
    progress(tty, selected.len(), selected.len(), "done");
    if tty {
        eprintln!();
    }
    print!("{}", report.markdown());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/compare");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("report.json"), report.json()))
        .and_then(|()| std::fs::write(dir.join("report.html"), report.html()));
    if let Err(e) = written {
        eprintln!("compare: cannot write the report to {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    eprintln!(
        "compare: wrote {}/report.json and report.html",
        dir.display()
    );
    if write_readme {
        let mut command = String::from("cargo run --release -p benches --bin compare --");
        if mode != Mode::Full {
            command.push_str(&format!(" --{}", report.mode));
        }
        if let Some(o) = &only {
            command.push_str(&format!(" --only {o}"));
        }
        command.push_str(" --write-readme");
        let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        match replace_section(&readme, &report.readme_section(&command)) {
            Ok(()) => eprintln!(
                "compare: rewrote the results section of {}",
                readme.display()
            ),
            Err(e) => {
                eprintln!("compare: cannot update {}: {e}", readme.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

const BEGIN: &str = "<!-- compare-results:begin -->";
const END: &str = "<!-- compare-results:end -->";

/// Replaces what lies between the README's result markers with `section`.
fn replace_section(readme: &std::path::Path, section: &str) -> std::io::Result<()> {
    let text = std::fs::read_to_string(readme)?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the markers {BEGIN} and {END} are missing"),
        ));
    };
    if e < b {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{END} comes before {BEGIN}"),
        ));
    }
    let new = format!("{}{BEGIN}\n{section}{}", &text[..b], &text[e..]);
    let tmp = readme.with_extension("md.tmp");
    std::fs::write(&tmp, new)?;
    std::fs::rename(&tmp, readme)
}

fn progress(tty: bool, done: usize, total: usize, what: &str) {
    const WIDTH: usize = 30;
    let filled = WIDTH * done / total.max(1);
    let bar = format!(
        "[{}{}] {done}/{total} {what}",
        "#".repeat(filled),
        "-".repeat(WIDTH - filled)
    );
    if tty {
        eprint!("\r\x1b[2K{bar}");
    } else {
        eprintln!("{bar}");
    }
}

/// Cores and CPU model, for the report header.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cores} cores, {model}")
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (civil-from-days).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}
