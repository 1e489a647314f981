#!/usr/bin/env bash
# The main job, end to end: build the extension, start a local SMTP server (aiosmtpd, on
# 127.0.0.1 only), send a message with examples/send.tcl (tracing the dialogue), and show
# what the server received.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
scripts/deps.sh
use_cargo
cargo build --release --quiet

tempdir
background "$WORK/server.log" \
    /usr/bin/python3 tests/servers/capture.py --port-file "$WORK/port" --dir "$WORK"
server=$!
port=$(wait_port_file 5 "$server" "$WORK/port") \
    || die "the SMTP server did not start: $(cat "$WORK/server.log")"

# TCLLIBPATH puts this build ahead of any installed smtp package.
echo "smtp $(echo 'puts [package require smtp]' | TCLLIBPATH="$REPO/target/release" tclsh8.6)" \
    "from target/release, sending to 127.0.0.1:$port"
TCLLIBPATH="$REPO/target/release" tclsh8.6 examples/send.tcl -server 127.0.0.1 -port "$port" \
    -from alice@example.org -to "Bob <bob@example.net>, carol@example.net" -debug 1

wait_until 5 "$server" test -e "$WORK/1.json" || die "the server stored no message"
echo
echo "=== what the server received ==="
cat "$WORK/1.json"; echo
cat "$WORK/1.eml"
