# mail.tcl -- sends an HTML message with an attachment, built by the smtp package
# itself: smtp::mail needs no mime token (and no tcllib).
#
#   tclsh8.6 mail.tcl ?-server host? ?-port n? ?-from address? ?-to addresses?
#                     ?-bcc addresses? ?-attach path? ?-debug 1?
#
# -to and -bcc are Tcl lists of addresses ("Name <addr>" allowed); -attach is a file to
# attach (default: this script). -debug 1 prints the SMTP dialogue on stderr.

package require smtp

set opt [dict merge [list \
    -server localhost -port 25 -from "Me <me@example.com>" -to you@example.net \
    -bcc {} -attach [info script] -debug 0 \
] $argv]

# The recipient list alone decides who gets a copy: -to and -bcc both add recipients,
# and only -to is written in the message (there is never a Bcc field).
try {
    set refused [smtp::mail -server [dict get $opt -server] -port [dict get $opt -port] \
            -from [dict get $opt -from] -to [dict get $opt -to] -bcc [dict get $opt -bcc] \
            -subject "Report – März" \
            -body "The report is attached.\n" \
            -html "<p>The report is <b>attached</b>.</p>\n" \
            -attachments [list [dict get $opt -attach]] \
            -debug [dict get $opt -debug]]
} trap SMTP {message} {
    puts stderr "not sent: $message"
    exit 1
}
foreach r $refused {
    lassign $r address code text
    puts stderr "refused $address: $code $text"
}
if {[llength $refused]} {
    exit 1
}
puts "sent to [join [concat [dict get $opt -to] [dict get $opt -bcc]] {, }]"
