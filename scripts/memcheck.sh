#!/usr/bin/env bash
# memcheck.sh -- the memory checks of the package, all in one place.
# Not run by CI: they take minutes. valgrind is installed when missing (apt).
#
#   scripts/memcheck.sh [workload|suite|rss|all] [rss.tcl options]   (default: workload)
#
# workload  Runs scripts/memcheck.tcl (plain, STARTTLS, STARTTLS+AUTH, implicit TLS +
#           CRAM-MD5, a -tlspolicy callback, a refused recipient, a server refusing
#           service, asynchronous sends waited for and cancelled, and child
#           interpreters deleted mid-send, against aiosmtpd) in one tclsh under
#           valgrind three times: 2, 200 and 400 rounds (15, 1,420 and 2,840 sends).
#           Passes when valgrind reports no memory errors (invalid reads/writes, uses
#           of uninitialised values, bad frees) in any run, and the leak totals
#           (definitely + indirectly + possibly lost, plus still reachable) of the
#           400-round run exceed those of the 200-round run by no
#           more than 64 KiB: anything leaked per send (Tcl_Obj references, channels,
#           OpenSSL objects, per-thread allocator caches) shows up as growth. The growth
#           from 2 to 200 rounds is printed too; it includes warm-up (Tcl's allocator
#           and regexp caches fill during the first few hundred sends; with a leak-free
#           build it is about 1 MB, all inside Tcl's allocator). About 8 minutes.
# suite     Runs every tests/*.test file in its own tclsh under valgrind (child
#           interpreters too, through TCLSMTP_VALGRIND in tests/support.tcl) and reports,
#           per file, the tcltest totals and valgrind's error count. Timing-sensitive
#           tests may fail under valgrind's slowdown; memory errors are what counts
#           here. load.test's 10,000-send tests are skipped (TS_LOAD=0; the workload
#           covers repetition). TS_FILES="a.test b.test" limits the files.
# rss       Runs scripts/rss.tcl (no valgrind): resident memory across 10,000 sends in
#           one interpreter must stay flat (see its header; its options, e.g.
#           -sends N, follow "rss"). About 60 s with a debug build.
# all       workload, suite and rss.
#
# The library is target/debug (built first with cargo build --lib) unless
# TCLSMTP_LIBDIR names another build. Logs: $MEMCHECK_DIR (default a fresh dir under
# /tmp; rss writes none), kept. Exit status 0 only if every part run passed.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
mode=${1:-workload}
[ $# -eq 0 ] || shift
case $mode in
    workload | suite) [ $# -eq 0 ] || mode=usage ;;
    rss | all) ;;
    *) mode=usage ;;
esac
[ "$mode" != usage ] || { echo "usage: $0 [workload|suite|rss|all] [rss.tcl options]" >&2; exit 2; }

[ "$mode" = rss ] || apt_install valgrind
if [[ -z ${TCLSMTP_LIBDIR:-} ]]; then
    use_cargo
    cargo build --lib --quiet
    export TCLSMTP_LIBDIR=$REPO/target/debug
fi
echo "library: $TCLSMTP_LIBDIR"
if [ "$mode" != rss ]; then   # rss writes no log
    out=${MEMCHECK_DIR:-$(mktemp -d /tmp/tclsmtp-memcheck.XXXXXX)}
    mkdir -p "$out"
    echo "valgrind logs: $out"
fi

vg=(valgrind --tool=memcheck --num-callers=40 --errors-for-leak-kinds=none)
status=0

# The number after "label:" in the LEAK SUMMARY of valgrind log $1, in bytes.
leak() {
    local n
    n=$(sed -n "s/.*== *$2: \([0-9,]*\) bytes.*/\1/p" "$1" | tail -1 | tr -d ,)
    echo "${n:-0}"
}
errors() {
    local n
    n=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$1" | tail -1 | tr -d ,)
    echo "${n:-missing}"
}

run_workload() {
    local rounds log e d i p r
    declare -A lost reach
    for rounds in 2 200 400; do
        log=$out/workload-$rounds-rounds.log
        echo "== workload: $rounds rounds under valgrind"
        if ! MEMCHECK_ROUNDS=$rounds "${vg[@]}" --leak-check=full --show-leak-kinds=all \
                --log-file="$log" tclsh8.6 scripts/memcheck.tcl; then
            echo "FAIL: the workload itself failed (see above and $log)"
            status=1
            return
        fi
        e=$(errors "$log"); d=$(leak "$log" "definitely lost"); i=$(leak "$log" "indirectly lost")
        p=$(leak "$log" "possibly lost"); r=$(leak "$log" "still reachable")
        printf '   memory errors %s; definitely %s, indirectly %s, possibly %s, still reachable %s bytes\n' \
            "$e" "$d" "$i" "$p" "$r"
        if [[ $e != 0 ]]; then
            echo "FAIL: valgrind reported $e memory error(s): $log"
            status=1
        fi
        lost[$rounds]=$((d + i + p))
        reach[$rounds]=$r
    done
    echo "== growth from 2 to 200 rounds: lost $((lost[200] - lost[2])) bytes," \
        "still reachable $((reach[200] - reach[2])) bytes"
    local lost_growth=$((lost[400] - lost[200])) reach_growth=$((reach[400] - reach[200]))
    # Judged on the sum: Tcl's allocator keeps its blocks through interior pointers, and
    # from run to run valgrind files the same blocks as "possibly lost" or as "still
    # reachable"; memory that is really kept per send raises the sum.
    local growth=$((lost_growth + reach_growth))
    echo "== growth from 200 to 400 rounds: lost $lost_growth bytes, still reachable $reach_growth bytes," \
        "together $growth bytes"
    if ((growth > 65536)); then
        echo "FAIL: memory grows with the number of sends (loss records: grep -A30 'loss record' $out/workload-400-rounds.log)"
        status=1
    else
        echo "ok: no growth"
    fi
}

run_suite() {
    local files f
    # Every tclsh of the suite (test files and their children) runs under valgrind,
    # each with its own log named after its pid.
    export TS_LOAD=${TS_LOAD:-0}
    export TCLSMTP_VALGRIND="valgrind --tool=memcheck --num-callers=40 --errors-for-leak-kinds=none --leak-check=no --log-file=$out/suite-vg.%p.log"
    if [[ -n ${TS_FILES:-} ]]; then files=$TS_FILES; else files=$(cd tests && ls ./*.test | sed 's|^\./||'); fi
    for f in $files; do
        echo "== suite: $f under valgrind"
        # shellcheck disable=SC2086
        $TCLSMTP_VALGRIND tclsh8.6 "tests/$f" > "$out/suite-$f.out" 2>&1 || true
        grep -E '^all.tcl:|Total' "$out/suite-$f.out" | tail -1 | sed 's/^/   /' || true
        grep -E '^==== [^ ]+ FAILED$' "$out/suite-$f.out" | sed 's/^/   /' || true
    done
    check_suite_logs
}

# Reads the suite's valgrind logs. A tclsh under valgrind that forks and execs another
# program (python3, openssl, sh, timeout) leaves a log for the forked child with the
# parent's command line and no ERROR SUMMARY: those are not interpreters and are
# skipped. Any other log without a summary is an interpreter that did not finish
# (killed by SIGKILL, or crashed) and is reported.
check_suite_logs() {
    local log pid parent cmd e total=0 bad=0 forks=0 unfinished=0 killed=0
    declare -A command
    for log in "$out"/suite-vg.*.log; do
        [[ -e $log ]] || continue
        pid=${log##*suite-vg.}; pid=${pid%.log}
        command[$pid]=$(sed -n 's/^==[0-9]*== Command: //p' "$log" | head -1)
    done
    for log in "$out"/suite-vg.*.log; do
        [[ -e $log ]] || continue
        pid=${log##*suite-vg.}; pid=${pid%.log}
        parent=$(sed -n 's/^==[0-9]*== Parent PID: //p' "$log" | head -1)
        cmd=${command[$pid]}
        if ! grep -q 'ERROR SUMMARY' "$log"; then
            if [[ -n ${command[$parent]:-} && ${command[$parent]} == "$cmd" ]]; then
                forks=$((forks + 1))
            else
                unfinished=$((unfinished + 1))
                echo "valgrind: no summary (killed or crashed): $cmd: $log"
            fi
            continue
        fi
        total=$((total + 1))
        if grep -q 'Process terminating with default action of signal' "$log"; then
            killed=$((killed + 1))
        fi
        e=$(errors "$log")
        if [[ $e != 0 ]]; then
            bad=$((bad + 1))
            echo "valgrind: $e memory error(s) in $cmd: $log"
        fi
    done
    echo "== suite: $total interpreter(s) ran under valgrind ($killed of them ended by a signal," \
        "e.g. a test's time limit), $bad with memory errors; $unfinished left no summary;" \
        "$forks fork+exec children skipped"
    ((bad == 0)) || status=1
}

run_rss() {
    echo "== rss: resident memory across sends (scripts/rss.tcl $*)"
    tclsh8.6 scripts/rss.tcl "$@" || status=1
}

case $mode in
    workload) run_workload ;;
    suite) run_suite ;;
    rss) run_rss "$@" ;;
    all) run_workload; run_suite; run_rss "$@" ;;
esac
exit $status
