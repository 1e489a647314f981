# message.tcl -- the benchmark's 1 KiB message and one sendmessage of it, sourced by
# bench/send.tcl and the profile scripts in bench/profile/ so that all measure the same
# thing. Needs the smtp and mime packages loaded.

# A 1 KiB body of 72-character lines, the same for every message.
proc body {} {
    set line [string repeat abcdefghi 8]
    set body ""
    while {[string length $body] < 1024} {
        append body $line \n
    }
    return "[string range $body 0 1022]\n"
}

# One sendmessage of body as a mime token (made with the mime options in encoding,
# e.g. {-encoding 7bit}) to 127.0.0.1:port.
proc send_one {port body recipients encoding} {
    set tok [mime::initialize -canonical text/plain {*}$encoding -string $body]
    mime::setheader $tok Subject "benchmark message"
    smtp::sendmessage $tok -servers 127.0.0.1 -ports $port \
        -originator sender@example.com -recipients $recipients
    mime::finalize $tok
}
