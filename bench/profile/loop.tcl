# loop.tcl -- N sends of one kind, for bench/profile.sh (perf record and perf stat).
#
#   tclsh8.6 bench/profile/loop.tcl KIND N PORT ?CONTROL-FIFO?
#
# KIND is "mail" (smtp::mail of the 1 KiB text of bench/send.tcl), "sendmessage" (the
# same text as a mime token made with -encoding 7bit, then smtp::sendmessage: one
# iteration of bench/send.tcl's 7bit rate loop) or "none" (the loop alone). After 20
# warm-up sends (which pay the once-per-process costs: trust store, notifier thread,
# mime's lazy parts), "enable" is written to CONTROL-FIFO (perf's --control), the N sends
# run, and "disable" is written. Prints the microseconds per send on stderr.

lassign $argv kind n port control
set auto_path [linsert $auto_path 0 $env(TCLSMTP_LIBDIR)]
package require smtp 1.6
package require mime

source [file join [file dirname [info script]] .. message.tcl]
set body [body]

proc one {kind port body} {
    switch -- $kind {
        mail {
            smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                -rcpt rcpt1@example.com -subject "benchmark message" -body $body
        }
        sendmessage {
            send_one $port $body rcpt1@example.com {-encoding 7bit}
        }
        none {}
        default {
            error "unknown kind \"$kind\": must be mail, sendmessage or none"
        }
    }
}

proc control {fifo command} {
    if {$fifo ne ""} {
        set f [open $fifo w]
        puts $f $command
        close $f
        after 100   ;# perf reads the fifo in its own time
    }
}

for {set i 0} {$i < 20} {incr i} {
    one $kind $port $body
}
control $control enable
set start [clock microseconds]
for {set i 0} {$i < $n} {incr i} {
    one $kind $port $body
}
set us [expr {([clock microseconds] - $start) / double($n)}]
control $control disable
puts stderr [format "%s: %.1f us per send (%d sends)" $kind $us $n]
