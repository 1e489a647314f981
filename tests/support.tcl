# support.tcl --
#
#	Shared helpers for the tclsmtp test suites. Every *.test file starts with
#
#	    source [file join [file dirname [info script]] support.tcl]
#
#	It loads tcltest, makes [package require smtp] load the build under test, and
#	provides the ::ts namespace: test SMTP servers (scripted.py, capture.py, a private
#	Postfix with Cyrus SASL, capture.py inside a network namespace) that are started
#	and stopped by the tests, their logs, and a child-tclsh runner.
#
#	Extension under test: $env(TCLSMTP_LIBDIR) (a directory holding pkgIndex.tcl and
#	libtclsmtp.so), or <repo>/target/debug when that is unset. The tcltest constraint
#	"extension" is true only when that pkgIndex.tcl exists. An explicit TCLSMTP_LIBDIR
#	without a pkgIndex.tcl is an error (a typo must not silently skip the suite).
#
#	Environment knobs:
#	    TCLSMTP_LIBDIR   the build to test (see above)
#	    TS_PYTHON        interpreter for the servers (default /usr/bin/python3, which
#	                     has Debian's python3-aiosmtpd; a pyenv python3 may not)
#	    TS_KEEP          if set and non-empty, server temp dirs are kept (debugging)
#	    TS_NETNS         "0" makes the tcltest constraint "netns" false without trying
#	    TCLSMTP_VALGRIND a command prefix (e.g. "valgrind --log-file=/tmp/vg.%p") that
#	                     [::ts::child] puts before the child tclsh, so child
#	                     interpreters run under it too (scripts/memcheck.sh suite);
#	                     their -timeout is then multiplied by 10
#
#	tcltest constraints defined here besides "extension" (evaluated lazily, on
#	first use by a test, once per process):
#	    postfix          Postfix + saslpasswd2 installed and running as root
#	    netns            network namespaces and veth pairs can be made (root,
#	                     iproute2): see [::ts::netns_available]
#
#	This file can be sourced more than once (tcltest -singleproc 1); it is idempotent.

package require Tcl 8.6
package require tcltest 2.5
namespace import -force ::tcltest::*
package require json

namespace eval ::ts {
    variable testsdir [file dirname [file normalize [info script]]]
    variable repodir [file dirname $testsdir]
    variable serversdir [file join $testsdir servers]
    variable support [file join $testsdir support.tcl]
    variable python /usr/bin/python3
    if {[info exists ::env(TS_PYTHON)] && $::env(TS_PYTHON) ne ""} {
	set python $::env(TS_PYTHON)
    }
    # Set by [::ts::child -noextension] before this file is sourced.
    if {![info exists noextension]} {
	variable noextension 0
    }
    # Handles of running servers: handle -> dict {kind pid dir port log ?host?
    # ?ports? ?netns?}.
    variable servers
    if {![info exists servers]} {
	array set servers {}
    }
    if {![info exists serial]} {
	variable serial 0
    }
    # First element of a list built by [::ts::seq].
    variable seqtag "@@ts::seq@@"
}

# ---------------------------------------------------------------------------------
# The extension under test
# ---------------------------------------------------------------------------------

namespace eval ::ts {
    variable libdir
    variable libdir_explicit [expr {[info exists ::env(TCLSMTP_LIBDIR)]
	    && $::env(TCLSMTP_LIBDIR) ne ""}]
    if {$libdir_explicit} {
	set libdir [file normalize $::env(TCLSMTP_LIBDIR)]
    } else {
	set libdir [file join $repodir target debug]
    }
    variable pkgindex [file join $libdir pkgIndex.tcl]
}

# ::ts::RegisterExtension --
#	Make the build under test the only provider of "smtp" that [package require]
#	can see: forget every registered smtp (tcllib's included) and source the build
#	directory's pkgIndex.tcl with $dir set to the build directory. Does nothing once
#	smtp is loaded.
proc ::ts::RegisterExtension {} {
    variable libdir
    variable pkgindex
    if {[package provide smtp] ne ""} {
	return
    }
    package forget smtp
    apply {{dir pkgindex} {source $pkgindex}} $libdir $pkgindex
}

# ::ts::PackageUnknown --
#	Wrapper around the original [package unknown] handler. Its auto_path scan
#	re-sources tcllib's pkgIndex.tcl, which would register tcllib smtp again;
#	re-assert the build under test after every scan.
proc ::ts::PackageUnknown {args} {
    variable origunknown
    if {[llength $origunknown]} {
	uplevel #0 [list {*}$origunknown {*}$args]
    }
    RegisterExtension
}

if {!$::ts::noextension && [file exists $::ts::pkgindex]} {
    testConstraint extension 1
    ::ts::RegisterExtension
    if {[package unknown] ne "::ts::PackageUnknown"} {
	set ::ts::origunknown [package unknown]
	package unknown ::ts::PackageUnknown
    }
    # Versions the build registered (normally one).
    set ::ts::extversions [package versions smtp]
} else {
    testConstraint extension 0
    set ::ts::extversions {}
    if {!$::ts::noextension && $::ts::libdir_explicit} {
	error "TCLSMTP_LIBDIR=$::env(TCLSMTP_LIBDIR): no pkgIndex.tcl there"
    }
}

# ---------------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------------

# ::ts::sleep ms --
#	Wait ms milliseconds while servicing the event loop (unlike [after ms]).
proc ::ts::sleep {ms} {
    set var ::ts::Sleep[incr ::ts::serial]
    after $ms [list set $var 1]
    vwait $var
    unset $var
}

# ::ts::wait_for cond ?timeout_ms? ?step_ms? --
#	Evaluate the expression cond in the caller every step_ms (servicing events in
#	between) until it is true (returns 1) or timeout_ms passes (returns 0).
proc ::ts::wait_for {cond {timeout 5000} {step 10}} {
    set deadline [expr {[clock milliseconds] + $timeout}]
    while 1 {
	if {[uplevel 1 [list expr $cond]]} {
	    return 1
	}
	if {[clock milliseconds] >= $deadline} {
	    return 0
	}
	sleep $step
    }
}

# ::ts::readfile path ?binary? --
#	Contents of a file: utf-8 text, or exact bytes (one char per byte) if binary.
proc ::ts::readfile {path {binary 0}} {
    set fh [open $path rb]
    if {!$binary} {
	fconfigure $fh -translation auto -encoding utf-8
    }
    try {
	return [read $fh]
    } finally {
	close $fh
    }
}

# ::ts::writefile path data ?binary? --
#	Write data to path (utf-8 text, or bytes if binary).
proc ::ts::writefile {path data {binary 0}} {
    set fh [open $path wb]
    if {!$binary} {
	fconfigure $fh -encoding utf-8
    }
    try {
	puts -nonewline $fh $data
    } finally {
	close $fh
    }
}

# ::ts::tempdir prefix --
#	Create and return a fresh private directory under $TMPDIR (or /tmp).
proc ::ts::tempdir {prefix} {
    set base /tmp
    if {[info exists ::env(TMPDIR)] && [file isdirectory $::env(TMPDIR)]} {
	set base $::env(TMPDIR)
    }
    for {set i 0} {$i < 100} {incr i} {
	set d [file join $base [format "tclsmtp-%s-%d-%d-%06d" $prefix [pid] \
		[incr ::ts::serial] [expr {int(rand() * 1000000)}]]]
	if {![file exists $d]} {
	    file mkdir $d
	    return $d
	}
    }
    error "cannot create a temporary directory under $base"
}

# ::ts::jsonstr s --
#	s as a JSON string literal (control characters escaped; non-ASCII kept, the
#	file is written as UTF-8).
proc ::ts::jsonstr {s} {
    variable jsonmap
    if {![info exists jsonmap]} {
	set jsonmap [list \\ \\\\ \" \\\"]
	for {set c 0} {$c < 32} {incr c} {
	    lappend jsonmap [format %c $c] [format "\\u%04x" $c]
	}
	lappend jsonmap \x7f \\u007f
    }
    return "\"[string map $jsonmap $s]\""
}

# ::ts::unused_port --
#	A loopback TCP port nothing listens on (bound to port 0, read, closed); for
#	connection-refused tests.
proc ::ts::unused_port {} {
    set s [socket -server {apply {args {}}} -myaddr 127.0.0.1 0]
    set port [lindex [fconfigure $s -sockname] 2]
    close $s
    return $port
}

# ---------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------

# ::ts::alive pid --
#	1 if process pid exists and is not a zombie (state Z counts as gone: PID 1
#	here may reap late, and Tcl reaps its detached children only at the next exec).
proc ::ts::alive {pid} {
    if {[catch {readfile /proc/$pid/stat 1} stat]} {
	return 0
    }
    set state [lindex [string range $stat [expr {[string last ")" $stat] + 1}] end] 0]
    return [expr {$state ni {Z X}}]
}

# ::ts::Start kind cmd dir --
#	Start server cmd (a list) in the background with stdout+stderr in dir/server.err,
#	wait up to 5 s for dir/port, register and return a handle.
proc ::ts::Start {kind cmd dir} {
    variable servers
    set pid [exec {*}$cmd < /dev/null >& [file join $dir server.err] &]
    set h $kind[incr ::ts::serial]
    set servers($h) [dict create kind $kind pid $pid dir $dir port {} \
	    log [file join $dir log]]
    set portfile [file join $dir port]
    if {![wait_for {[file exists $portfile] || ![alive $pid]} 5000]
	    || ![file exists $portfile]} {
	set err ""
	catch {set err [readfile [file join $dir server.err]]}
	set alive [alive $pid]
	catch {stop $h}
	error "$kind server did not start (alive=$alive): $err"
    }
    dict set servers($h) port [string trim [readfile $portfile]]
    return $h
}

# ::ts::Get h key --
#	Field key of server handle h (error if h is unknown).
proc ::ts::Get {h key} {
    variable servers
    if {![info exists servers($h)]} {
	error "unknown test server handle \"$h\""
    }
    return [dict get $servers($h) $key]
}

# ::ts::port h --
#	The TCP port server h listens on (at [::ts::host h]; Postfix: its plain port).
proc ::ts::port {h} {
    return [Get $h port]
}

# ::ts::host h --
#	The address server h listens on: 127.0.0.1, or the namespace-side address
#	(10.77.N.2) of a [::ts::netns_capture] server.
proc ::ts::host {h} {
    variable servers
    Get $h kind
    if {[dict exists $servers($h) host]} {
	return [dict get $servers($h) host]
    }
    return 127.0.0.1
}

# ::ts::dir h --
#	Server h's private temp directory (log, data files, stored messages).
proc ::ts::dir {h} {
    return [Get $h dir]
}

# ::ts::stop h --
#	Stop server h: SIGTERM, wait up to 3 s for it to go (then SIGKILL), delete its
#	temp dir (unless TS_KEEP is set). A Postfix instance is stopped with
#	"postfix.sh stop" (master and every daemon); a [::ts::netns_capture] server's
#	namespace is removed after the server. Unknown/already stopped handles are
#	ignored.
proc ::ts::stop {h} {
    variable servers
    variable serversdir
    if {![info exists servers($h)]} {
	return
    }
    set info $servers($h)
    set pid [dict get $info pid]
    set dir [dict get $info dir]
    unset servers($h)
    if {[dict get $info kind] eq "postfix"} {
	catch {exec bash [file join $serversdir postfix.sh] stop $dir < /dev/null 2>@1}
    } elseif {$pid ne ""} {
	catch {exec kill -TERM $pid}
	if {![wait_for {![alive $pid]} 3000]} {
	    catch {exec kill -KILL $pid}
	    wait_for {![alive $pid]} 2000
	}
    }
    if {[dict exists $info netns]} {
	catch {exec bash [file join $serversdir netns.sh] down [dict get $info netns] \
		< /dev/null 2>@1}
    }
    if {!([info exists ::env(TS_KEEP)] && $::env(TS_KEEP) ne "")} {
	catch {file delete -force -- $dir}
    }
}

# ::ts::stopall --
#	Stop every server still running. Runs automatically on [exit] and when
#	[cleanupTests] is called.
proc ::ts::stopall {} {
    variable servers
    foreach h [array names servers] {
	stop $h
    }
}

# Stop servers however the test file ends (exit wrapper + cleanupTests trace).
#	The test certificates of [::ts::certs] are removed at the same two points (not
#	by [::ts::stopall] itself, which test cleanups call between tests).
if {![llength [info commands ::ts::RealExit]]} {
    rename ::exit ::ts::RealExit
    proc ::exit {{code 0}} {
	catch {::ts::stopall}
	catch {::ts::DeleteCerts}
	::ts::RealExit $code
    }
}
if {"::ts::OnCleanup" ni [join [trace info execution ::tcltest::cleanupTests]]} {
    proc ::ts::OnCleanup {args} {
	catch {::ts::stopall}
	catch {::ts::DeleteCerts}
    }
    trace add execution ::tcltest::cleanupTests enter ::ts::OnCleanup
}

# ---------------------------------------------------------------------------------
# TLS test certificates
# ---------------------------------------------------------------------------------

# ::ts::certs --
#	The TLS test certificate set (tests/servers/make-certs.sh: EC P-256, a private
#	CA), generated on first use into a private temp dir and cached for the process;
#	the dir is deleted at [exit] and at [cleanupTests] (unless TS_KEEP is set), after
#	which the next call generates a fresh set: call ::ts::certs where the paths are
#	needed instead of keeping them across test files. Returns a dict of paths:
#	    dir                        the directory
#	    ca          ca_key         the CA certificate (trust anchor) and its key
#	    server_cert server_key     CA-signed, CN=localhost, SAN DNS:localhost,
#	                               IP:127.0.0.1, serverAuth: verifies for both names
#	    self_cert   self_key       self-signed localhost/127.0.0.1 (untrusted)
#	    wrong_cert  wrong_key      CA-signed for DNS:wrong.example only (name mismatch)
#	    expired_cert expired_key   CA-signed localhost/127.0.0.1, valid 2020-01-01 to
#	                               2021-01-01
#	    client_cert client_key     CA-signed client certificate (clientAuth)
proc ::ts::certs {} {
    variable certs
    variable serversdir
    if {[info exists certs] && [file exists [dict get $certs client_key]]} {
	return $certs
    }
    set dir [tempdir certs]
    if {[catch {exec sh [file join $serversdir make-certs.sh] $dir 2>@1} msg]} {
	catch {file delete -force -- $dir}
	error "make-certs.sh failed: $msg"
    }
    set d [dict create dir $dir ca [file join $dir ca.pem] ca_key [file join $dir ca.key]]
    foreach name {server self wrong expired client} {
	dict set d ${name}_cert [file join $dir $name.pem]
	dict set d ${name}_key [file join $dir $name.key]
    }
    set certs $d
    return $certs
}

# ::ts::DeleteCerts --
#	Remove the certificate dir of [::ts::certs] (kept if TS_KEEP is set) and forget it.
proc ::ts::DeleteCerts {} {
    variable certs
    if {![info exists certs]} {
	return
    }
    set dir [dict get $certs dir]
    unset certs
    if {!([info exists ::env(TS_KEEP)] && $::env(TS_KEEP) ne "")} {
	file delete -force -- $dir
    }
}

# ::ts::CertPair name --
#	{certfile keyfile} of the server certificate called name (server, self, wrong,
#	expired; also client).
proc ::ts::CertPair {name} {
    set c [certs]
    if {$name ni {server self wrong expired client}} {
	error "bad certificate name \"$name\": must be server, self, wrong, expired\
		or client"
    }
    return [list [dict get $c ${name}_cert] [dict get $c ${name}_key]]
}

# ::ts::starttls certname ?inject? --
#	A scripted-server behaviour (for the "STARTTLS" event) that answers
#	"220 2.0.0 Ready to start TLS", immediately followed in the same write by inject
#	if given (scripted.py interprets Python escapes in it: pass literal backslashes,
#	e.g. {250-injected\r\n}), then performs a server-side TLS handshake with the
#	certificate certname (server, self, wrong, expired) and continues over TLS.
proc ::ts::starttls {certname args} {
    if {[llength $args] > 1} {
	error "wrong # args: should be \"::ts::starttls certname ?inject?\""
    }
    lassign [CertPair $certname] cert key
    set v "@starttls:$cert:$key"
    if {[llength $args]} {
	append v ":[lindex $args 0]"
    }
    return $v
}

# ::ts::implicit_tls certname --
#	The value for the scripted-server script key "implicit_tls" (every connection
#	is TLS from the first byte) with the certificate certname.
proc ::ts::implicit_tls {certname} {
    lassign [CertPair $certname] cert key
    return "$cert:$key"
}

# ---------------------------------------------------------------------------------
# scripted.py
# ---------------------------------------------------------------------------------

# ::ts::seq value ?value ...? --
#	A per-occurrence behaviour for ::ts::server: the n-th occurrence of the event
#	on a connection uses the n-th value, the last one repeats ("greeting": the n-th
#	connection). Without seq, a value is one string used every time.
proc ::ts::seq {args} {
    variable seqtag
    return [list $seqtag {*}$args]
}

# ::ts::IsSeq v --
#	1 if v was built by ::ts::seq.
proc ::ts::IsSeq {v} {
    variable seqtag
    return [expr {![catch {lindex $v 0} first] && $first eq $seqtag}]
}

# ::ts::server ?script? --
#	Start scripted.py with script, a dict event -> behaviour (see scripted.py: keys
#	"greeting", verbs like "EHLO" "RCPT", "DOT", "AUTHDATA", "BODY" (the middle of a
#	data section), "*"; values are reply text or @close @reset @hang @delay:S:X @raw:T
#	@trickle:S:X @trickle-wire:S:X @big:N:P @endless[:S] @silent @then-close:X @stay:X
#	@starttls:C:K[:I] (see [::ts::starttls]) @handshake-fault:X
#	@handshake-trickle:S:C:K, in "BODY" also @slowread:S, or [::ts::seq v1 v2 ...]);
#	key "implicit_tls" (value from [::ts::implicit_tls]) makes every connection TLS
#	from the first byte; key "rcvbuf" sets the connections' receive buffer. Returns a
#	handle.
proc ::ts::server {{script {}}} {
    variable python
    variable serversdir
    set dir [tempdir scripted]
    set items {}
    dict for {k v} $script {
	if {[IsSeq $v]} {
	    set vals {}
	    foreach x [lrange $v 1 end] {
		lappend vals [jsonstr $x]
	    }
	    set v "\[[join $vals ,]\]"
	} else {
	    set v [jsonstr $v]
	}
	lappend items "[jsonstr $k]: $v"
    }
    writefile [file join $dir script.json] "\{[join $items ",\n "]\}\n"
    set cmd [list $python [file join $serversdir scripted.py] \
	    --script [file join $dir script.json] \
	    --port-file [file join $dir port] --log [file join $dir log]]
    return [Start scripted $cmd $dir]
}

# ::ts::log h --
#	Server h's log so far: a list of dicts (keys conn, ev, and line/crlf, n/file,
#	why ... per event; "tls" entries: sni version cipher; "tls-failed": error and
#	maybe plaintext). Command and reply lines are byte strings: one char per byte
#	(use [encoding convertfrom utf-8] for UTF-8 text). JSON null reads as "null".
proc ::ts::log {h} {
    set path [Get $h log]
    if {![file exists $path]} {
	return {}
    }
    set text [readfile $path 1]
    set entries {}
    foreach line [split $text \n] {
	# The last element is "" or an entry still being written: skip both.
	if {$line eq ""} {
	    continue
	}
	if {[catch {::json::json2dict $line} d]} {
	    continue
	}
	lappend entries $d
    }
    return $entries
}

# ::ts::events h ev ?conn? --
#	The log entries of event type ev (open C S data data-partial close tls
#	tls-closed tls-failed), optionally only those of connection conn.
proc ::ts::events {h ev {conn {}}} {
    set out {}
    foreach e [log $h] {
	if {[dict get $e ev] eq $ev && ($conn eq "" || [dict get $e conn] == $conn)} {
	    lappend out $e
	}
    }
    return $out
}

# ::ts::commands h ?conn? --
#	The client's command lines in order (without line ending; all connections,
#	or only connection conn). Lines sent during a data section are not included.
proc ::ts::commands {h {conn {}}} {
    set out {}
    foreach e [events $h C $conn] {
	lappend out [dict get $e line]
    }
    return $out
}

# ::ts::replies h ?conn? --
#	The reply lines the server sent, in order (all connections, or only conn).
proc ::ts::replies {h {conn {}}} {
    set out {}
    foreach e [events $h S $conn] {
	lappend out [dict get $e line]
    }
    return $out
}

# ::ts::datas h --
#	The exact bytes of each complete data section received, in order (binary
#	strings; dot-stuffing not undone; final "." line excluded).
proc ::ts::datas {h} {
    set out {}
    foreach e [events $h data] {
	lappend out [readfile [dict get $e file] 1]
    }
    return $out
}

# ::ts::wait_closed h ?count? ?timeout_ms? --
#	Wait until count connections (default 1) have logged "close"; error if that
#	does not happen within timeout_ms (default 5000). Returns the close entries.
proc ::ts::wait_closed {h {count 1} {timeout 5000}} {
    if {![wait_for {[llength [events $h close]] >= $count} $timeout]} {
	error "server $h: [llength [events $h close]] connection(s) closed,\
		expected $count within $timeout ms"
    }
    return [events $h close]
}

# ---------------------------------------------------------------------------------
# capture.py
# ---------------------------------------------------------------------------------

# ::ts::capture ?-refuse SUBSTR? ?-pipelining? ?-no8bitmime? ?-starttls CERTNAME?
#		?-require-starttls? ?-implicit CERTNAME? ?-client-ca? ?-auth USER:PASS ...?
#		?-oauth USER:TOKEN ...? ?-auth-mechs LIST? ?-auth-plaintext?
#		?-auth-fail-mech MECH ...? ?-auth-required? ?-scram-iterations N?
#		?-scram-fault KIND? --
#	Start the aiosmtpd capture server; returns a handle. -refuse makes it answer
#	550 5.1.1 to any RCPT address containing SUBSTR; -pipelining adds PIPELINING to
#	its EHLO reply. TLS (CERTNAME: server, self, wrong or expired, from
#	[::ts::certs]): -starttls offers STARTTLS with that certificate;
#	-require-starttls (with -starttls) answers "530 Must issue a STARTTLS command
#	first" to MAIL etc. before TLS; -implicit makes the port TLS from the first byte
#	instead; -client-ca (with either) requires a client certificate signed by the
#	test CA (client_cert/client_key of [::ts::certs]).
#	-no8bitmime leaves 8BITMIME out of the EHLO reply, and SMTPUTF8 with it (RFC 6531
#	says SMTPUTF8 implies 8BITMIME): a 7-bit server, to which a client must send an
#	8-bit message converted and addresses in ASCII.
#	AUTH (see capture.py): -auth USER:PASS (repeatable; split at the first ":")
#	offers AUTH PLAIN LOGIN accepting exactly those users (235 2.7.0; a wrong
#	password gets "535 5.7.8 Authentication credentials invalid"); -oauth USER:TOKEN
#	(repeatable) offers OAUTHBEARER and XOAUTH2 accepting that bearer token (a wrong
#	one gets the mechanism's JSON error, status "invalid_token" or "401", scope
#	https://mail.capture.test/, then 535 5.7.8); -auth-mechs LIST offers only those
#	of PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 (with -auth) OAUTHBEARER XOAUTH2
#	(with -oauth) (CRAM-MD5 and SCRAM only when listed); with -starttls, AUTH is
#	offered only after TLS (before: "538 5.7.11 Encryption required ...") unless
#	-auth-plaintext; -auth-fail-mech MECH (repeatable; PLAIN, LOGIN or CRAM-MD5) makes
#	that mechanism always end in 535; -auth-required answers MAIL before AUTH with
#	"530 5.7.0 Authentication required". SCRAM (RFC 5802 server side):
#	-scram-iterations N is its iteration count (default 4096), -scram-fault KIND
#	(signature, no-final, nonce, error) makes every SCRAM exchange go wrong: a wrong
#	v=, 235 without a server-final message, a server nonce not extending the client's,
#	the server-final "e=invalid-proof".
#	[::ts::auth_log h] reads what each AUTH exchange came to. Without -auth or
#	-oauth no AUTH is offered (AUTH gets 502 5.5.1).
proc ::ts::capture {args} {
    variable python
    variable serversdir
    set extra [CaptureArgs $args]
    set dir [tempdir capture]
    set cmd [list $python [file join $serversdir capture.py] \
	    --port-file [file join $dir port] --dir [file join $dir msgs] {*}$extra]
    return [Start capture $cmd $dir]
}

# ::ts::CaptureArgs options --
#	Check the options of [::ts::capture] and return capture.py's arguments for them.
proc ::ts::CaptureArgs {options} {
    set args $options
    set extra {}
    set auth 0
    while {[llength $args]} {
	set args [lassign $args opt]
	switch -- $opt {
	    -refuse {
		if {![llength $args]} {
		    error "-refuse needs a value"
		}
		set args [lassign $args val]
		lappend extra --refuse $val
	    }
	    -pipelining {
		lappend extra --pipelining
	    }
	    -no8bitmime {
		lappend extra --no-8bitmime
	    }
	    -starttls - -implicit {
		if {![llength $args]} {
		    error "$opt needs a certificate name"
		}
		if {[info exists tlsmode]} {
		    error "only one of -starttls and -implicit"
		}
		set args [lassign $args val]
		if {$val ni {server self wrong expired}} {
		    error "bad certificate name \"$val\": must be server, self, wrong or expired"
		}
		set tlsmode $opt
		lassign [CertPair $val] cert key
		lappend extra [string cat - $opt] --cert $cert --key $key
	    }
	    -require-starttls {
		set requiretls 1
		lappend extra --require-starttls
	    }
	    -client-ca {
		set clientca 1
		lappend extra --client-ca [dict get [certs] ca]
	    }
	    -auth - -oauth {
		set form [expr {$opt eq "-auth" ? "USER:PASSWORD" : "USER:TOKEN"}]
		if {![llength $args]} {
		    error "$opt needs $form"
		}
		set args [lassign $args val]
		if {![regexp {^[^:]+:} $val]} {
		    error "bad $opt value \"$val\": must be $form"
		}
		# Sets auth or oauth.
		set [string range $opt 1 end] 1
		lappend extra -$opt $val
	    }
	    -scram-iterations {
		if {![llength $args]} {
		    error "-scram-iterations needs a number"
		}
		set args [lassign $args val]
		if {![string is integer -strict $val] || $val < 1} {
		    error "bad -scram-iterations value \"$val\": must be a positive integer"
		}
		set authopt 1
		lappend extra --scram-iterations $val
	    }
	    -scram-fault {
		if {![llength $args]} {
		    error "-scram-fault needs a kind"
		}
		set args [lassign $args val]
		if {$val ni {signature no-final nonce error}} {
		    error "bad -scram-fault \"$val\": must be signature, no-final, nonce or\
			    error"
		}
		set authopt 1
		lappend extra --scram-fault $val
	    }
	    -auth-mechs {
		if {![llength $args]} {
		    error "-auth-mechs needs a list of mechanisms"
		}
		set args [lassign $args val]
		set mechs [split [string trim [regsub -all {[\s,]+} $val " "]] " "]
		if {![llength $mechs]} {
		    error "-auth-mechs needs a list of mechanisms"
		}
		foreach m $mechs {
		    set m [string toupper $m]
		    if {$m in {PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256}} {
			set needauth 1
		    } elseif {$m in {OAUTHBEARER XOAUTH2}} {
			set needoauth 1
		    } else {
			error "bad mechanism \"$m\": must be PLAIN, LOGIN, CRAM-MD5,\
				SCRAM-SHA-1, SCRAM-SHA-256, OAUTHBEARER or XOAUTH2"
		    }
		}
		set authopt 1
		lappend extra --auth-mechs [join $mechs ,]
	    }
	    -auth-fail-mech {
		if {![llength $args]} {
		    error "-auth-fail-mech needs a mechanism"
		}
		set args [lassign $args val]
		if {[string toupper $val] ni {PLAIN LOGIN CRAM-MD5}} {
		    error "bad mechanism \"$val\": must be PLAIN, LOGIN or CRAM-MD5"
		}
		set authopt 1
		lappend extra --auth-fail-mech $val
	    }
	    -auth-plaintext {
		set plaintext 1
		set authopt 1
		lappend extra --auth-plaintext
	    }
	    -auth-required {
		set authopt 1
		lappend extra --auth-required
	    }
	    default {
		error "bad option \"$opt\": must be -refuse, -pipelining, -no8bitmime,\
			-starttls, -require-starttls, -implicit, -client-ca, -auth, -oauth,\
			-auth-mechs, -auth-plaintext, -auth-fail-mech, -auth-required,\
			-scram-iterations or -scram-fault"
	    }
	}
    }
    if {[info exists requiretls] && !([info exists tlsmode] && $tlsmode eq "-starttls")} {
	error "-require-starttls needs -starttls"
    }
    if {[info exists clientca] && ![info exists tlsmode]} {
	error "-client-ca needs -starttls or -implicit"
    }
    if {[info exists authopt] && !$auth && ![info exists oauth]} {
	error "-auth-mechs, -auth-plaintext, -auth-fail-mech and -auth-required need -auth"
    }
    if {[info exists needauth] && !$auth} {
	error "password mechanisms in -auth-mechs need -auth"
    }
    if {[info exists needoauth] && ![info exists oauth]} {
	error "OAUTHBEARER and XOAUTH2 in -auth-mechs need -oauth"
    }
    if {[info exists plaintext] && !([info exists tlsmode] && $tlsmode eq "-starttls")} {
	error "-auth-plaintext needs -starttls (AUTH is always offered otherwise)"
    }
    return $extra
}

# ::ts::messages h ?count? ?timeout_ms? --
#	Wait until at least count (default 1) messages are stored (error after
#	timeout_ms, default 5000), then return all stored messages in order, each a
#	dict {mail_from rcpt_tos mail_options rcpt_options tls sni client_cert auth_user
#	data};
#	data is the exact bytes (binary string) the server stored, dot-stuffing undone;
#	tls is true/false (arrived over TLS: STARTTLS or implicit), sni the server name
#	the client sent in its TLS ClientHello ("" if none, or no TLS), client_cert
#	true/false (a client certificate verified against the test CA), auth_user the
#	user name the session authenticated as with AUTH ("" if it did not); capture.py
#	also gives auth_mech, the mechanism it used ("" if none).
proc ::ts::messages {h {count 1} {timeout 5000}} {
    set dir [file join [Get $h dir] msgs]
    if {$count > 0
	    && ![wait_for {[file exists [file join $dir $count.json]]} $timeout]} {
	set have [llength [glob -nocomplain -directory $dir *.json]]
	error "server $h: $have message(s) stored, expected $count within $timeout ms"
    }
    set out {}
    for {set n 1} {[file exists [file join $dir $n.json]]} {incr n} {
	set d [::json::json2dict [readfile [file join $dir $n.json]]]
	foreach key {sni auth_user auth_mech} {
	    if {![dict exists $d $key] || [dict get $d $key] eq "null"} {
		dict set d $key ""
	    }
	}
	dict set d data [readfile [file join $dir $n.eml] 1]
	lappend out $d
    }
    return $out
}

# ::ts::auth_log h --
#	The AUTH exchanges capture server h (or a [::ts::node_smtp] server) has logged so
#	far, in order: a list of dicts {mech user outcome ...} as capture.py (or
#	node_smtp.js) describes; user "" if unknown.
proc ::ts::auth_log {h} {
    set f [file join [Get $h dir] msgs auth.log]
    if {![file exists $f]} {
	return {}
    }
    set out {}
    foreach line [split [readfile $f] \n] {
	if {$line eq "" || [catch {::json::json2dict $line} d]} {
	    continue
	}
	if {![dict exists $d user] || [dict get $d user] eq "null"} {
	    dict set d user ""
	}
	lappend out $d
    }
    return $out
}

# ::ts::email_parts data ?-decoded? --
#	Python's email parser on message bytes data (an independent oracle): a dict
#	{defects {...} parts {...}} as tests/oracle/email_parts.py describes, each part a
#	dict {part type boundary headers filename disposition payload}; with -decoded,
#	header values, file names and text payloads are decoded as a mail client shows them.
proc ::ts::email_parts {data args} {
    variable python
    variable testsdir
    set args [lmap a $args {expr {$a eq "-decoded" ? "--decoded" : [error "bad option \"$a\": must be -decoded"]}}]
    set script [file join $testsdir oracle email_parts.py]
    set fh [file tempfile path]
    fconfigure $fh -translation binary
    try {
	puts -nonewline $fh $data
	close $fh
	# The JSON is ASCII (Python escapes the rest), so no encoding matters here.
	return [::json::json2dict [exec $python $script {*}$args < $path]]
    } finally {
	file delete $path
    }
}

# ---------------------------------------------------------------------------------
# nodemailer's smtp-server (tests/servers/node/smtp_server.js)
# ---------------------------------------------------------------------------------

namespace eval ::ts {
    variable nodedir [file join $serversdir node]
}

# ::ts::node_available --
#	1 if Node.js (20 or later, as smtp-server needs) and npm are on the PATH. The
#	tcltest constraint "nodesmtp". (Whether the npm registry answers is not checked:
#	where it does not, [::ts::node_smtp] fails, visibly.)
proc ::ts::node_available {} {
    if {[auto_execok node] eq "" || [auto_execok npm] eq ""} {
	return 0
    }
    if {[catch {exec node --version 2>@1} v] || ![regexp {^v(\d+)\.} $v -> major]} {
	return 0
    }
    return [expr {$major >= 20}]
}
::tcltest::ConstraintInitializer nodesmtp ::ts::node_available

# ::ts::node_install --
#	Install smtp-server into tests/servers/node/node_modules (git ignores it) unless
#	the installation there was made from the current package-lock.json (a copy of it
#	is kept as node_modules/.tclsmtp-lock): "npm ci" (exact versions from the lock
#	file, no install scripts) in a private directory, then renamed into place, so a
#	killed or concurrent install never leaves a half one. Needs the npm registry
#	(about 1 s); error if npm fails. Done at most once per process.
proc ::ts::node_install {} {
    variable nodedir
    variable node_installed
    if {[info exists node_installed]} {
	return
    }
    set lock [file join $nodedir package-lock.json]
    set stamp [file join $nodedir node_modules .tclsmtp-lock]
    if {[file exists $stamp] && [readfile $stamp 1] eq [readfile $lock 1]} {
	set node_installed 1
	return
    }
    set tmp [file join $nodedir .install-[pid]-[incr ::ts::serial]]
    file delete -force -- $tmp
    file mkdir $tmp
    try {
	file copy [file join $nodedir package.json] $lock $tmp
	set env [list env npm_config_update_notifier=false npm_config_fund=false \
		npm_config_audit=false]
	if {[catch {exec {*}$env timeout -k 5 300 npm ci --ignore-scripts \
		--prefix $tmp < /dev/null 2>@1} msg]} {
	    error "npm ci of smtp-server failed: $msg"
	}
	file copy $lock [file join $tmp node_modules .tclsmtp-lock]
	set old [file join $nodedir node_modules]
	if {[file exists $old]} {
	    file rename $old [file join $tmp old]
	}
	file rename [file join $tmp node_modules] $old
    } finally {
	file delete -force -- $tmp
    }
    set node_installed 1
}

# ::ts::node_smtp ?-oauth USER:TOKEN ...? ?-scope SCOPE? --
#	Start nodemailer's smtp-server (tests/servers/node/smtp_server.js, installed
#	first by [::ts::node_install]) and return a handle: STARTTLS with the "server"
#	certificate of [::ts::certs]; after it AUTH XOAUTH2 only, accepting each USER's
#	TOKEN (a wrong one gets 334 with the JSON error {"status":"401",
#	"schemes":"bearer","scope":SCOPE}, default https://mail.node.test/, then
#	"535 Error: Username and Password not accepted"); MAIL before AUTH gets 530.
#	[::ts::messages] reads the messages it accepted (auth_user included), and
#	[::ts::auth_log] its XOAUTH2 checks ({mech XOAUTH2 user U outcome ok|refused}).
proc ::ts::node_smtp {args} {
    variable nodedir
    set extra {}
    while {[llength $args]} {
	set args [lassign $args opt]
	if {![llength $args]} {
	    error "$opt needs a value"
	}
	set args [lassign $args val]
	switch -- $opt {
	    -oauth {
		if {![regexp {^[^:]+:} $val]} {
		    error "bad -oauth value \"$val\": must be USER:TOKEN"
		}
		lappend extra --oauth $val
	    }
	    -scope {
		lappend extra --scope $val
	    }
	    default {
		error "bad option \"$opt\": must be -oauth or -scope"
	    }
	}
    }
    node_install
    lassign [CertPair server] cert key
    set dir [tempdir node]
    set cmd [list node [file join $nodedir smtp_server.js] \
	    --port-file [file join $dir port] --dir [file join $dir msgs] \
	    --cert $cert --key $key {*}$extra]
    return [Start node $cmd $dir]
}

# ---------------------------------------------------------------------------------
# counter.py (load tests)
# ---------------------------------------------------------------------------------

# ::ts::counter ?-conns? --
#	Start counter.py (aiosmtpd storing one line per accepted message, written before
#	its 250: see counter.py) and return a handle; [::ts::counted h] reads the lines.
#	With -conns it also logs connection events (open ehlo mail rset quit close), which
#	[::ts::conns h] reads.
proc ::ts::counter {args} {
    variable python
    variable serversdir
    if {$args ni {{} -conns}} {
	error "bad option \"[lindex $args 0]\": must be -conns"
    }
    set dir [tempdir counter]
    set cmd [list $python [file join $serversdir counter.py] \
	    --port-file [file join $dir port] --ids [file join $dir ids]]
    if {$args eq "-conns"} {
	lappend cmd --conns [file join $dir conns]
    }
    return [Start counter $cmd $dir]
}

# ::ts::conns h --
#	The connection events counter server h (started with -conns) has logged so far,
#	in order: a list of {event conn open seconds}: event one of open ehlo mail rset
#	quit close, conn the connection number (1, 2, ... in accept order), open the
#	number of connections open after the event, seconds a monotonic time.
proc ::ts::conns {h} {
    ReadRows [file join [Get $h dir] conns]
}

# ::ts::ReadRows path --
#	The lines of the tab-separated file path written so far, each as a list of its
#	fields (empty lines skipped; no file yet: none).
proc ::ts::ReadRows {path} {
    if {![file exists $path]} {
	return {}
    }
    set out {}
    foreach line [split [readfile $path 1] \n] {
	if {$line ne ""} {
	    lappend out [split $line \t]
	}
    }
    return $out
}

# ::ts::counted h --
#	The messages counter server h has accepted so far, in order: a list of
#	{message-id subject rcpt-count bytes} (header values as received, "-" if absent).
proc ::ts::counted {h} {
    ReadRows [file join [Get $h dir] ids]
}

# ---------------------------------------------------------------------------------
# Postfix with Cyrus SASL (tests/servers/postfix.sh)
# ---------------------------------------------------------------------------------

# ::ts::postfix_available --
#	1 if a private Postfix can be started here (root; postfix and saslpasswd2
#	installed). The tcltest constraint "postfix".
proc ::ts::postfix_available {} {
    expr {[file executable /usr/sbin/postfix] && [file executable /usr/sbin/saslpasswd2]
	    && [file isdirectory /usr/lib/postfix/sbin] && [exec id -u] == 0}
}
::tcltest::ConstraintInitializer postfix ::ts::postfix_available

# ::ts::postfix ?-mechs LIST? ?-users {USER PASS ...}? ?-maincf LINES? --
#	Start a private Postfix 3.7 instance (tests/servers/postfix.sh: about 0.35 s) on
#	three free 127.0.0.1 ports and return a handle. [::ts::port h] is the plain port
#	(STARTTLS offered, AUTH offered before TLS too, relays for loopback clients
#	without AUTH); [::ts::postfix_port h submission|smtps] the port that relays only
#	after AUTH (554 5.7.1 at RCPT otherwise) and the implicit-TLS one. TLS uses the
#	"server" certificate of [::ts::certs] (CN=localhost). SASL: Cyrus with a sasldb,
#	realm "localhost", users from -users (default {alice s3cret}), mechanisms -mechs
#	(default "PLAIN LOGIN CRAM-MD5 DIGEST-MD5"; also SCRAM-SHA-1 SCRAM-SHA-256). A
#	wrong password gets "535 5.7.8 Error: authentication failed: authentication
#	failure". Every accepted message is delivered to a catch-all maildir: see
#	[::ts::maildir_messages]. -maincf LINES are appended to main.cf (postfix.sh's
#	POSTFIX_MAINCF: "name = value" lines replacing the defaults). Stopped by
#	[::ts::stop]/[::ts::stopall].
proc ::ts::postfix {args} {
    variable servers
    variable serversdir
    set mechs {}
    set users {alice s3cret}
    set maincf {}
    while {[llength $args]} {
	set args [lassign $args opt]
	if {![llength $args]} {
	    error "$opt needs a value"
	}
	set args [lassign $args val]
	switch -- $opt {
	    -mechs {
		set mechs [string trim [regsub -all {[\s,]+} $val " "]]
		if {$mechs eq ""} {
		    error "-mechs needs at least one mechanism"
		}
	    }
	    -users {
		if {[catch {llength $val} n] || $n == 0 || $n % 2} {
		    error "-users needs a list {USER PASSWORD ?USER PASSWORD ...?}"
		}
		set users $val
	    }
	    -maincf {
		set maincf $val
	    }
	    default {
		error "bad option \"$opt\": must be -mechs, -users or -maincf"
	    }
	}
    }
    PostfixGc
    set specs {}
    foreach {user pass} $users {
	if {$user eq "" || [string first : $user] >= 0} {
	    error "bad user name \"$user\""
	}
	lappend specs $user:$pass
    }
    # The instance dir must be reachable by user postfix: not under a 0700 TMPDIR.
    set dir [tempdir postfix]
    for {set d [file dirname $dir]} {$d ne "/"} {set d [file dirname $d]} {
	if {!([file attributes $d -permissions] & 1)} {
	    file delete -force -- $dir
	    set dir [file join /tmp [file tail $dir]]
	    file mkdir $dir
	    break
	}
    }
    set env {}
    if {$mechs ne ""} {
	lappend env POSTFIX_MECHS=$mechs
    }
    if {$maincf ne ""} {
	lappend env POSTFIX_MAINCF=$maincf
    }
    if {[llength $env]} {
	set env [list env {*}$env]
    }
    if {[catch {exec {*}$env timeout -k 2 20 bash [file join $serversdir postfix.sh] \
	    start $dir [dict get [certs] dir] {*}$specs < /dev/null 2>@1} msg]} {
	catch {exec bash [file join $serversdir postfix.sh] stop $dir < /dev/null 2>@1}
	if {!([info exists ::env(TS_KEEP)] && $::env(TS_KEEP) ne "")} {
	    catch {file delete -force -- $dir}
	}
	error "Postfix did not start: $msg"
    }
    set ports {}
    foreach kv [split [string trim [readfile [file join $dir ports]]]] {
	lassign [split $kv =] k v
	dict set ports $k $v
    }
    set pid [string trim [lindex [split [readfile [file join $dir spool pid master.pid]] \n] 0]]
    set h postfix[incr ::ts::serial]
    set servers($h) [dict create kind postfix pid $pid dir $dir \
	    port [dict get $ports plain] ports $ports log [file join $dir maillog]]
    return $h
}

# ::ts::PostfixGc --
#	Once per process: stop Postfix instances left running by test processes that
#	were killed before they could stop them (tclsmtp-postfix-PID-* dirs whose PID
#	is gone). Their directories are left in place.
proc ::ts::PostfixGc {} {
    variable postfix_gc_done
    variable serversdir
    if {[info exists postfix_gc_done]} {
	return
    }
    set postfix_gc_done 1
    set bases [list /tmp]
    if {[info exists ::env(TMPDIR)] && [file isdirectory $::env(TMPDIR)]} {
	lappend bases $::env(TMPDIR)
    }
    set dirs {}
    foreach b $bases {
	lappend dirs {*}[glob -nocomplain -types d -directory $b tclsmtp-postfix-*]
    }
    foreach d [lsort -unique $dirs] {
	if {[regexp {^tclsmtp-postfix-(\d+)-} [file tail $d] -> owner]
		&& ![alive $owner]
		&& [file exists [file join $d spool pid master.pid]]} {
	    catch {exec bash [file join $serversdir postfix.sh] stop $d < /dev/null 2>@1}
	}
    }
}

# ::ts::postfix_port h ?which? --
#	Port which (plain, submission or smtps; default plain) of Postfix instance h.
proc ::ts::postfix_port {h {which plain}} {
    set ports [PostfixGet $h ports]
    if {![dict exists $ports $which]} {
	error "bad port \"$which\": must be plain, submission or smtps"
    }
    return [dict get $ports $which]
}

# ::ts::PostfixGet h key --
#	Field key of Postfix handle h (error if h is not a Postfix instance).
proc ::ts::PostfixGet {h key} {
    if {[Get $h kind] ne "postfix"} {
	error "server $h is not a Postfix instance"
    }
    return [Get $h $key]
}

# ::ts::maildir_messages h ?count? ?timeout_ms? --
#	Wait until at least count (default 1) messages have been delivered to Postfix
#	instance h's maildir (error after timeout_ms, default 5000), then return all of
#	them in delivery order, each the exact bytes of the file (binary string): LF
#	line endings, Postfix's Return-Path, X-Original-To, Delivered-To and Received
#	headers first (the Received header names the AUTH user as "(Authenticated
#	sender: USER)" and records TLS). A message lands about 30 ms after the 250.
proc ::ts::maildir_messages {h {count 1} {timeout 5000}} {
    set new [file join [PostfixGet $h dir] mail catchall new]
    if {$count > 0 && ![wait_for {[llength [glob -nocomplain -directory $new *]] >= $count} \
	    $timeout]} {
	error "server $h: [llength [glob -nocomplain -directory $new *]] message(s)\
		delivered, expected $count within $timeout ms"
    }
    # Maildir names are SECONDS.V<dev>I<inode>M<microseconds>.HOST.
    set keyed {}
    foreach f [glob -nocomplain -directory $new *] {
	set tail [file tail $f]
	if {![regexp {^(\d+)\.[^.]*M(\d+)} $tail -> sec usec]} {
	    set sec [file mtime $f]
	    set usec 0
	}
	lappend keyed [list [format %012d.%06d $sec $usec] $tail $f]
    }
    set out {}
    foreach k [lsort -index 0 [lsort -index 1 $keyed]] {
	lappend out [readfile [lindex $k 2] 1]
    }
    return $out
}

# ::ts::postfix_log h --
#	Postfix instance h's log so far (text; "" if none yet): for debugging.
proc ::ts::postfix_log {h} {
    set f [PostfixGet $h log]
    if {![file exists $f]} {
	return ""
    }
    return [readfile $f]
}

# ---------------------------------------------------------------------------------
# Network namespaces (tests/servers/netns.sh)
# ---------------------------------------------------------------------------------

# ::ts::netns_available --
#	1 if network namespaces with veth pairs work here (root, iproute2, the
#	capabilities): checked once per process by creating and removing a probe
#	namespace (about 50 ms), which also removes namespaces left by killed test
#	runs. The reason it does not work is in ::ts::netns_reason. TS_NETNS=0 makes it
#	0 without trying. The tcltest constraint "netns".
proc ::ts::netns_available {} {
    variable netns_ok
    variable netns_reason
    variable serversdir
    if {[info exists netns_ok]} {
	return $netns_ok
    }
    set netns_reason ""
    if {[info exists ::env(TS_NETNS)] && $::env(TS_NETNS) eq "0"} {
	set netns_reason "disabled by TS_NETNS=0"
	return [set netns_ok 0]
    }
    set script [file join $serversdir netns.sh]
    catch {exec bash $script gc < /dev/null 2>@1}
    if {[catch {exec bash $script check < /dev/null 2>@1} msg]} {
	set netns_reason [string trim $msg]
	return [set netns_ok 0]
    }
    return [set netns_ok 1]
}
::tcltest::ConstraintInitializer netns ::ts::netns_available

# ::ts::netns_capture ?capture options? --
#	Start capture.py (options as for [::ts::capture]) inside a fresh network
#	namespace joined to this one by a veth pair; returns a handle whose
#	[::ts::host h] is the namespace-side address 10.77.N.2 (not a loopback address:
#	clients reach it through the host-side interface tsm<N>h, 10.77.N.1) and
#	[::ts::port h] its port; [::ts::messages] works as usual. [::ts::stop] stops
#	the server and removes the namespace. Error if [::ts::netns_available] is 0.
#	Note: the TLS test certificates name localhost/127.0.0.1, not 10.77.N.2.
proc ::ts::netns_capture {args} {
    variable python
    variable serversdir
    variable servers
    set extra [CaptureArgs $args]
    if {![netns_available]} {
	error "network namespaces are not available here: $::ts::netns_reason"
    }
    set script [file join $serversdir netns.sh]
    set name tclsmtp-[pid]-[incr ::ts::serial]
    set addr [exec bash $script up $name < /dev/null 2>@1]
    set dir [tempdir netns]
    set cmd [list bash $script exec $name $python [file join $serversdir capture.py] \
	    --host $addr --port-file [file join $dir port] --dir [file join $dir msgs] \
	    {*}$extra]
    if {[catch {Start capture $cmd $dir} h opts]} {
	catch {exec bash $script down $name < /dev/null 2>@1}
	return -options $opts $h
    }
    dict set servers($h) host $addr
    dict set servers($h) netns $name
    return $h
}

# ---------------------------------------------------------------------------------
# Sending, and what a send came to
# ---------------------------------------------------------------------------------

# ::ts::send defaults to ?option value ...? --
#	Send a message with smtp::sendmessage and return its result (an error propagates
#	as it is). to lists the servers, tried in order: server handles (at
#	[::ts::host h] and [::ts::port h]) or port numbers on 127.0.0.1. defaults are the
#	options every send of a test file shares, which the file binds once:
#
#	    interp alias {} [namespace current]::send {} ::ts::send {-timeout 5 ...}
#
#	and the options after to are this send's. All go to smtp::sendmessage after
#	-servers and -ports, defaults first: as sendmessage takes the last value of a
#	repeated option, a test can override any of them. Three options are taken out:
#	    -body text    the text of the fresh text/plain token sent (default "Body\n"),
#	                  finalized afterwards
#	    -token tok    send tok instead (the caller owns it)
#	    -tmpdir dir   TMPDIR during the call (where the extension spools the message)
proc ::ts::send {defaults to args} {
    set own [dict create -body "Body\n" -token "" -tmpdir ""]
    set options {}
    set words [list {*}$defaults {*}$args]
    for {set i 0} {$i < [llength $words]} {incr i} {
	set word [lindex $words $i]
	# A word with no value after it goes to sendmessage as it is (for its error).
	if {[dict exists $own $word] && $i + 1 < [llength $words]} {
	    dict set own $word [lindex $words [incr i]]
	} else {
	    lappend options $word
	    if {$i + 1 < [llength $words]} {
		lappend options [lindex $words [incr i]]
	    }
	}
    }
    set token [dict get $own -token]
    set tmpdir [dict get $own -tmpdir]
    set hosts {}
    set ports {}
    foreach server $to {
	if {[string is integer -strict $server]} {
	    lappend hosts 127.0.0.1
	    lappend ports $server
	} else {
	    lappend hosts [host $server]
	    lappend ports [port $server]
	}
    }
    set fresh [expr {$token eq ""}]
    if {$fresh} {
	set token [mime::initialize -canonical text/plain -string [dict get $own -body]]
    }
    if {$tmpdir ne ""} {
	set saved [array get ::env TMPDIR]
	set ::env(TMPDIR) $tmpdir
    }
    try {
	smtp::sendmessage $token -servers $hosts -ports $ports {*}$options
    } finally {
	if {$tmpdir ne ""} {
	    unset ::env(TMPDIR)
	    array set ::env $saved
	}
	if {$fresh} {
	    mime::finalize $token
	}
    }
}

# ::ts::outcome script ?msvar? --
#	Evaluate script in the caller and return {code result errorcode}: its return code
#	(0 ok, 1 error), its result or error message, and the -errorcode when the code is
#	1 ("" otherwise). With msvar, that variable of the caller gets the milliseconds
#	script took. For tests that check more than the error itself (what the server got,
#	the time, several sends in a row); a test that only checks an error says
#	-returnCodes error -errorCode {...} instead.
proc ::ts::outcome {script {msvar ""}} {
    set t0 [clock milliseconds]
    set code [catch {uplevel 1 $script} result options]
    if {$msvar ne ""} {
	upvar 1 $msvar ms
	set ms [expr {[clock milliseconds] - $t0}]
    }
    list $code $result [expr {$code == 1 ? [dict get $options -errorcode] : ""}]
}

# ::ts::unconnected h script --
#	Evaluate script in the caller and return its result; whatever it does, fail (with
#	errorcode TEST CONNECTED) if server h received a connection: for input that must
#	be refused before any connection. A script error passes through unchanged.
proc ::ts::unconnected {h script} {
    try {
	uplevel 1 $script
    } finally {
	sleep 150
	if {[llength [events $h open]]} {
	    throw {TEST CONNECTED} "server $h received a connection"
	}
    }
}

# ---------------------------------------------------------------------------------
# Child interpreters
# ---------------------------------------------------------------------------------

# ::ts::child ?-noextension|-bare? ?-timeout secs? script --
#	Run script in a separate tclsh ([info nameofexecutable]) and return
#	{exitcode stdout stderr}. By default the child first sources this file, so the
#	same extension setup and ::ts helpers apply. -noextension sources it without
#	registering the build under test (smtp then comes from auto_path, e.g. tcllib).
#	-bare sources nothing: a pristine tclsh, for loading-behaviour tests (note that
#	sourcing this file loads tcltest and json, which scans auto_path and registers
#	every package there, tcllib's smtp 1.5.1 included). The child is killed after
#	-timeout seconds (default 30, fractions allowed; exit code 124 then).
proc ::ts::child {args} {
    variable support
    set mode full
    set timeout 30
    while {[llength $args] > 1} {
	set args [lassign $args opt]
	switch -- $opt {
	    -noextension {
		set mode noextension
	    }
	    -bare {
		set mode bare
	    }
	    -timeout {
		set args [lassign $args timeout]
	    }
	    default {
		error "bad option \"$opt\": must be -bare, -noextension or -timeout"
	    }
	}
    }
    if {[llength $args] != 1} {
	error "wrong # args: should be \"::ts::child ?-noextension|-bare? ?-timeout secs? script\""
    }
    set dir [tempdir child]
    set file [file join $dir child.tcl]
    set prelude ""
    if {$mode ne "bare"} {
	set prelude [string cat \
		[list namespace eval ::ts [list variable noextension [expr {$mode eq "noextension"}]]] \
		\n [list source $support] \n]
    }
    writefile $file $prelude[lindex $args 0]\n
    set out [file join $dir stdout]
    set err [file join $dir stderr]
    set code 0
    set shell [list [info nameofexecutable]]
    if {[info exists ::env(TCLSMTP_VALGRIND)] && $::env(TCLSMTP_VALGRIND) ne ""} {
	set shell [list {*}$::env(TCLSMTP_VALGRIND) {*}$shell]
	set timeout [expr {$timeout * 10}]
    }
    try {
	exec timeout -k 2 $timeout {*}$shell $file \
		< /dev/null > $out 2> $err
    } trap CHILDSTATUS {msg opts} {
	set code [lindex [dict get $opts -errorcode] 2]
    }
    set result [list $code [readfile $out] [readfile $err]]
    file delete -force -- $dir
    return $result
}
