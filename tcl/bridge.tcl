# The Tcl side of the mime bridge: the only place where the smtp package touches tcllib's
# mime package, and only through mime's public commands. The Rust side (src/bridge.rs)
# calls these procs; each returns plain values (strings, lists, bytes) so no mime detail
# leaks into the Rust code. This file is compiled into the library and evaluated by
# Smtp_Init in each interpreter that loads the package.

namespace eval ::smtp::bridge {}

# Loads tcllib's mime, which ::smtp::sendmessage's tokens come from; the package loads
# without it, for ::smtp::mail. Fails with SMTP LOAD MIME when mime cannot be had.
proc ::smtp::bridge::NeedMime {} {
    if {[catch {package require mime 1.5.4} err]} {
        return -code error -errorcode {SMTP LOAD MIME} \
            "::smtp::sendmessage needs tcllib's mime package, version 1.5.4 or later: $err"
    }
}

# Returns a two-element list: the name of a new temporary file holding the token's
# message as mime renders it (with the line ends mime writes), and the header fields of
# the token and its parts as a flat name/value list (so the caller can refuse values
# that would inject header lines, and tell the fields on the wire that nobody set). The caller opens and deletes the file. Rendering into
# a file keeps memory flat whatever the message's size: mime copies -file parts a block
# at a time. Fails with `invalid mime token "X"` when `token` does not name a live token.
proc ::smtp::bridge::message {token} {
    if {[catch {::mime::getproperty $token content}]} {
        return -code error -errorcode [list SMTP MIME TOKEN] \
            "invalid mime token \"$token\""
    }
    # A token whose parts were finalized, or a variable that only looks like a token,
    # fails inside mime with a bare Tcl error: report it as what it is.
    if {[catch {Fields $token} fields]} {
        return -code error -errorcode [list SMTP MIME TOKEN] \
            "invalid mime token \"$token\": $fields"
    }
    # mime::buildmessage renders into a channel translating LF to CRLF, which turns a
    # CRLF already inside an 8bit or binary body into CR CR LF. Rendering with LF kept as
    # it is leaves every line end of the message as mime wrote it; the DATA encoder then
    # turns each one (CRLF, LF or CR) into exactly one CRLF. The encoding is the same as
    # mime's own (the system encoding); the spool takes 8bit and binary parts back to
    # the bytes tcllib would send (src/spool/low_bytes.rs).
    set chan [file tempfile path smtp]
    chan configure $chan -translation lf
    if {[catch {::mime::copymessage $token $chan; close $chan} message]} {
        catch {close $chan}
        file delete $path
        return -code error -errorcode [list SMTP MIME BUILD] \
            "cannot render mime token \"$token\": $message"
    }
    list $path $fields
}

# The header fields of a token and of all its parts, as a flat name/value list: what
# mime renders into their header blocks (Content-Type with its parameters included),
# apart from the Content-Transfer-Encoding it adds itself. (Not [mime::getheader $token]
# whole: it works out the transfer encoding, which means scanning a part's content.)
proc ::smtp::bridge::Fields {token} {
    set fields {}
    foreach name [list {*}[::mime::getheader $token -names] MIME-Version Content-Type] {
        foreach value [::mime::getheader $token $name] {
            lappend fields $name $value
        }
    }
    # A leaf part has no "parts" property: getproperty raises an error for it.
    if {![catch {::mime::getproperty $token parts} parts]} {
        foreach part $parts {
            lappend fields {*}[Fields $part]
        }
    }
    return $fields
}

# Parses an address list with mime's RFC 822 parser. Returns a flat list of
# address/error pairs, one per mailbox (groups expanded, comments and routes dropped).
proc ::smtp::bridge::parseaddress {text} {
    set result {}
    foreach parsed [::mime::parseaddress $text] {
        lappend result [dict get $parsed address] [dict get $parsed error]
    }
    return $result
}

# What a message needs from its surroundings: the host name (EHLO default, unqualified
# addresses, Message-ID), the user name (default originator) and a Date value in mime's
# format. (mime's uniqueID is unique per interpreter only: interpreters of several
# threads of one process give the same IDs, so the Message-ID is made in Rust.)
proc ::smtp::bridge::context {} {
    NeedMime
    list [info hostname] $::tcl_platform(user) [::mime::parsedatetime -now proper]
}
