# parts.tcl -- the Tcl-side pieces of one send, each timed on its own, for
# bench/profile.sh:  tclsh8.6 bench/profile/parts.tcl PORT ?N?
#
# Each line: the fastest and the median of 9 batches of N calls (default 300), in
# microseconds per call. The smtp::mail lines that fail on purpose stop the command at a
# known point (a missing -from: after the options; a missing attachment file: after the
# Date, Message-ID, host name and most of the message are made, before any thread), so
# their difference to the whole send is the thread, the connection and the dialogue.

lassign $argv port n
if {$n eq ""} {
    set n 300
}
set auto_path [linsert $auto_path 0 $env(TCLSMTP_LIBDIR)]
package require smtp 1.6
package require mime

source [file join [file dirname [info script]] .. message.tcl]
set body [body]

proc measure {label script} {
    set batches {}
    for {set b 0} {$b < 9} {incr b} {
        lappend batches [lindex [uplevel 1 [list time $script $::n]] 0]
    }
    set batches [lsort -real $batches]
    puts [format "%9.1f %9.1f  %s" [lindex $batches 0] [lindex $batches 4] $label]
}

set mail [list smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
              -rcpt rcpt1@example.com -subject "benchmark message" -body $body]
for {set i 0} {$i < 20} {incr i} {
    {*}$mail
}
puts [format "%9s %9s  %s" fastest median "microseconds per call (9 batches of $n)"]
puts "smtp::mail"
measure "smtp::mail, whole send" {{*}$mail}
measure "  up to the attachment check (fails: no such file; no thread)" {
    catch {{*}$mail -attachments /nonexistent/file}
}
measure "  options only (fails: no -from)" {
    catch {smtp::mail -server 127.0.0.1 -port $port -rcpt rcpt1@example.com \
               -subject "benchmark message" -body $body}
}
measure "  (catch of an error, for the two lines above)" {catch {error x}}
measure "  info hostname" {info hostname}

puts "smtp::sendmessage of a token made with -encoding 7bit"
set tok [mime::initialize -canonical text/plain -encoding 7bit -string $body]
mime::setheader $tok Subject "benchmark message"
set send [list smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
              -originator sender@example.com -recipients rcpt1@example.com]
{*}$send
measure "make the token, send it, finalize it (bench/send.tcl's iteration)" {
    set t [mime::initialize -canonical text/plain -encoding 7bit -string $body]
    mime::setheader $t Subject "benchmark message"
    smtp::sendmessage $t -servers 127.0.0.1 -ports $port \
        -originator sender@example.com -recipients rcpt1@example.com
    mime::finalize $t
}
measure "  sendmessage alone (the token made once)" {{*}$send}
measure "  mime::initialize + setheader + finalize" {
    set t [mime::initialize -canonical text/plain -encoding 7bit -string $body]
    mime::setheader $t Subject "benchmark message"
    mime::finalize $t
}
measure "  ::smtp::bridge::context (host, user, Date)" {::smtp::bridge::context}
measure "    mime::parsedatetime -now proper (the Date)" {::mime::parsedatetime -now proper}
measure "  ::smtp::bridge::parseaddress, one address (called for -originator and -recipients)" {
    ::smtp::bridge::parseaddress sender@example.com
}
measure "  ::smtp::bridge::message (temporary file, copymessage, Fields) + file delete" {
    file delete [lindex [::smtp::bridge::message $tok] 0]
}
measure "    file tempfile + close + file delete" {
    close [file tempfile path smtp]
    file delete $path
}
measure "    mime::copymessage to /dev/null (open + close included)" {
    set c [open /dev/null w]
    ::mime::copymessage $tok $c
    close $c
}
measure "    ::smtp::bridge::Fields" {::smtp::bridge::Fields $tok}
mime::finalize $tok
