# send.tcl -- the Tcl side of the benchmark (bench/run.sh runs it; not meant to be run alone).
#
#   tclsh8.6 bench/send.tcl IMPL rate PORT SECONDS RECIPIENTS ?ENCODING?
#       Sends 1 KiB text messages to 127.0.0.1:PORT, one connection each, for at least
#       SECONDS after a short warm-up, every message to RECIPIENTS recipients. Each
#       iteration is what a script does: create a mime token, send it, finalize it.
#       With ENCODING (e.g. 7bit) the token is made with -encoding ENCODING, which spares
#       mime::copymessage its per-character scan for choosing one.
#       Prints "MESSAGES ELAPSED_SECONDS".
#   tclsh8.6 bench/send.tcl IMPL big PORT FILE ACTION
#       Builds a multipart message with FILE as an application/octet-stream part (mime
#       reads the file only when the message is rendered), then ACTION: "send" sends it
#       to one recipient, "copy" renders it with mime::copymessage to /dev/null (the
#       reference for rendering alone), "none" does nothing (the memory baseline).
#       Prints the seconds ACTION took.
#   tclsh8.6 bench/send.tcl ours mailrate PORT SECONDS RECIPIENTS
#       The rate loop with ::smtp::mail instead of a mime token: each iteration is one
#       call (-server -port -from -rcpt -subject -body, the same 1 KiB body).
#   tclsh8.6 bench/send.tcl ours attach PORT FILE ACTION SENDS
#       ACTION "mail": one warm-up send, then SENDS sends of ::smtp::mail with -body and
#       -attachments [list FILE] (read and encoded by the call itself); prints the mean
#       seconds per send. ACTION "none" only loads the package (the memory baseline).
#   tclsh8.6 bench/send.tcl IMPL text PORT FILE ACTION
#       Reads FILE as UTF-8 text, then ACTION: "mail" sends it with ::smtp::mail -body
#       (ours only), "qp" makes it a quoted-printable mime token (mime::initialize
#       -canonical "text/plain; charset=utf-8" -encoding quoted-printable -string of its
#       UTF-8 bytes) and sends that with smtp::sendmessage, "none" does nothing (the
#       memory baseline: the text in memory, the package loaded). A short send of the
#       same kind goes first, untimed. Prints the seconds ACTION took (for "qp", making
#       the token included).
#
# IMPL is "ours" (the build in $env(TCLSMTP_LIBDIR)) or "tcllib" (tcllib's smtp 1.5.1).
# Each implementation runs in its own tclsh: both register the package name "smtp".

lassign $argv impl mode
set argv [lrange $argv 2 end]

switch -- $impl {
    ours {
        # Ahead of tcllib's directory, so the scan that registers smtp 1.5.1 also
        # registers this build; "1.6" then picks it.
        set auto_path [linsert $auto_path 0 $env(TCLSMTP_LIBDIR)]
        package require smtp 1.6
        set loaded [package ifneeded smtp [package present smtp]]
        if {![string match *libtclsmtp* $loaded]} {
            error "smtp [package present smtp] is not the Rust build: $loaded"
        }
    }
    tcllib {
        package require -exact smtp 1.5.1
    }
    default {
        error "unknown implementation \"$impl\": must be ours or tcllib"
    }
}
package require mime

source [file join [file dirname [info script]] message.tcl]

proc recipients {n} {
    set list {}
    for {set i 1} {$i <= $n} {incr i} {
        lappend list rcpt$i@example.com
    }
    join $list ", "
}

proc rate {port seconds nrecipients {encoding {}}} {
    if {$encoding ne ""} {
        set encoding [list -encoding $encoding]
    }
    set body [body]
    set recipients [recipients $nrecipients]
    # Warm-up: loads everything the first send needs (mime's lazy parts, the library).
    for {set i 0} {$i < 3} {incr i} {
        send_one $port $body $recipients $encoding
    }
    set count 0
    set start [clock microseconds]
    set stop [expr {$start + int($seconds * 1e6)}]
    while {[clock microseconds] < $stop} {
        send_one $port $body $recipients $encoding
        incr count
    }
    set elapsed [expr {([clock microseconds] - $start) / 1e6}]
    puts "$count $elapsed"
}

proc big {port file action} {
    set text [mime::initialize -canonical text/plain -string "The file is attached.\n"]
    set attachment [mime::initialize -canonical application/octet-stream -file $file]
    set tok [mime::initialize -canonical multipart/mixed -parts [list $text $attachment]]
    mime::setheader $tok Subject "benchmark attachment"
    set start [clock microseconds]
    switch -- $action {
        send {
            smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
                -originator sender@example.com -recipients rcpt@example.com
        }
        copy {
            set null [open /dev/null w]
            mime::copymessage $tok $null
            close $null
        }
        none {}
        default {
            error "unknown action \"$action\": must be send, copy or none"
        }
    }
    puts [expr {([clock microseconds] - $start) / 1e6}]
    mime::finalize $tok -subordinates all
}

proc mailrate {port seconds nrecipients} {
    set body [body]
    set recipients {}
    for {set i 1} {$i <= $nrecipients} {incr i} {
        lappend recipients rcpt$i@example.com
    }
    set send [list smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                  -rcpt $recipients -subject "benchmark message" -body $body]
    for {set i 0} {$i < 3} {incr i} {
        {*}$send
    }
    set count 0
    set start [clock microseconds]
    set stop [expr {$start + int($seconds * 1e6)}]
    while {[clock microseconds] < $stop} {
        {*}$send
        incr count
    }
    set elapsed [expr {([clock microseconds] - $start) / 1e6}]
    puts "$count $elapsed"
}

proc attach {port file action sends} {
    switch -- $action {
        mail {}
        none {
            puts 0
            return
        }
        default {
            error "unknown action \"$action\": must be mail or none"
        }
    }
    set send [list smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                  -rcpt rcpt@example.com -subject "benchmark attachment" \
                  -body "The file is attached.\n" -attachments [list $file]]
    {*}$send
    set start [clock microseconds]
    for {set i 0} {$i < $sends} {incr i} {
        {*}$send
    }
    puts [expr {([clock microseconds] - $start) / 1e6 / $sends}]
}

proc text {port file action} {
    set f [open $file]
    fconfigure $f -encoding utf-8
    set text [read $f]
    close $f
    # A short send first, the same way: what the first send of a process does once
    # (loading the trust store, starting Tcl's notifier, mime's lazy parts) is not timed.
    switch -- $action {
        mail {
            smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                -rcpt rcpt@example.com -subject "warm-up" -body "Grüße\n"
        }
        qp {
            set tok [mime::initialize -canonical "text/plain; charset=utf-8" \
                         -encoding quoted-printable -string [encoding convertto utf-8 "Grüße\n"]]
            smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
                -originator sender@example.com -recipients rcpt@example.com
            mime::finalize $tok
        }
    }
    set start [clock microseconds]
    switch -- $action {
        mail {
            smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                -rcpt rcpt@example.com -subject "benchmark text" -body $text
        }
        qp {
            set tok [mime::initialize -canonical "text/plain; charset=utf-8" \
                         -encoding quoted-printable -string [encoding convertto utf-8 $text]]
            mime::setheader $tok Subject "benchmark text"
            smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
                -originator sender@example.com -recipients rcpt@example.com
            mime::finalize $tok
        }
        none {}
        default {
            error "unknown action \"$action\": must be mail, qp or none"
        }
    }
    puts [expr {([clock microseconds] - $start) / 1e6}]
}

$mode {*}$argv
