#!/bin/bash
# netns.sh -- throw-away network namespaces for tests that need a non-loopback peer.
#
#   netns.sh up NAME [N]   create namespace NAME joined to the host by a veth pair:
#                          host side "tsm<N>h" 10.77.N.1/30, namespace side "eth0"
#                          10.77.N.2/30, lo up in the namespace. N (1-254) is the
#                          lowest free one unless given. Prints 10.77.N.2. If NAME
#                          already exists with such an address, just prints it.
#   netns.sh addr NAME     prints NAME's namespace-side address (10.77.N.2).
#   netns.sh exec NAME CMD [ARG ...]
#                          runs CMD inside NAME (ip netns exec: CMD replaces this
#                          process, so a caller's $! is CMD's pid).
#   netns.sh down NAME     kills (by pid) any process still inside NAME, deletes the
#                          veth pair and the namespace. Not an error if NAME is absent.
#   netns.sh gc            "down" every namespace named tclsmtp-PID-... whose PID is no
#                          longer running (leftovers of a killed test run).
#   netns.sh check         exit 0 if namespaces and veth pairs can be made here (creates
#                          and removes a probe), else 1 with the reason on stderr.
#
# A server in the namespace that binds 10.77.N.2 is reached from the root namespace at
# 10.77.N.2 through tsm<N>h, which is not a loopback interface. Nothing is routed
# further: the namespace has no default route and the host forwards nothing.
# Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and iproute2.

set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
# die, alive, gone, wait_until
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
LOCK=/run/lock/tclsmtp-netns.lock
[ -d /run/lock ] || LOCK=/tmp/tclsmtp-netns.lock

exists() {
    [ -e "/run/netns/$1" ]
}

# ns_n NAME: the N of NAME's 10.77.N.2 address (empty if none).
ns_n() {
    ip -n "$1" -4 -o addr show 2>/dev/null \
        | sed -n 's/.* inet 10\.77\.\([0-9]\{1,3\}\)\.2\/30 .*/\1/p' | head -n 1
}

# n_in_use N: true if 10.77.N.0/30 or tsm<N>h is already taken in the root namespace.
n_in_use() {
    ip link show "tsm$1h" >/dev/null 2>&1 && return 0
    ip -4 -o addr show | grep -q " inet 10\.77\.$1\.[0-9]*/"
}

do_down() {
    local name=$1 n p
    exists "$name" || return 0
    n=$(ns_n "$name")
    # Processes still inside: TERM, then KILL after 2 s.
    local pids
    pids=$(ip netns pids "$name" 2>/dev/null)
    if [ -n "$pids" ]; then
        for p in $pids; do kill -TERM "$p" 2>/dev/null; done
        # shellcheck disable=SC2086 # one pid a word
        wait_until 2 "" gone $pids
        for p in $pids; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    fi
    # Deleting one end deletes both, at once (a namespace's own cleanup is deferred).
    if [ -n "$n" ]; then
        ip link del "tsm${n}h" 2>/dev/null
    fi
    ip -n "$name" link del eth0 2>/dev/null
    ip netns del "$name" 2>/dev/null || { exists "$name" && die "cannot delete namespace $name"; }
    return 0
}

do_up() {
    local name=$1 want=${2:-} n
    case $name in
        ""|*/*|.|..) die "bad namespace name \"$name\"" ;;
    esac
    if [ -n "$want" ]; then
        case $want in
            *[!0-9]*) die "bad N \"$want\": must be 1-254" ;;
        esac
        [ "$want" -ge 1 ] && [ "$want" -le 254 ] || die "bad N \"$want\": must be 1-254"
    fi
    if exists "$name"; then
        n=$(ns_n "$name")
        [ -n "$n" ] || die "namespace $name exists but has no 10.77.N.2 address"
        [ -z "$want" ] || [ "$want" = "$n" ] || die "namespace $name exists with N=$n"
        echo "10.77.$n.2"
        return 0
    fi
    exec 9>"$LOCK" || die "cannot open $LOCK"
    flock -w 10 9 || die "cannot lock $LOCK"
    if [ -n "$want" ]; then
        n_in_use "$want" && die "10.77.$want.0/30 (tsm${want}h) is already in use"
        n=$want
    else
        n=""
        local i
        for ((i = 1; i <= 254; i++)); do
            if ! n_in_use "$i"; then
                n=$i
                break
            fi
        done
        [ -n "$n" ] || die "no free 10.77.N.0/30 left"
    fi
    local err
    if ! err=$( {
            ip netns add "$name" &&
            ip link add "tsm${n}h" type veth peer name eth0 netns "$name" &&
            ip addr add "10.77.$n.1/30" dev "tsm${n}h" &&
            ip link set "tsm${n}h" up &&
            ip -n "$name" addr add "10.77.$n.2/30" dev eth0 &&
            ip -n "$name" link set eth0 up &&
            ip -n "$name" link set lo up
        } 2>&1); then
        ip link del "tsm${n}h" 2>/dev/null
        ip netns del "$name" 2>/dev/null
        die "cannot set up namespace $name: $err"
    fi
    flock -u 9
    echo "10.77.$n.2"
}

do_gc() {
    local name pid
    for name in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $name in
            tclsmtp-[0-9]*-*) ;;
            *) continue ;;
        esac
        pid=${name#tclsmtp-}
        pid=${pid%%-*}
        alive "$pid" || do_down "$name"
    done
}

do_check() {
    local name=tclsmtp-$$-check
    command -v ip >/dev/null || die "ip (iproute2) is not installed"
    [ "$(id -u)" -eq 0 ] || die "not root"
    do_up "$name" >/dev/null || return 1
    do_down "$name"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
    up)
        [ $# -ge 1 ] && [ $# -le 2 ] || die "usage: netns.sh up NAME [N]"
        do_up "$@"
        ;;
    addr)
        [ $# -eq 1 ] || die "usage: netns.sh addr NAME"
        exists "$1" || die "no namespace $1"
        n=$(ns_n "$1")
        [ -n "$n" ] || die "namespace $1 has no 10.77.N.2 address"
        echo "10.77.$n.2"
        ;;
    exec)
        [ $# -ge 2 ] || die "usage: netns.sh exec NAME CMD [ARG ...]"
        exists "$1" || die "no namespace $1"
        exec ip netns exec "$@"
        ;;
    down)
        [ $# -eq 1 ] || die "usage: netns.sh down NAME"
        do_down "$1"
        ;;
    gc)
        [ $# -eq 0 ] || die "usage: netns.sh gc"
        do_gc
        ;;
    check)
        [ $# -eq 0 ] || die "usage: netns.sh check"
        do_check
        ;;
    *)
        die "usage: netns.sh up NAME [N] | addr NAME | exec NAME CMD... | down NAME | gc | check"
        ;;
esac
