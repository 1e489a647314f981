# Sends one message with tclsmtp to the SMTP server on 127.0.0.1:<port>.
# Usage: tclsh8.6 scripts/demo.tcl port   (TCLSMTP_LIBDIR = the directory of the build)
set dir $env(TCLSMTP_LIBDIR)
source [file join $dir pkgIndex.tcl]   ;# this build, not an installed copy
package require mime
puts "smtp [package require smtp] loaded from $dir"

set tok [mime::initialize -canonical text/plain -string "Hello from tclsmtp.\n.A line that starts with a dot.\n"]
mime::setheader $tok Subject "tclsmtp demo"
set refused [smtp::sendmessage $tok -servers 127.0.0.1 -ports [lindex $argv 0] \
                 -originator alice@example.org \
                 -recipients "Bob <bob@example.net>, carol@example.net" \
                 -header {Bcc dave@example.net} -debug 1]
mime::finalize $tok
puts "sendmessage returned \"$refused\" (no recipient refused)"
