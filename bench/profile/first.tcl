# first.tcl -- what the first send of a process costs, for bench/profile.sh:
#
#   tclsh8.6 bench/profile/first.tcl PORT USETLS
#
# Loads the package, then times two smtp::mail sends of a short text with -usetls USETLS.
# With -usetls on (the default), the first send also builds the default TLS context, even
# when the server offers no STARTTLS. Prints "usetls U: first send F us, second S us".

lassign $argv port usetls
set auto_path [linsert $auto_path 0 $env(TCLSMTP_LIBDIR)]
package require smtp 1.6
set send [list smtp::mail -server 127.0.0.1 -port $port -usetls $usetls \
              -from sender@example.com -rcpt rcpt1@example.com -subject x -body hello]
set t0 [clock microseconds]
{*}$send
set t1 [clock microseconds]
{*}$send
set t2 [clock microseconds]
puts "usetls $usetls: first send [expr {$t1 - $t0}] us, second [expr {$t2 - $t1}] us"
