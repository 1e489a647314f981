#!/bin/bash
# postfix.sh -- a private Postfix 3.7 instance with Cyrus SASL (sasldb) for the tests.
#
#   postfix.sh start DIR CERTDIR [USER:PASSWORD ...]
#   postfix.sh stop DIR
#
# start: builds an instance under DIR (created if missing; DIR and its parents must be
# readable by user postfix, i.e. not a 0700 mktemp dir), starts it and returns once
# every port accepts connections (about 0.3-0.5 s). Needs root, postfix, sasl2-bin and
# libsasl2-modules (tests/servers.md in the shared reference has the background).
#
#   DIR/ports         "plain=N submission=N smtps=N" (ports chosen free at start time),
#                     all on 127.0.0.1:
#                       plain       STARTTLS offered, AUTH offered before TLS too,
#                                   relays for 127.0.0.0/8 without AUTH;
#                       submission  same, but relays only after AUTH (554 5.7.1 at RCPT
#                                   otherwise);
#                       smtps       implicit TLS (wrapper mode), relays only after AUTH.
#   DIR/mail/catchall/new/   every accepted message, whatever the recipient (the
#                     virtual(8) transport, a static catch-all maildir): LF line endings,
#                     Return-Path/Delivered-To/Received headers prepended; lands about
#                     30 ms after the 250 to the final dot.
#   DIR/maillog       Postfix's log (postlogd): "postfix.sh stop" does not remove it.
#   DIR/etc           main.cf, master.cf, sasl/smtpd.conf, the TLS certificate (copied
#                     from CERTDIR/server.pem and CERTDIR/server.key).
#   DIR/sasldb2       the SASL users, realm "localhost" (default: alice:s3cret).
#
# The SASL mechanisms offered (Cyrus mech_list) are $POSTFIX_MECHS, default
# "PLAIN LOGIN CRAM-MD5 DIGEST-MD5". $POSTFIX_MAINCF, if set, is appended to main.cf as
# it is (lines of "name = value"; a parameter set there replaces its default line, e.g.
# "smtputf8_enable = no", "message_size_limit = 2000", "smtpd_delay_reject = no",
# "smtpd_sender_restrictions = check_sender_access inline:{x@y=REJECT}", or
# "smtpd_end_of_data_restrictions = check_client_access static:HOLD" to keep every message
# in the hold queue, DIR/spool/hold, for "postcat -c DIR/etc -q ID"). The instance's
# master pid is the first line of DIR/spool/pid/master.pid.
#
# stop: SIGTERM to the master, waits until it is gone (a zombie counts as gone: PID 1
# here reaps late), then kills by pid any process still running with this instance's
# configuration (none normally). Stopping an instance that is not running is not an
# error.
#
# Exit status: 0 on success; 1 with a message on stderr otherwise (start then stops
# whatever it started).

set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
# die, alive, gone, free_ports, wait_until, wait_port
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

# instance_pids ETCDIR: pids of processes whose environment says MAIL_CONFIG=ETCDIR
# (the master and every daemon it started).
instance_pids() {
    local f pid
    for f in $(grep -lzxF "MAIL_CONFIG=$1" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || echo "$pid"
    done
}

do_stop() {
    local dir=$1 etc=$1/etc pid p
    pid=$(head -n 1 "$dir/spool/pid/master.pid" 2>/dev/null | tr -d ' ')
    if [ -n "$pid" ] && alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        if ! wait_until 5 "" gone "$pid"; then
            kill -KILL "$pid" 2>/dev/null
            wait_until 2 "" gone "$pid"
        fi
    fi
    # The master stops its children on SIGTERM; anything left (a SIGKILLed master's
    # children) is killed here, by pid.
    for p in $(instance_pids "$etc"); do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $(instance_pids "$etc"); do
        wait_until 2 "" gone "$p" || kill -KILL "$p" 2>/dev/null
    done
    return 0
}

write_config() {
    local dir=$1 plain=$2 submission=$3 smtps=$4 mechs=$5 extra=$6
    cat >"$dir/etc/main.cf" <<EOF
# Written by tests/servers/postfix.sh: a private test instance.
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
mail_owner = postfix
setgid_group = postdrop
myhostname = localhost
mydomain = localdomain
myorigin = localhost
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
smtputf8_enable = yes
smtpd_banner = \$myhostname ESMTP Postfix-test
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
smtpd_error_sleep_time = 0
smtpd_tls_cert_file = $dir/etc/server.pem
smtpd_tls_key_file = $dir/etc/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = no
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $dir/etc/sasl
smtpd_sasl_security_options = noanonymous
smtpd_sasl_authenticated_header = yes
default_transport = virtual
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = static:catchall/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
EOF
    if [ -n "$extra" ]; then
        # A parameter set there replaces the default line (no "overriding earlier
        # entry" warnings).
        local name
        for name in $(printf '%s\n' "$extra" | sed -n 's/^\([a-z0-9_]\+\)[[:space:]]*=.*/\1/p'); do
            sed -i "/^${name}[[:space:]]*=/d" "$dir/etc/main.cf"
        done
        printf '# POSTFIX_MAINCF:\n%s\n' "$extra" >>"$dir/etc/main.cf"
    fi
    cat >"$dir/etc/master.cf" <<EOF
127.0.0.1:$plain inet n - n - - smtpd
127.0.0.1:$submission inet n - n - - smtpd
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
127.0.0.1:$smtps inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
cleanup   unix  n - n -    0 cleanup
qmgr      unix  n - n 300  1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n -    - trivial-rewrite
bounce    unix  - - n -    0 bounce
defer     unix  - - n -    0 bounce
trace     unix  - - n -    0 bounce
verify    unix  - - n -    1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -    - proxymap
smtp      unix  - - n -    - smtp
relay     unix  - - n -    - smtp
showq     unix  n - n -    - showq
error     unix  - - n -    - error
retry     unix  - - n -    - error
discard   unix  - - n -    - discard
local     unix  - n n -    - local
virtual   unix  - n n -    - virtual
anvil     unix  - - n -    1 anvil
scache    unix  - - n -    1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
    cat >"$dir/etc/sasl/smtpd.conf" <<EOF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $dir/sasldb2
mech_list: $mechs
EOF
    # Postfix waits until main.cf is about 2 s old before starting: back-date it.
    touch -d '-1 minute' "$dir/etc/main.cf" "$dir/etc/master.cf"
}

do_start() {
    local dir=$1 certdir=$2
    shift 2
    local mechs=${POSTFIX_MECHS:-PLAIN LOGIN CRAM-MD5 DIGEST-MD5}
    local extra=${POSTFIX_MAINCF:-}
    local users=("$@") spec user pass attempt ports plain submission smtps i pid
    [ "$(id -u)" -eq 0 ] || die "must run as root (Postfix's master needs it)"
    command -v postfix >/dev/null || die "postfix is not installed"
    command -v saslpasswd2 >/dev/null || die "saslpasswd2 (sasl2-bin) is not installed"
    [ -r "$certdir/server.pem" ] && [ -r "$certdir/server.key" ] \
        || die "no server.pem/server.key in $certdir"
    [ ${#users[@]} -gt 0 ] || users=(alice:s3cret)
    for spec in "${users[@]}"; do
        case $spec in
            ?*:*) ;;
            *) die "bad user \"$spec\": must be USER:PASSWORD" ;;
        esac
    done
    for i in $mechs; do
        case $i in
            PLAIN|LOGIN|CRAM-MD5|DIGEST-MD5|SCRAM-SHA-1|SCRAM-SHA-256|NTLM|ANONYMOUS) ;;
            *) die "bad mechanism \"$i\" in POSTFIX_MECHS" ;;
        esac
    done
    [ -n "${mechs// /}" ] || die "POSTFIX_MECHS is empty"

    case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd -P)
    if [ -e "$dir/spool/pid/master.pid" ]; then
        local old
        old=$(head -n 1 "$dir/spool/pid/master.pid" | tr -d ' ')
        [ -n "$old" ] && alive "$old" && die "an instance is already running in $dir (pid $old)"
    fi
    chmod 755 "$dir"
    mkdir -p "$dir/etc/sasl" "$dir/spool" "$dir/data" "$dir/mail"
    chmod 755 "$dir/etc" "$dir/etc/sasl"
    chown postfix:postfix "$dir/data"
    chown 65534:65534 "$dir/mail"
    cp "$certdir/server.pem" "$dir/etc/server.pem"
    cp "$certdir/server.key" "$dir/etc/server.key"
    chmod 600 "$dir/etc/server.key"

    rm -f "$dir/sasldb2"
    for spec in "${users[@]}"; do
        user=${spec%%:*}
        pass=${spec#*:}
        printf %s "$pass" | saslpasswd2 -p -c -f "$dir/sasldb2" -u localhost "$user" \
            || die "saslpasswd2 failed for $user"
    done
    # smtpd opens the sasldb after dropping to user postfix.
    chown postfix "$dir/sasldb2"
    chmod 600 "$dir/sasldb2"

    # A port chosen free can be taken by someone else before the master binds it:
    # then the master exits at once; try again with fresh ports.
    for attempt in 1 2 3; do
        ports=$(free_ports 3) || die "cannot pick free ports"
        read -r plain submission smtps <<<"$ports"
        write_config "$dir" "$plain" "$submission" "$smtps" "$mechs" "$extra"
        rm -f "$dir/ports"
        if ! postfix -c "$dir/etc" start >"$dir/start.log" 2>&1; then
            do_stop "$dir"
            die "postfix start failed: $(cat "$dir/start.log")"
        fi
        # "postfix start" returns once the master has started (and written its pid):
        # wait for its ports, or for it to exit (a port taken in the meantime).
        pid=$(head -n 1 "$dir/spool/pid/master.pid" 2>/dev/null | tr -d ' ')
        if wait_port 5 "$pid" "$plain" "$submission" "$smtps"; then
            echo "plain=$plain submission=$submission smtps=$smtps" >"$dir/ports.tmp"
            mv "$dir/ports.tmp" "$dir/ports"
            return 0
        fi
        do_stop "$dir"
    done
    die "Postfix did not start in $dir (see $dir/maillog): $(tail -n 5 "$dir/maillog" 2>/dev/null)"
}

case ${1:-} in
    start)
        [ $# -ge 3 ] || die "usage: postfix.sh start DIR CERTDIR [USER:PASSWORD ...]"
        shift
        do_start "$@"
        ;;
    stop)
        [ $# -eq 2 ] || die "usage: postfix.sh stop DIR"
        [ -d "$2" ] || exit 0
        do_stop "$(cd "$2" && pwd -P)"
        ;;
    *)
        die "usage: postfix.sh start DIR CERTDIR [USER:PASSWORD ...] | postfix.sh stop DIR"
        ;;
esac
