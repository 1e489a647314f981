# lib.sh -- what the shell scripts of this repository share: installing Debian packages,
# finding cargo, temporary directories and background processes cleaned up at exit, and
# the one way they wait for a server (a port that accepts connections, a port file, a
# process that ends).
#
#   . "$(dirname "$0")/lib.sh"            (from scripts/; bench/ and tests/servers/ too)
#
# Sourcing it only defines functions, REPO (the repository root) and WORK (see tempdir):
# it sets no shell option, changes no directory and installs no trap until tempdir or
# background is used, so the scripts that source it keep their own error handling.

# shellcheck disable=SC2034 # used by the scripts that source this file
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# die MESSAGE...: "<script name>: MESSAGE" on stderr, exit 1.
die() {
    echo "${0##*/}: $*" >&2
    exit 1
}

# as_root COMMAND...: runs COMMAND as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# installed PACKAGE: true if the Debian package is installed.
installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PACKAGE...: installs those of the packages that are missing (nothing to do,
# and no root needed, when none is), without recommends and without starting daemons.
apt_install() {
    local missing=() p
    for p in "$@"; do
        installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    echo "${0##*/}: installing ${missing[*]}" >&2
    # A package's install script must not start its daemon (postfix) on a build machine:
    # invoke-rc.d asks policy-rc.d, and exit 101 means "not allowed".
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
        as_root chmod +x /usr/sbin/policy-rc.d
    fi
    as_root apt-get update -qq
    # env: sudo would drop DEBIAN_FRONTEND from the environment.
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# use_cargo: puts rustup's ~/.cargo/bin (where scripts/deps.sh installs Rust) first on
# PATH, as a fresh shell may not have it yet; fails if there is no cargo at all.
use_cargo() {
    [ ! -x "$HOME/.cargo/bin/cargo" ] || export PATH="$HOME/.cargo/bin:$PATH"
    command -v cargo >/dev/null || die "cargo not found (scripts/deps.sh installs it)"
}

# Cleanup at exit: the directory made by tempdir, the processes started by background.
WORK=""
CLEANUP_PIDS=()
cleanup() {
    local pid
    for pid in "${CLEANUP_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -z "$WORK" ] || rm -rf "$WORK"
}

# tempdir: makes WORK, a private directory for the script's files, removed at exit.
tempdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tclsmtp-${0##*/}.XXXXXX") || die "cannot make a temporary directory"
    trap cleanup EXIT
}

# background LOG COMMAND...: starts COMMAND in the background with its output in LOG;
# killed at exit. Its pid is in $! as usual.
background() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    CLEANUP_PIDS+=("$!")
    trap cleanup EXIT
}

# free_ports N: N distinct loopback ports that are free now (the kernel picks them for
# sockets bound together, then closed). Someone else may take one before it is used.
free_ports() {
    /usr/bin/python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# alive PID...: true if any PID is running. A zombie counts as gone: PID 1 in a container
# may reap it late.
alive() {
    local pid stat
    for pid; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        case ${stat%% *} in Z | X) ;; *) return 0 ;; esac
    done
    return 1
}

# gone PID...: true once every PID has ended.
gone() {
    ! alive "$@"
}

# port_open PORT...: true if every 127.0.0.1:PORT accepts a TCP connection (bash's
# /dev/tcp; the connection is closed at once).
port_open() {
    local port
    for port; do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || return 1
    done
}

# wait_until SECONDS PID COMMAND...: runs COMMAND every 20 ms until it succeeds. Fails
# when SECONDS (a whole number) pass first, or as soon as PID has ended (PID "" for no
# such process). The one polling loop of the scripts.
wait_until() {
    local seconds=$1 pid=$2 i
    shift 2
    for ((i = 0; i < seconds * 50; i++)); do
        "$@" && return 0
        [ -z "$pid" ] || alive "$pid" || return 1
        sleep 0.02
    done
    "$@"
}

# wait_port SECONDS PID PORT...: waits until every 127.0.0.1:PORT accepts connections
# (a server started on ports we chose; PID is the server).
wait_port() {
    local seconds=$1 pid=$2
    shift 2
    wait_until "$seconds" "$pid" port_open "$@"
}

# wait_port_file SECONDS PID FILE: waits for a server that writes the port it chose to
# FILE (tests/servers/capture.py, bench/delay_proxy.py) to accept connections there, and
# prints the port.
wait_port_file() {
    local seconds=$1 pid=$2 file=$3
    wait_until "$seconds" "$pid" test -s "$file" || return 1
    wait_port "$seconds" "$pid" "$(cat "$file")" && cat "$file"
}
