#!/usr/bin/env bash
# The benchmark: tclsmtp against tcllib smtp 1.5.1, Python smtplib and Postfix's smtp-source,
# all sending to Postfix's smtp-sink on 127.0.0.1, which this script starts and stops.
# Prints a markdown table (and writes it, with the machine it ran on, to bench/RESULTS.md).
#
#   bench/run.sh          about 5 minutes; needs root or sudo the first time (packages)
#
# Every row is measured in this run; rates are the median of BENCH_ROUNDS rounds, with the
# clients interleaved round by round so a busy neighbour slows all of them alike.
# Knobs (environment): BENCH_ROUNDS (3), BENCH_SECONDS (2: per client and round, 1 KiB
# rows), BENCH_PROXY_SECONDS (3: the same through the 20 ms proxy), BENCH_SOURCE_MESSAGES
# (4000: smtp-source's -m), BENCH_SESSION_SOURCE_MESSAGES (10000: smtp-source -d's -m),
# BENCH_SESSION_WINDOW (16: the queued session sends kept waiting or running),
# BENCH_BIG_MIB (100: the attachment), BENCH_ATTACH_KIB (1024: the smtp::mail
# attachment) and BENCH_ATTACH_SENDS (20: sends timed per process),
# BENCH_TEXT_MIB (10: the non-ASCII text), BENCH_QP_KIB (64: the smaller texts, this and
# twice this, that tcllib's quoted-printable encoder can do in seconds) and
# BENCH_QP_LIMIT (60: seconds the mime quoted-printable path gets for the big text).
# BENCH_ONLY=sessions measures only the session rows and prints them (RESULTS.md untouched).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$REPO"

rounds=${BENCH_ROUNDS:-3}
seconds=${BENCH_SECONDS:-2}
proxy_seconds=${BENCH_PROXY_SECONDS:-3}
source_messages=${BENCH_SOURCE_MESSAGES:-4000}
session_source_messages=${BENCH_SESSION_SOURCE_MESSAGES:-10000}
session_window=${BENCH_SESSION_WINDOW:-16}
only=${BENCH_ONLY:-}
big_mib=${BENCH_BIG_MIB:-100}
attach_kib=${BENCH_ATTACH_KIB:-1024}
attach_sends=${BENCH_ATTACH_SENDS:-20}
text_mib=${BENCH_TEXT_MIB:-10}
qp_kib=${BENCH_QP_KIB:-64}
qp_limit=${BENCH_QP_LIMIT:-60}
python=/usr/bin/python3   # Debian's interpreter, as the tests use (not a pyenv shim)

# --- What the benchmark needs: the build dependencies, Postfix (smtp-sink, smtp-source),
# --- tcllib, python3 (all from scripts/deps.sh) and GNU time for `time -v`.
scripts/deps.sh
apt_install time
use_cargo

echo "bench: building (release)" >&2
cargo build --release --lib --quiet
export TCLSMTP_LIBDIR="$PWD/target/release"

tempdir
work=$WORK
raw="$work/raw"   # one measurement a line; bench/report.py turns it into the table
: >"$raw"

# --- smtp-sink: discards every message. As root it must be told whom to run as.
port=$(free_ports 1)
as_user=()
[ "$(id -u)" -ne 0 ] || as_user=(-u nobody)
background "$work/sink.log" smtp-sink -4 "${as_user[@]}" "127.0.0.1:$port" 1024
sink=$!
wait_port 5 "$sink" "$port" || die "smtp-sink did not start: $(cat "$work/sink.log")"

# --- The proxy that puts 10 ms on each direction in front of smtp-sink.
background "$work/proxy.log" \
    "$python" bench/delay_proxy.py --upstream "$port" --delay-ms 10 --port-file "$work/proxy.port"
proxy=$!
proxy_port=$(wait_port_file 5 "$proxy" "$work/proxy.port") \
    || die "the delay proxy did not start: $(cat "$work/proxy.log")"

now() { date +%s.%N; }

# smtp_source PORT MESSAGES OPTION...: smtp-source sending MESSAGES 1 KiB messages with
# OPTIONs (-s, -d) to 127.0.0.1:PORT; prints "MESSAGES SECONDS".
smtp_source() {
    local port=$1 messages=$2 start end
    shift 2
    start=$(now)
    smtp-source "$@" -m "$messages" -l 1024 -f sender@example.com -t rcpt1@example.com "127.0.0.1:$port"
    end=$(now)
    echo "$messages $(awk "BEGIN {print $end - $start}")"
}

# rate CLIENT PORT SECONDS RECIPIENTS ROW: appends "ROW CLIENT MESSAGES SECONDS" to $raw.
# The session clients: ours-session (smtp::mail -session in a loop), ours-queue1 and
# ours-pool4 (queued -command sends on a session of 1 or 4 connections), ours-queue1-atleastone
# (ours-queue1 with -atleastone 1: DATA pipelined with the RCPTs), python-session
# (smtplib over one connection), smtp-source-d and smtp-source-d4 (-d: one connection for
# all messages; -s 1 or -s 4 of them).
rate() {
    local client=$1 port=$2 secs=$3 rcpts=$4 row=$5 result
    case $client in
        ours | tcllib) result=$(tclsh8.6 bench/send.tcl "$client" rate "$port" "$secs" "$rcpts") ;;
        ours-7bit | tcllib-7bit)
            result=$(tclsh8.6 bench/send.tcl "${client%-7bit}" rate "$port" "$secs" "$rcpts" 7bit) ;;
        ours-mail) result=$(tclsh8.6 bench/send.tcl ours mailrate "$port" "$secs" "$rcpts") ;;
        ours-session) result=$(tclsh8.6 bench/send.tcl ours sessionrate "$port" "$secs" "$rcpts") ;;
        ours-queue1) result=$(tclsh8.6 bench/send.tcl ours sessionqueue "$port" "$secs" "$rcpts" 1 "$session_window") ;;
        ours-queue1-atleastone)
            result=$(tclsh8.6 bench/send.tcl ours sessionqueue "$port" "$secs" "$rcpts" 1 "$session_window" \
                -atleastone 1)
            ;;
        ours-pool4) result=$(tclsh8.6 bench/send.tcl ours sessionqueue "$port" "$secs" "$rcpts" 4 "$session_window") ;;
        python) result=$("$python" bench/send.py rate "$port" "$secs" "$rcpts") ;;
        python-session) result=$("$python" bench/send.py session "$port" "$secs" "$rcpts") ;;
        smtp-source) result=$(smtp_source "$port" "$source_messages" -s 1) ;;
        smtp-source-d) result=$(smtp_source "$port" "$session_source_messages" -d -s 1) ;;
        smtp-source-d4) result=$(smtp_source "$port" "$session_source_messages" -d -s 4) ;;
    esac
    echo "$row $client $result" >>"$raw"
}

echo "bench: 1 KiB messages over one session, and a pool of 4 ($rounds rounds of ${seconds} s per client)" >&2
for round in $(seq "$rounds"); do
    for client in ours-session python-session smtp-source-d ours-queue1 ours-pool4 smtp-source-d4; do
        rate "$client" "$port" "$seconds" 1 session
    done
    echo "bench:   round $round done" >&2
done

echo "bench: 10 recipients through the 20 ms round-trip proxy over one session ($rounds rounds of ${proxy_seconds} s)" >&2
for round in $(seq "$rounds"); do
    for client in ours-queue1-atleastone ours-queue1 ours-session python-session; do
        rate "$client" "$proxy_port" "$proxy_seconds" 10 sessionproxy
    done
    echo "bench:   round $round done" >&2
done

if [ "$only" = sessions ]; then
    "$python" bench/report.py --sessions "$raw" "$session_window"
    exit 0
fi

echo "bench: 1 KiB messages, one connection each ($rounds rounds of ${seconds} s per client)" >&2
for round in $(seq "$rounds"); do
    for client in ours tcllib python smtp-source ours-7bit tcllib-7bit ours-mail; do
        rate "$client" "$port" "$seconds" 1 direct
    done
    echo "bench:   round $round done" >&2
done

echo "bench: 10 recipients through the 20 ms round-trip proxy ($rounds rounds of ${proxy_seconds} s)" >&2
for round in $(seq "$rounds"); do
    for client in ours tcllib python; do
        rate "$client" "$proxy_port" "$proxy_seconds" 10 proxy
    done
    echo "bench:   round $round done" >&2
done

# timed ROW NAME COMMAND...: runs COMMAND (which prints the seconds of its timed step)
# under GNU time; appends "ROW NAME SECONDS WALL_SECONDS MAX_RSS_KIB" to $raw.
timed() {
    local row=$1 name=$2 inner wall rss
    local timing="$work/time.$row.$name"
    shift 2
    inner=$(/usr/bin/time -v -o "$timing" "$@") || return
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.75"
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$timing")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$timing")
    echo "$row $name $inner $wall $rss" >>"$raw"
}

# big CLIENT ACTION: appends "big CLIENT-ACTION SECONDS WALL_SECONDS MAX_RSS_KIB".
big() {
    local client=$1 action=$2
    case $client in
        python) timed big "$client-$action" "$python" bench/send.py big "$port" "$work/big.bin" ;;
        *) timed big "$client-$action" tclsh8.6 bench/send.tcl "$client" big "$port" "$work/big.bin" "$action" ;;
    esac
}

echo "bench: ${big_mib} MiB attachment ($rounds rounds)" >&2
head -c "$((big_mib << 20))" /dev/urandom >"$work/big.bin"
for round in $(seq "$rounds"); do
    big ours none       # the memory baselines: a tclsh that loads the package and
    big tcllib none     # only builds the token
    big tcllib copy     # the reference: mime::copymessage of the token to /dev/null
    big ours send
    big tcllib send
    big python send
    # The reference for the transfer alone: Postfix's C client pushing a message of the
    # rendered size (base64: 4/3, plus line ends) into the same smtp-sink.
    start=$(now)
    smtp-source -s 1 -m 1 -l "$(((big_mib << 20) * 4 / 3 * 78 / 76))" -f sender@example.com \
        -t rcpt1@example.com "127.0.0.1:$port"
    end=$(now)
    echo "big smtp-source-send $(awk "BEGIN {print $end - $start}") 0 0" >>"$raw"
    echo "bench:   round $round done" >&2
done

echo "bench: ${attach_kib} KiB attachment with smtp::mail ($rounds rounds of $attach_sends sends)" >&2
head -c "$((attach_kib << 10))" /dev/urandom >"$work/attach.bin"
for round in $(seq "$rounds"); do
    timed attach ours-none tclsh8.6 bench/send.tcl ours attach "$port" "$work/attach.bin" none 0
    timed attach ours-mail tclsh8.6 bench/send.tcl ours attach "$port" "$work/attach.bin" mail "$attach_sends"
    timed attach python-none "$python" bench/send.py attach "$port" "$work/attach.bin" none 0
    timed attach python-send "$python" bench/send.py attach "$port" "$work/attach.bin" send "$attach_sends"
    echo "bench:   round $round done" >&2
done

# The text: UTF-8 lines of about 70 characters mixing ASCII, accented Latin, Cyrillic,
# Hangul and CJK words, cut at a line end; the smaller texts are its first lines.
# maketext BYTES FILE
maketext() {
    "$python" - "$1" "$2" <<'PY'
import random, sys
words = ("Grüße aus Köln café crème brûlée naïve façade Ærøskøbing señor mañana Straße Zürich déjà vu "
         "東京 の 天気 は 晴れ です 日本語 テキスト 中文 文本 한국어 Привет мир plain ascii words the and of").split()
size, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
out, total = [], 0
while total < size:
    line = rng.choice(words)
    while True:
        word = rng.choice(words)
        if len(line) + 1 + len(word) > 70:
            break
        line += " " + word
    line = (line + "\n").encode()
    if total + len(line) > size:
        break
    out.append(line)
    total += len(line)
with open(path, "wb") as f:
    f.write(b"".join(out))
PY
}
maketext "$((text_mib << 20))" "$work/text-big.txt"
maketext "$((qp_kib << 10))" "$work/text-small.txt"
maketext "$((qp_kib << 11))" "$work/text-double.txt"

echo "bench: ${text_mib} MiB non-ASCII text, smtp::mail against mime's quoted-printable ($rounds rounds)" >&2
for round in $(seq "$rounds"); do
    timed text ours-none-big tclsh8.6 bench/send.tcl ours text "$port" "$work/text-big.txt" none
    timed text ours-mail-big tclsh8.6 bench/send.tcl ours text "$port" "$work/text-big.txt" mail
    for size in small double; do
        for client in ours-mail ours-qp tcllib-qp; do
            timed text "$client-$size" tclsh8.6 bench/send.tcl "${client%-*}" text "$port" \
                "$work/text-$size.txt" "${client##*-}"
        done
    done
    echo "bench:   round $round done" >&2
done
# mime's encoder takes time in the square of the size (see RESULTS.md): the big text gets
# one try of BENCH_QP_LIMIT seconds, and a "textlimit" line when it does not finish.
echo "bench: ${text_mib} MiB text through mime's quoted-printable encoder (at most ${qp_limit} s)" >&2
if ! timed text ours-qp-big timeout "$qp_limit" tclsh8.6 bench/send.tcl ours text "$port" \
    "$work/text-big.txt" qp; then
    echo "textlimit ours-qp-big $qp_limit" >>"$raw"
fi

echo "bench: DATA encoder micro-benchmark" >&2
cargo bench --quiet --bench encoder >>"$raw"

# --- The machine and the versions, for RESULTS.md.
machine="$work/machine"
{
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cores $(nproc)"
    echo "kernel $(uname -sr)"
    echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "tcl $(echo 'puts [info patchlevel]' | tclsh8.6)"
    echo "tcllib smtp $(echo 'puts "[package require -exact smtp 1.5.1], mime [package require mime]"' | tclsh8.6)"
    echo "ours $(echo 'set auto_path [linsert $auto_path 0 $env(TCLSMTP_LIBDIR)]; puts [package require smtp 1.6]' | tclsh8.6) at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src tcl Cargo.toml || echo '+changes')"
    echo "rustc $(rustc --version | cut -d' ' -f2)"
    echo "python $("$python" -c 'import platform; print(platform.python_version())')"
    echo "postfix $(postconf -d -h mail_version 2>/dev/null || echo unknown)"
} >"$machine"

"$python" bench/report.py "$raw" "$machine" "$big_mib" "$attach_kib" "$attach_sends" "$text_mib" "$qp_kib" \
    "$session_window" | tee bench/RESULTS.md
