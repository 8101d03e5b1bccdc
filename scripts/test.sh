#!/usr/bin/env bash
# The full test suite, one command. Every step must pass; the last thing it
# prints is the test runner's summary.
#
#   scripts/test.sh
#
# Steps: rustfmt, clippy (warnings denied), rustdoc (warnings denied),
# packaging of every library crate, the loom models of every crate (own
# target dir, bounded preemptions), valgrind memcheck, the comparison report
# in smoke mode, the benches in test mode, and finally the whole
# workspace's unit, integration and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The package name of a crate folder (folders keep short names; packages
# carry the `sysblocks-` prefix).
pkg_name() { sed -n 's/^name = "\(.*\)"$/\1/p' "$1/Cargo.toml" | head -n 1; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

step "cargo package (every library crate is publishable on its own)"
# Checks each manifest, its metadata and the file list; a full
# `cargo package --workspace --exclude benches` also builds every packaged
# crate from its tarball (run it by hand before a release).
cargo package --workspace --exclude benches --no-verify --allow-dirty --quiet

step "loom models (--cfg sysblocks_loom, LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-2})"
# A loom build needs its own target directory: RUSTFLAGS differ, and sharing
# would throw away the normal build cache. Library unit tests named loom_* and
# the tests/loom_*.rs files of every crate run; nothing else is selected.
loom_pkgs=()
for manifest in */Cargo.toml; do
  dir=${manifest%/Cargo.toml}
  [ "$dir" = benches ] && continue
  if grep -rqs 'sysblocks_loom' "$dir/src" "$dir/tests" 2>/dev/null; then
    loom_pkgs+=(-p "$(pkg_name "$dir")")
  fi
done
if [ ${#loom_pkgs[@]} -gt 0 ]; then
  RUSTFLAGS="--cfg sysblocks_loom ${RUSTFLAGS:-}" \
  LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test --target-dir target/loom "${loom_pkgs[@]}" \
      --features sysblocks-lru-ttl-cache/async --lib --tests -- loom_
fi

step "valgrind memcheck (crates that do not forbid unsafe code)"
# miri needs a nightly toolchain these machines cannot fetch; memcheck runs
# the library unit tests of every crate whose lib.rs does not say
# #![forbid(unsafe_code)]. Where valgrind is missing (a user's machine) the
# step says so; .ci/run installs it, so CI always runs it.
for lib in */src/lib.rs; do
  dir=${lib%/src/lib.rs}
  grep -q 'forbid(unsafe_code)' "$lib" && continue
  if ! command -v valgrind >/dev/null 2>&1; then
    echo "skipped: valgrind not installed (memcheck of $dir)" >&2
    continue
  fi
  exe=$(cargo test -p "$(pkg_name "$dir")" --lib --no-run --message-format=json 2>/dev/null \
        | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n 1)
  [ -n "$exe" ] || { echo "no unit-test binary for $dir" >&2; exit 1; }
  valgrind --tool=memcheck --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --quiet "$exe" --test-threads=2 -q
done

step "compare --smoke (the report code runs)"
cargo run -p benches --bin compare --quiet -- --smoke >/dev/null

step "benches in test mode"
cargo test -p benches --benches --quiet

step "cargo test --workspace --all-features"
cargo test --workspace --all-features
