#!/usr/bin/env bash
# Runs every test: formatting and lint checks, the Rust unit tests, and the tcltest suites
# (which `cargo test` runs through tests/tcltest.rs against the freshly built library).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
