#!/usr/bin/env bash
# Runs every test: formatting and lint checks, the Rust unit tests, and the tcltest suites
# (which `cargo test` runs through tests/tcltest.rs against the freshly built library).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
scripts/deps.sh
use_cargo
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
