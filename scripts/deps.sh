#!/usr/bin/env bash
# Installs what building and testing tclsmtp needs, when it is missing (Debian/Ubuntu).
# Safe to run again: it only installs what is absent.
set -euo pipefail

packages=(
    build-essential pkg-config libclang-dev   # cargo's C toolchain; bindgen for tcl-sys
    libssl-dev openssl                        # the openssl crate; test certificates
    tcl8.6 tcl8.6-dev tcllib                  # tclsh, tcl.h and the stub library, mime
    tcl-thread                                # the Thread package (a test sends from 4 threads)
    tcl-tls                                   # the tls package: tests of its tls::init defaults
    python3 python3-aiosmtpd                  # the independent test SMTP server
    postfix sasl2-bin libsasl2-modules        # real AUTH server: Postfix + Cyrus SASL (sasldb)
    iproute2                                  # ip netns: a non-loopback test peer
    binutils ca-certificates curl             # readelf (a test); rustup when cargo is missing
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    # Package installs must not start daemons on a build machine.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
        $sudo chmod +x /usr/sbin/policy-rc.d
    fi
    $sudo apt-get update -qq
    # Postfix is only run as private test instances: no system mail configuration.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        echo "deps: cargo is in ~/.cargo/bin; add it to PATH" >&2
    else
        echo "deps: installing Rust with rustup" >&2
        curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt >&2
    fi
fi
