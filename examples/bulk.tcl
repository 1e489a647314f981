# bulk.tcl -- sends one message to each address of a list over a session: one
# connection (TLS and AUTH once) for all of them, the messages queued in the background
# and pipelined one after the other when the server allows.
#
#   tclsh8.6 bulk.tcl ?-server host? ?-port n? ?-from address? ?-to addresses?
#                     ?-connections n? ?-ratelimit n? ?-debug 1?
#
# -to is a Tcl list of addresses; each gets a message of its own. -connections and
# -ratelimit are those of smtp::open. Prints one line per address, then a summary.

package require smtp

set opt [dict merge [list \
    -server localhost -port 25 -from "Newsletter <news@example.com>" \
    -to {ann@example.net bob@example.net} -connections 1 -ratelimit 0 -debug 0 \
] $argv]

try {
    set session [smtp::open -server [dict get $opt -server] -port [dict get $opt -port] \
            -connections [dict get $opt -connections] -ratelimit [dict get $opt -ratelimit] \
            -debug [dict get $opt -debug]]
} trap SMTP {message} {
    puts stderr "cannot open a session: $message"
    exit 1
}

# Each send's callback: one line per address, counted down to the end.
set pending [llength [dict get $opt -to]]
set failed 0
proc done {address handle result} {
    if {[dict get $result status] eq "ok" && [llength [dict get $result refused]] == 0} {
        puts "sent to $address"
    } elseif {[dict get $result status] eq "ok"} {
        puts "refused $address: [lrange [lindex [dict get $result refused] 0] 1 end]"
        incr ::failed
    } else {
        puts "not sent to $address: [dict get $result error]"
        incr ::failed
    }
    incr ::pending -1
}

foreach address [dict get $opt -to] {
    smtp::mail -session $session -from [dict get $opt -from] -to [list $address] \
        -subject "Your monthly report" -body "Hello $address,\n\nyour report is ready.\n" \
        -command [list done $address]
}
# Waits for every queued send (their callbacks run meanwhile), then says QUIT.
smtp::close $session
puts "[expr {[llength [dict get $opt -to]] - $failed}] sent, $failed failed"
exit [expr {$failed > 0}]
