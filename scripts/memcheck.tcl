# memcheck.tcl --
#
#	The workload scripts/memcheck.sh runs under valgrind: ROUNDS rounds (env
#	MEMCHECK_ROUNDS, default 2) of the same 5 sends in one interpreter, to aiosmtpd
#	servers (tests/servers/capture.py) started here:
#	    1. plain SMTP, no TLS offered
#	    2. STARTTLS, certificate verified against the test CA
#	    3. STARTTLS + AUTH (LOGIN, the strongest of the two offered)
#	    4. implicit TLS + AUTH CRAM-MD5
#	    5. one of: STARTTLS to a self-signed certificate accepted by a -tlspolicy
#	       command (a Tcl callback from the send), a refused recipient, or a server
#	       refusing service at its greeting (an error), in turn
#	    6. an asynchronous send (-command) collected by ::smtp::wait, and one
#	       cancelled while its server delays the greeting; every 10th round, a child
#	       interpreter deleted while its asynchronous send waits for that greeting
#	so ROUNDS=2 is 15 sends and ROUNDS=200 is 1,420 sends. Every send's outcome is
#	checked (a wrong one exits 1: a leak count of a run that did not do its work
#	means nothing). At the end it prints one line
#	    memcheck: sends N delivered D channels C memchans M
#	C is the number of Tcl channels open (must not grow with ROUNDS), M the number of
#	live tcl::chan::memchan objects the mime bridge made (must be 0).
#
#	The system CA store is replaced by the test CA (SSL_CERT_FILE/SSL_CERT_DIR), so a
#	TLS send does not parse the whole system bundle under valgrind.

source [file join [file dirname [file dirname [file normalize [info script]]]] tests support.tcl]
package require mime
package require smtp

set rounds 2
if {[info exists env(MEMCHECK_ROUNDS)]} {
    set rounds $env(MEMCHECK_ROUNDS)
}

set ca [dict get [::ts::certs] ca]
set env(SSL_CERT_FILE) $ca
set env(SSL_CERT_DIR) [file dirname $ca]/no-such-dir

set plain [::ts::capture -refuse refused]
set starttls [::ts::capture -starttls server -auth alice:s3cret]
set implicit [::ts::capture -implicit server -auth alice:s3cret -auth-mechs CRAM-MD5]
set selfsigned [::ts::capture -starttls self]
set refusing [::ts::server [dict create greeting "554 5.3.2 no service"]]
set slow [::ts::server [dict create greeting "@delay:2:220 slow.test"]]

proc insecure {code diagnostic} {
    incr ::policycalls
    return insecure
}
set policycalls 0

# send port ?option value ...? -- one send of a fresh token; returns {code result}.
proc send {port args} {
    set tok [mime::initialize -canonical text/plain \
	    -string "Memcheck body line one\nline two\n.leading dot\n"]
    mime::setheader $tok Subject "memcheck [incr ::serial]"
    try {
	set code [catch {smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
		-timeout 60 -originator a@x.test {*}$args} result]
    } finally {
	mime::finalize $tok
    }
    return [list $code $result]
}

proc collect {handle result} {
    incr ::callbacks
}
set callbacks 0

proc expect {what got want} {
    if {![string match $want $got]} {
	puts stderr "memcheck: $what: got {$got}, want {$want}"
	exit 1
    }
}

set sends 0
set delivered 0
for {set r 0} {$r < $rounds} {incr r} {
    expect plain [send [::ts::port $plain] -recipients b@y.test] {0 {}}
    expect starttls [send [::ts::port $starttls] -recipients b@y.test] {0 {}}
    expect "starttls+auth" [send [::ts::port $starttls] -recipients b@y.test \
	    -username alice -password s3cret] {0 {}}
    expect "implicit+cram-md5" [send [::ts::port $implicit] -tlsimport 1 \
	    -recipients b@y.test -username alice -password s3cret] {0 {}}
    incr sends 4
    incr delivered 4
    switch [expr {$r % 3}] {
	0 {
	    expect policy [send [::ts::port $selfsigned] -recipients b@y.test \
		    -tlspolicy ::insecure] {0 {}}
	    incr delivered
	}
	1 {
	    expect refused [send [::ts::port $plain] -recipients refused@y.test] \
		    {0 {{refused@y.test 550 *}}}
	}
	2 {
	    expect error [send [::ts::port $refusing] -recipients b@y.test] {1 *}
	}
    }
    incr sends
    # Asynchronous: one waited for, one cancelled.
    set tok [mime::initialize -canonical text/plain -string "async body\n"]
    set handle [smtp::sendmessage $tok -servers 127.0.0.1 -ports [::ts::port $plain] \
	    -originator a@x.test -recipients b@y.test -command ::collect]
    mime::finalize $tok
    expect async [smtp::wait $handle] {}
    set tok [mime::initialize -canonical text/plain -string "cancelled body\n"]
    set handle [smtp::sendmessage $tok -servers 127.0.0.1 -ports [::ts::port $slow] \
	    -originator a@x.test -recipients b@y.test -command ::collect]
    mime::finalize $tok
    smtp::cancel $handle
    expect cancelled [catch {smtp::wait $handle}] 1
    incr sends 2
    incr delivered
    if {$r % 10 == 0} {
	interp create child
	child eval [list set dir $::ts::libdir]
	child eval {source [file join $dir pkgIndex.tcl]; package require smtp}
	child eval [list set port [::ts::port $slow]]
	child eval {
	    set t [mime::initialize -canonical text/plain -string "never sent\n"]
	    smtp::sendmessage $t -servers 127.0.0.1 -ports $port -originator a@x.test \
		    -recipients b@y.test -command list
	    mime::finalize $t
	}
	interp delete child
	incr sends
    }
}
# The servers' own count of stored messages must match. Counted by file name: reading
# and parsing every stored message would make the interpreter's peak memory, and so
# what valgrind reports, grow with the number of sends for reasons of this script's own.
proc stored {h} {
    llength [glob -nocomplain -directory [file join [::ts::dir $h] msgs] *.json]
}
set stored [expr {[stored $plain] + [stored $starttls] + [stored $implicit] + [stored $selfsigned]}]
expect stored $stored $delivered
set memchans 0
if {[llength [info commands ::tcl::chan::memchan::implementation]]} {
    set memchans [llength [info class instances ::tcl::chan::memchan::implementation]]
}
puts "memcheck: sends $sends delivered $delivered channels [llength [chan names]]\
	memchans $memchans policycalls $policycalls callbacks $callbacks"
::ts::stopall
exit 0
