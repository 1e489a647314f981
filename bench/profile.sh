#!/usr/bin/env bash
# The fixed cost of one send, in pieces: a 1 KiB smtp::mail and a 1 KiB sendmessage of a
# token made with -encoding 7bit, to Postfix's smtp-sink on 127.0.0.1 (started and stopped
# here). Prints four reports (bench/PROFILE.md explains them):
#
#   0. bench/profile/first.tcl: the first send of a process, with the default -usetls
#      and with -usetls 0 (the TLS context the first one builds);
#   1. bench/profile/fixedcost: the pieces that do not involve Tcl, timed in Rust
#      (thread start, Date, randomness, building the message, TLS set-up, the dialogue
#      with and without a thread);
#   2. bench/profile/parts.tcl: the pieces on the Tcl side (the mime bridge's procs, the
#      token, where smtp::mail stands before its thread starts);
#   3. perf record -g of bench/profile/loop.tcl (PROFILE_SENDS sends of each kind after a
#      warm-up), each sample sorted into a part of the send by bench/profile/classify.py.
#
#   bench/profile.sh      about 2 minutes; needs perf (linux-perf) for report 3
#
# Knobs (environment): PROFILE_SENDS (2000), PROFILE_BATCH (300: calls per batch of
# reports 1 and 2, which show the fastest and the median of 9 batches).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO"

sends=${PROFILE_SENDS:-2000}
batch=${PROFILE_BATCH:-300}

scripts/deps.sh
use_cargo
echo "profile: building (release)" >&2
cargo build --release --lib --quiet
cargo build --release --quiet --manifest-path bench/profile/fixedcost/Cargo.toml --target-dir target/fixedcost
export TCLSMTP_LIBDIR="$PWD/target/release"

tempdir
port=$(free_ports 1)
as_user=()
[ "$(id -u)" -ne 0 ] || as_user=(-u nobody)
background "$WORK/sink.log" smtp-sink -4 "${as_user[@]}" "127.0.0.1:$port" 1024
sink=$!
wait_port 5 "$sink" "$port" || die "smtp-sink did not start: $(cat "$WORK/sink.log")"

echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
echo
echo "== 0. The first send of a process, with and without -usetls (bench/profile/first.tcl)"
for _ in 1 2 3; do
    for usetls in 1 0; do
        /usr/bin/time -f "  (the whole tclsh: %e s)" tclsh8.6 bench/profile/first.tcl "$port" "$usetls" 2>&1
    done
done
echo
echo "== 1. Without Tcl (bench/profile/fixedcost)"
target/fixedcost/release/fixedcost "$port" "$batch"
echo
echo "== 2. The Tcl side (bench/profile/parts.tcl)"
tclsh8.6 bench/profile/parts.tcl "$port" "$batch"
echo
if perf record -q -e cpu-clock -o /dev/null true 2>/dev/null; then
    for kind in mail sendmessage; do
        echo "== 3. perf record of $sends sends: $kind (bench/profile/loop.tcl, bench/profile/classify.py)"
        mkfifo "$WORK/ctl.$kind" "$WORK/ack.$kind"
        # cpu-clock: a virtual machine often has no hardware counters. 5000 Hz: 200 us a sample.
        perf record -q -D -1 --control "fifo:$WORK/ctl.$kind,$WORK/ack.$kind" -e cpu-clock -F 5000 \
            --call-graph dwarf,16384 -o "$WORK/perf.$kind" -- \
            tclsh8.6 bench/profile/loop.tcl "$kind" "$sends" "$port" "$WORK/ctl.$kind" 2>&1
        perf script -i "$WORK/perf.$kind" 2>/dev/null | /usr/bin/python3 bench/profile/classify.py "$sends" 200
        echo
    done
else
    echo "== 3. skipped: perf record does not work here (apt-get install linux-perf; perf_event_paranoid)"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
