#!/usr/bin/env bash
# The main job, end to end: build the extension, start a local SMTP server (aiosmtpd, on
# 127.0.0.1 only), send a message from tclsh with `package require smtp`, and show what
# the server received.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
/usr/bin/python3 tests/servers/capture.py --port-file "$work/port" --dir "$work" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
[ -s "$work/port" ] || { echo "demo: the SMTP server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

TCLSMTP_LIBDIR="$PWD/target/release" tclsh8.6 scripts/demo.tcl "$(cat "$work/port")"

for _ in $(seq 100); do [ -e "$work/1.json" ] && break; sleep 0.05; done
echo
echo "=== what the server received ==="
cat "$work/1.json"; echo
cat "$work/1.eml"
