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
#   tclsh8.6 bench/send.tcl ours sessionrate PORT SECONDS RECIPIENTS ?OPTION VALUE ...?
#       The mailrate loop over one session: smtp::open -servers 127.0.0.1 -ports PORT
#       once, then one synchronous `smtp::mail -session` call per message (-from -rcpt
#       -subject -body), smtp::close at the end (not timed). An OPTION -atleastone goes
#       to each smtp::mail, any other (e.g. -maxmessages 0) to smtp::open.
#       Prints "MESSAGES ELAPSED_SECONDS".
#   tclsh8.6 bench/send.tcl ours sessionqueue PORT SECONDS RECIPIENTS CONNECTIONS WINDOW ?OPTION VALUE ...?
#       The same messages (and OPTIONs) queued on a session opened with -connections
#       CONNECTIONS, each `smtp::mail -session ... -command`: WINDOW sends are kept
#       queued or running, each callback queueing the next until SECONDS have passed;
#       the time ends at the last callback. A first batch of WINDOW sends, waited for, warms up (and opens the
#       pool's connections). Prints "MESSAGES ELAPSED_SECONDS".
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

# recipients n: the n recipients of a message, a Tcl list.
proc recipients {n} {
    set list {}
    for {set i 1} {$i <= $n} {incr i} {
        lappend list rcpt$i@example.com
    }
    return $list
}

proc rate {port seconds nrecipients {encoding {}}} {
    if {$encoding ne ""} {
        set encoding [list -encoding $encoding]
    }
    # The warm-up loads everything the first send needs (mime's lazy parts, the library).
    set send [list send_one $port [body] [join [recipients $nrecipients] ", "] $encoding]
    puts [timed_loop $send $seconds]
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
    set send [list smtp::mail -server 127.0.0.1 -port $port -from sender@example.com \
                  -rcpt [recipients $nrecipients] -subject "benchmark message" -body [body]]
    puts [timed_loop $send $seconds]
}

# timed_loop send seconds: runs the command send 3 times to warm up, then as often as it
# can in seconds; returns "MESSAGES ELAPSED_SECONDS".
proc timed_loop {send seconds} {
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
    return "$count [expr {([clock microseconds] - $start) / 1e6}]"
}

# session_open port nrecipients options ?option value ...?: opens the session of the
# session rows with the options and the given ones (options's -atleastone excepted), and
# returns the smtp::mail call of its messages (without -command; with options's
# -atleastone, if any), whose third word is the session's handle.
proc session_open {port nrecipients options args} {
    set open {}
    set mail {}
    foreach {option value} $options {
        if {$option eq "-atleastone"} {
            lappend mail $option $value
        } else {
            lappend open $option $value
        }
    }
    set session [smtp::open -servers 127.0.0.1 -ports $port {*}$args {*}$open]
    list smtp::mail -session $session -from sender@example.com \
        -rcpt [recipients $nrecipients] -subject "benchmark message" -body [body] {*}$mail
}

proc sessionrate {port seconds nrecipients args} {
    set send [session_open $port $nrecipients $args]
    set result [timed_loop $send $seconds]
    smtp::close [lindex $send 2]
    puts $result
}

# The queued sends of sessionqueue: queue::send queues one; queue::done is the callback.
namespace eval queue {
    variable send {}       ;# the smtp::mail command, without -command
    variable running 0     ;# sends queued or running
    variable count 0       ;# sends done, with status ok
    variable stop 0        ;# clock microseconds after which no send is queued
    variable errors {}     ;# the error messages of failed sends
    variable finished 0    ;# set when running drops to 0 (vwait)

    proc send {} {
        variable send
        variable running
        incr running
        {*}$send -command [namespace code done]
    }

    proc done {handle result} {
        variable running
        variable count
        variable stop
        variable errors
        variable finished
        incr running -1
        if {[dict get $result status] eq "ok"} {
            incr count
        } else {
            lappend errors "$handle: [dict get $result error] ([dict get $result errorcode])"
        }
        if {[clock microseconds] < $stop && ![llength $errors]} {
            send
        } elseif {$running == 0} {
            set finished 1
        }
    }

    # run window: keeps window sends queued until stop; returns when all have ended.
    proc run {window} {
        variable running
        variable finished
        variable errors
        set finished 0
        for {set i 0} {$i < $window} {incr i} {
            send
        }
        if {$running > 0} {
            vwait [namespace current]::finished
        }
        if {[llength $errors]} {
            error "[llength $errors] queued sends failed, the first: [lindex $errors 0]"
        }
    }
}

proc sessionqueue {port seconds nrecipients connections window args} {
    set queue::send [session_open $port $nrecipients $args -connections $connections]
    set session [lindex $queue::send 2]
    # Warm-up: one batch, queued at once (stop is 0: no callback queues another).
    queue::run $window
    set queue::count 0
    set start [clock microseconds]
    set queue::stop [expr {$start + int($seconds * 1e6)}]
    queue::run $window
    set elapsed [expr {([clock microseconds] - $start) / 1e6}]
    smtp::close $session
    puts "$queue::count $elapsed"
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
