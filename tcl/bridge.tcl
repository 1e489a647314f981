# The Tcl side of the mime bridge: the only place where the smtp package touches tcllib's
# mime package, and only through mime's public commands. The Rust side (src/bridge.rs)
# calls these procs; each returns plain values (strings, lists, bytes) so no mime detail
# leaks into the Rust code. This file is compiled into the library and evaluated by
# Smtp_Init in each interpreter that loads the package.

namespace eval ::smtp::bridge {}

# Returns a two-element list: the token's message exactly as mime renders it for
# transmission (binary, CRLF line ends), and the token's own header fields as a flat
# name/value list (so the caller can refuse values that would inject header lines).
# Fails with `invalid mime token "X"` when `token` does not name a live token.
proc ::smtp::bridge::message {token} {
    if {[catch {::mime::getproperty $token content}]} {
        return -code error -errorcode [list SMTP MIME TOKEN] \
            "invalid mime token \"$token\""
    }
    set fields {}
    foreach name [::mime::getheader $token -names] {
        foreach value [::mime::getheader $token $name] {
            lappend fields $name $value
        }
    }
    if {[catch {::mime::buildmessage $token} message]} {
        return -code error -errorcode [list SMTP MIME BUILD] \
            "cannot render mime token \"$token\": $message"
    }
    list $message $fields
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
# addresses), the user name (default originator), a Date value and a Message-ID value,
# in mime's formats.
proc ::smtp::bridge::context {} {
    list [info hostname] $::tcl_platform(user) \
        [::mime::parsedatetime -now proper] [::mime::uniqueID]
}
