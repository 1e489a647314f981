# rss.tcl --
#
#	Resident memory across 10,000 sends in one interpreter (issue 6 item 4): prints
#	VmRSS (from /proc/self/status) after 1,000, 5,000 and 10,000 sends and exits 1
#	unless it stays flat: RSS at 10,000 no more than 2 MiB above RSS at 1,000 (the
#	first 1,000 sends warm up Tcl's and the allocator's caches).
#
#	    TCLSMTP_LIBDIR=target/release tclsh8.6 scripts/rss.tcl ?-sends N? ?-tlsevery K?
#	    scripts/memcheck.sh rss ?-sends N? ?-tlsevery K?      (builds target/debug first)
#
#	Servers (aiosmtpd, started here): tests/servers/counter.py for plain sends, and
#	capture.py with STARTTLS and AUTH for every K-th send (default 10): STARTTLS with
#	the certificate verified against the test CA (and the system store, loaded for
#	each TLS send), then AUTH PLAIN. Every send must be reported delivered, and the
#	servers' counts must match (exit 1 otherwise). About 60 s with a debug build.

set sends 10000
set tlsevery 10
foreach {opt val} $argv {
    switch -- $opt {
	-sends {set sends $val}
	-tlsevery {set tlsevery $val}
	default {
	    puts stderr "usage: tclsh8.6 scripts/rss.tcl ?-sends N? ?-tlsevery K?"
	    exit 2
	}
    }
}
# tcltest (loaded by support.tcl) must not read our arguments as its own.
set argv {}
source [file join [file dirname [file dirname [file normalize [info script]]]] tests support.tcl]
package require mime
package require smtp


proc rss_kib {} {
    set fh [open /proc/self/status]
    set status [read $fh]
    close $fh
    regexp -line {^VmRSS:\s+(\d+) kB} $status -> kib
    return $kib
}

set counter [::ts::counter]
set tls [::ts::capture -starttls server -auth alice:s3cret]
set ca [dict get [::ts::certs] ca]

set tok [mime::initialize -canonical text/plain -string "RSS bench body\n"]
set checkpoints [dict create 1000 {} [expr {$sends / 2}] {} $sends {}]
set tlssent 0
set t0 [clock milliseconds]
for {set i 1} {$i <= $sends} {incr i} {
    if {$tlsevery > 0 && $i % $tlsevery == 0} {
	set r [smtp::sendmessage $tok -servers 127.0.0.1 -ports [::ts::port $tls] \
		-tlsoptions [list -cafile $ca] -username alice -password s3cret \
		-originator a@x.test -recipients b@y.test -header [list Subject rss-$i]]
	incr tlssent
    } else {
	set r [smtp::sendmessage $tok -servers 127.0.0.1 -ports [::ts::port $counter] \
		-usetls 0 -originator a@x.test -recipients b@y.test \
		-header [list Subject rss-$i]]
    }
    if {$r ne ""} {
	puts stderr "send $i: refused: $r"
	exit 1
    }
    if {[dict exists $checkpoints $i]} {
	dict set checkpoints $i [rss_kib]
	puts [format "after %6d sends: VmRSS %6d KiB  (%d ms)" $i [dict get $checkpoints $i] \
		[expr {[clock milliseconds] - $t0}]]
	flush stdout
    }
}
mime::finalize $tok

set plain [llength [::ts::counted $counter]]
set stored [llength [::ts::messages $tls 0]]
::ts::stopall
if {$plain + $stored != $sends || $stored != $tlssent} {
    puts stderr "servers stored $plain plain + $stored TLS messages, expected $sends ($tlssent TLS)"
    exit 1
}
set growth [expr {[dict get $checkpoints $sends] - [dict get $checkpoints 1000]}]
puts "growth from 1,000 to $sends sends: $growth KiB ($plain plain + $stored STARTTLS+AUTH sends stored)"
if {$growth > 2048} {
    puts "NOT FLAT"
    exit 1
}
puts "flat"
