#!/usr/bin/env bash
# Installs what building, testing and installing tclsmtp needs, when it is missing
# (Debian/Ubuntu). Safe to run again: it only installs what is absent.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

packages=(
    build-essential make pkg-config           # cargo's C toolchain; make (the Makefile)
    libclang-dev                              # bindgen for tcl-sys
    libssl-dev openssl                        # the openssl crate; test certificates
    tcl8.6 tcl8.6-dev tcllib                  # tclsh, tcl.h and the stub library, mime; dtplite
    tcl-thread                                # the Thread package (a test sends from 4 threads)
    tcl-tls                                   # the tls package: tests of its tls::init defaults
    python3 python3-aiosmtpd                  # the independent test SMTP server
    postfix sasl2-bin libsasl2-modules        # real AUTH server: Postfix + Cyrus SASL (sasldb)
    iproute2                                  # ip netns: a non-loopback test peer
    man-db                                    # man: install.test finds the installed manual
    binutils ca-certificates curl             # readelf (a test); rustup when cargo is missing
)

# Postfix is only run as private test instances: no system mail configuration.
if ! installed postfix; then
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
fi
apt_install "${packages[@]}"

if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "deps: installing Rust with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt >&2
fi
