# submission.tcl -- sends a message the way a mail client does: to a submission port
# (587), upgraded to TLS with STARTTLS, authenticated with a user name and password.
#
#   SMTP_PASSWORD=secret tclsh8.6 submission.tcl ?-server host? ?-port n? ?-user name?
#                        ?-cafile file? ?-from address? ?-to addresses?
#
# The password comes from the environment variable SMTP_PASSWORD, not the command line
# (which other users can read with ps). -cafile names a file of CA certificates to
# trust besides the system's (a server with a private CA); without it, the server's
# certificate must verify against the system's store. Defaults are below.

package require mime
package require smtp

set opt [dict merge {
    -server localhost -port 587 -user me -cafile ""
    -from me@example.com -to you@example.net
} $argv]
if {![info exists env(SMTP_PASSWORD)]} {
    puts stderr "set SMTP_PASSWORD to the password of [dict get $opt -user]"
    exit 2
}

# Asked by the send on every TLS weakness: no STARTTLS, a certificate that does not
# verify, a password about to go in clear (code and diagnostic say which). "secure"
# refuses to go on without TLS; the default would go on in plaintext when the server
# offers no STARTTLS, as tcllib's smtp does.
proc require_tls {code diagnostic} {
    return secure
}

set token [mime::initialize -canonical text/plain -string "Sent over TLS, after AUTH.\n"]
mime::setheader $token Subject "A message from submission.tcl"

try {
    set refused [smtp::sendmessage $token \
            -servers [dict get $opt -server] -ports [dict get $opt -port] \
            -usetls 1 -tlspolicy require_tls \
            -tlsoptions [list -cafile [dict get $opt -cafile]] \
            -username [dict get $opt -user] -password $env(SMTP_PASSWORD) \
            -header [list From [dict get $opt -from]] \
            -header [list To [dict get $opt -to]]]
} trap SMTP {message} {
    # E.g. {SMTP TLS ...} for a certificate that does not verify, {SMTP AUTH FAILED 535}
    # for a wrong password.
    puts stderr "not sent: $message"
    exit 1
}
mime::finalize $token

if {[llength $refused]} {
    puts stderr "refused: $refused"
    exit 1
}
puts "sent to [dict get $opt -to] as [dict get $opt -user]"
