# send.tcl -- sends one plain-text message with the smtp package.
#
#   tclsh8.6 send.tcl ?-server host? ?-port n? ?-from address? ?-to addresses? ?-debug 1?
#
# Every option has a default (below); -to is a comma-separated list of addresses.
# -debug 1 prints the SMTP dialogue on stderr.

package require mime
package require smtp

# The settings: these defaults, replaced by the "-name value" pairs given on the
# command line.
set opt [dict merge {
    -server localhost -port 25 -from me@example.com -to you@example.net -debug 0
} $argv]

# The message is a mime token (tcllib's mime package): here one text/plain part.
set token [mime::initialize -canonical text/plain -string "Hello from Tcl.\n"]
mime::setheader $token Subject "A message from send.tcl"

# From and To given as headers also make the envelope (MAIL FROM and RCPT TO).
# A failure is an error whose -errorcode starts with SMTP; its message names the
# server, the step and what the server said.
try {
    set refused [smtp::sendmessage $token \
            -servers [dict get $opt -server] -ports [dict get $opt -port] \
            -header [list From [dict get $opt -from]] \
            -header [list To [dict get $opt -to]] \
            -debug [dict get $opt -debug]]
} trap SMTP {message} {
    puts stderr "not sent: $message"
    exit 1
}
# The token is only read by the send: free it when done with it.
mime::finalize $token

# The result lists the recipients the server refused, each {address code text}. By
# default (-atleastone 0) one refusal means the message went to nobody.
if {[llength $refused]} {
    foreach r $refused {
        lassign $r address code text
        puts stderr "refused $address: $code $text"
    }
    exit 1
}
puts "sent to [dict get $opt -to]"
