//! Errors of the command layer: bad options and what the lower layers refused before
//! anything was sent. Each knows its `-errorcode` words after `SMTP`; [`TclError`] is
//! made from it in one place.

use std::fmt;

use crate::tcl::TclError;
use crate::{client, compose, message, transport};

/// Why a command cannot do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The command's words do not fit its usage (Tcl's own `TCL WRONGARGS`).
    WrongArgs(&'static str),
    /// An odd number of option words (tcllib's wording).
    NoValue(String),
    /// An option name the command does not know (tcllib's wording).
    UnknownOption(String),
    /// An option the command needs, and why.
    MissingOption {
        option: &'static str,
        why: &'static str,
    },
    /// Not one of tcllib's boolean words.
    Boolean(String),
    /// A value an option cannot take.
    Value {
        option: String,
        message: String,
    },
    /// Two options that cannot go together.
    Conflict {
        option: String,
        message: String,
    },
    /// `-header` that is not a key and a value.
    HeaderShape(String),
    /// `-header` naming a field the token's rendering writes (tcllib's wording).
    TcllibReservedHeader,
    /// A Bcc field in `-headers`.
    BccHeader,
    /// A field given twice (as an option and in `-headers`, or twice in `-headers`).
    DuplicateHeader(String),
    /// A field `smtp::mail` writes itself, given in `-headers`.
    ReservedHeader {
        name: String,
        instead: &'static str,
    },
    /// CR, LF or NUL in an option's value.
    LineBreak {
        option: String,
        value: String,
    },
    /// CR, LF or NUL in the value of `-header {key value}`.
    HeaderLineBreak {
        key: String,
        value: String,
    },
    /// The rendered message cannot be read.
    Render(String),
    /// A NUL byte in a part's unencoded body.
    Nul(String),
    /// No send has this handle (any more).
    Handle {
        handle: String,
        ended: bool,
    },
    /// No open session has this handle.
    Session(String),
    /// A wait for send `handle` that could never end: its `command` (`-tlspolicy`,
    /// `-oauthcommand`) is running below the wait.
    Deadlock {
        handle: String,
        command: &'static str,
    },
    /// A call on a session that could never end: its send whose `command` is running
    /// below the call holds the connection the call needs.
    SessionDeadlock {
        call: &'static str,
        session: String,
        send: String,
        command: &'static str,
    },
    /// `::smtp::cancel` (or the interpreter's end) stopped the send.
    Cancelled {
        end_of_data_sent: bool,
    },
    /// Something that should not happen: what failed, and why.
    Internal {
        what: &'static str,
        why: String,
    },
    /// TLS settings that cannot be used; the names of those `tls::init` supplied.
    Tls {
        from_tls_init: Vec<String>,
        error: transport::ConfigError,
    },
    Message(message::Error),
    Compose(compose::Error),
    Send(client::Error),
}

/// Added once to the error when a certificate did not verify. tcllib verified nothing, so
/// a script that reached a server with a private CA's certificate first fails here.
const TRUST_HINT: &str = "; to trust a private CA, give -tlsoptions {-cafile ca.pem} or call tls::init -cafile ca.pem";

impl Error {
    /// The `-errorcode` list.
    pub fn errorcode(&self) -> Vec<String> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let smtp = |rest: Vec<String>| [vec!["SMTP".to_string()], rest].concat();
        match self {
            Error::WrongArgs(_) => words(&["TCL", "WRONGARGS"]),
            Error::NoValue(_) => words(&["SMTP", "OPTION", "NOVALUE"]),
            Error::UnknownOption(option) => words(&["SMTP", "OPTION", "UNKNOWN", option]),
            Error::MissingOption { option, .. } => words(&["SMTP", "OPTION", "MISSING", option]),
            Error::Boolean(_) => words(&["SMTP", "OPTION", "BOOLEAN"]),
            Error::Value { option, .. } => words(&["SMTP", "OPTION", "VALUE", option]),
            Error::Conflict { option, .. } => words(&["SMTP", "OPTION", "CONFLICT", option]),
            Error::HeaderShape(_) => words(&["SMTP", "OPTION", "HEADER"]),
            Error::TcllibReservedHeader | Error::ReservedHeader { .. } => {
                words(&["SMTP", "OPTION", "HEADER", "RESERVED"])
            }
            Error::BccHeader => words(&["SMTP", "OPTION", "HEADER", "BCC"]),
            Error::DuplicateHeader(_) => words(&["SMTP", "OPTION", "HEADER", "DUPLICATE"]),
            Error::LineBreak { option, .. } => words(&["SMTP", "INJECTION", option]),
            Error::HeaderLineBreak { .. } => words(&["SMTP", "INJECTION", "-header"]),
            Error::Render(_) => words(&["SMTP", "MIME", "BUILD"]),
            Error::Nul(_) => words(&["SMTP", "MIME", "NUL"]),
            Error::Handle { .. } | Error::Session(_) => words(&["SMTP", "HANDLE", "UNKNOWN"]),
            Error::Deadlock { .. } | Error::SessionDeadlock { .. } => words(&["SMTP", "WAIT", "DEADLOCK"]),
            Error::Cancelled { .. } => words(&["SMTP", "CANCELLED"]),
            Error::Internal { what, .. } => words(&["SMTP", "INTERNAL", what]),
            Error::Tls { .. } => words(&["SMTP", "OPTION", "VALUE", "-tlsoptions"]),
            Error::Message(e) => smtp(words(e.code_words())),
            Error::Compose(e) => smtp(words(e.code_words())),
            Error::Send(e) => smtp(e.code_words()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongArgs(usage) => write!(f, "wrong # args: should be \"{usage}\""),
            Error::NoValue(list) => write!(f, "Each option must have a value!  Invalid option list: {list}"),
            Error::UnknownOption(option) => write!(f, "unknown option {option}"),
            Error::MissingOption { option, why } => write!(f, "{option} is needed: {why}"),
            Error::Boolean(text) => write!(f, "unknown boolean value: {text}"),
            Error::Value { message, .. } | Error::Conflict { message, .. } => f.write_str(message),
            Error::HeaderShape(value) => write!(f, "-header expects a key and a value, not {value}"),
            Error::TcllibReservedHeader => f.write_str(
                "Content-Type, Content-Transfer-Encoding, Content-MD5, and MIME-Version cannot be user-specified.",
            ),
            Error::BccHeader => f.write_str(
                "-headers has a Bcc field, which every recipient would see: blind copies are recipients that \
                 appear in no header, so give them with -bcc or -rcpt",
            ),
            Error::DuplicateHeader(message) => f.write_str(message),
            Error::ReservedHeader { name, instead } => {
                write!(f, "-headers cannot set {name}: smtp::mail writes it ({instead})")
            }
            Error::LineBreak { option, value } => {
                write!(f, "{option} contains CR, LF or NUL, which could inject commands or headers: {value:?}")
            }
            Error::HeaderLineBreak { key, value } => {
                write!(f, "-header {key} contains CR, LF or NUL, which could inject commands or headers: {value:?}")
            }
            Error::Render(why) => f.write_str(why),
            Error::Nul(part) => write!(
                f,
                "{part} holds a NUL byte in its body, which SMTP cannot carry unencoded: create it with -encoding base64"
            ),
            Error::Handle { handle, ended: true } => {
                write!(f, "send \"{handle}\" has ended (a handle is released when its callback is called)")
            }
            Error::Handle { handle, ended: false } => write!(f, "unknown send \"{handle}\""),
            Error::Session(handle) => write!(f, "unknown session \"{handle}\" (a session is forgotten once closed)"),
            Error::Deadlock { handle, command } => write!(
                f,
                "smtp::wait {handle} would never return: the send is waiting for the answer of its {command} \
                 command, which is still running below this wait"
            ),
            Error::SessionDeadlock { call, session, send, command } => write!(
                f,
                "{call} on {session} would never return: its send {send} is waiting for the answer of its \
                 {command} command, which is still running below this call"
            ),
            Error::Cancelled { end_of_data_sent: true } => f.write_str(
                "send cancelled after the end of the message was sent (the message may or may not have been delivered)",
            ),
            Error::Cancelled { end_of_data_sent: false } => {
                f.write_str("send cancelled (the message was not delivered)")
            }
            Error::Internal { why, .. } => f.write_str(why),
            Error::Tls { from_tls_init, error } => match from_tls_init.as_slice() {
                [] => write!(f, "-tlsoptions: {error}"),
                names => write!(f, "-tlsoptions (with {} from tls::init): {error}", names.join(" ")),
            },
            Error::Message(e) => e.fmt(f),
            Error::Compose(e) => e.fmt(f),
            Error::Send(e) => {
                e.fmt(f)?;
                if e.has_unverified_certificate() {
                    f.write_str(TRUST_HINT)?;
                }
                Ok(())
            }
        }
    }
}

impl From<message::Error> for Error {
    fn from(e: message::Error) -> Error {
        Error::Message(e)
    }
}

impl From<compose::Error> for Error {
    fn from(e: compose::Error) -> Error {
        Error::Compose(e)
    }
}

impl From<client::Error> for Error {
    fn from(e: client::Error) -> Error {
        match e {
            client::Error::Cancelled => Error::Cancelled { end_of_data_sent: false },
            e => Error::Send(e),
        }
    }
}

/// The one place where the command layer's errors become Tcl errors.
impl From<Error> for TclError {
    fn from(e: Error) -> TclError {
        TclError::new(e.to_string(), &e.errorcode().iter().map(String::as_str).collect::<Vec<_>>())
    }
}
