# async.tcl -- sends a message in the background while the event loop keeps running,
# as a server or any event-driven program does (no Tk needed).
#
#   tclsh8.6 async.tcl ?-server host? ?-port n? ?-from address? ?-to addresses?
#                      ?-limit seconds?
#
# The send is cancelled if it has not ended after -limit seconds (default 60).
# Defaults are below.

package require mime
package require smtp

set opt [dict merge {
    -server localhost -port 25 -from me@example.com -to you@example.net -limit 60
} $argv]

# Called from the event loop when the send has ended, with the send's handle and a
# dict: status (ok or error), refused (as sendmessage returns it), and on error the
# message and -errorcode of the failure.
proc done {handle result} {
    if {[dict get $result status] eq "error"} {
        puts stderr "not sent: [dict get $result error]"
        set ::status 1
    } elseif {[llength [dict get $result refused]]} {
        puts stderr "refused: [dict get $result refused]"
        set ::status 1
    } else {
        puts "sent to [dict get $::opt -to]"
        set ::status 0
    }
}

# Something else for the event loop to do meanwhile: a timer every 50 ms.
set ticks 0
proc tick {} {
    incr ::ticks
    after 50 tick
}
after 50 tick

set token [mime::initialize -canonical text/plain -string "Sent in the background.\n"]
mime::setheader $token Subject "A message from async.tcl"
# With -command, sendmessage returns a handle at once.
set handle [smtp::sendmessage $token \
        -servers [dict get $opt -server] -ports [dict get $opt -port] \
        -header [list From [dict get $opt -from]] \
        -header [list To [dict get $opt -to]] \
        -command done]
# The message was taken from the token already: it can go now.
mime::finalize $token

# A send that takes too long is cancelled; done then reports the cancellation.
after [expr {[dict get $opt -limit] * 1000}] [list smtp::cancel $handle]

# Run the event loop until done has set the status.
vwait status
puts "the event loop ran $ticks timer events meanwhile"
exit $status
