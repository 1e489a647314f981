//! Errors of the command layer: bad options and what the lower layers refused before
//! anything was sent. Each knows its `-errorcode` words after `SMTP`; [`TclError`] is
//! made from it in one place.

use std::fmt;

use crate::tcl::TclError;
use crate::{compose, message};

/// Why a command cannot do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An option name the command does not know (tcllib's wording).
    UnknownOption(String),
    /// An option the command needs, and why.
    MissingOption {
        option: &'static str,
        why: &'static str,
    },
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
    /// A Bcc field in `-headers`.
    BccHeader,
    /// A field given twice (as an option and in `-headers`, or twice in `-headers`).
    DuplicateHeader(String),
    /// A field the command writes itself, given in `-headers`.
    ReservedHeader {
        name: String,
        instead: &'static str,
    },
    /// CR, LF or NUL in an option's value.
    LineBreak {
        option: String,
        value: String,
    },
    Message(message::Error),
    Compose(compose::Error),
}

impl Error {
    /// The `-errorcode` list after `SMTP`.
    pub fn code_words(&self) -> Vec<String> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Error::UnknownOption(option) => words(&["OPTION", "UNKNOWN", option]),
            Error::MissingOption { option, .. } => words(&["OPTION", "MISSING", option]),
            Error::Value { option, .. } => words(&["OPTION", "VALUE", option]),
            Error::Conflict { option, .. } => words(&["OPTION", "CONFLICT", option]),
            Error::BccHeader => words(&["OPTION", "HEADER", "BCC"]),
            Error::DuplicateHeader(_) => words(&["OPTION", "HEADER", "DUPLICATE"]),
            Error::ReservedHeader { .. } => words(&["OPTION", "HEADER", "RESERVED"]),
            Error::LineBreak { option, .. } => words(&["INJECTION", option]),
            Error::Message(e) => words(e.code_words()),
            Error::Compose(e) => words(e.code_words()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnknownOption(option) => write!(f, "unknown option {option}"),
            Error::MissingOption { option, why } => write!(f, "{option} is needed: {why}"),
            Error::Value { message, .. } | Error::Conflict { message, .. } => f.write_str(message),
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
            Error::Message(e) => e.fmt(f),
            Error::Compose(e) => e.fmt(f),
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

impl From<Error> for TclError {
    fn from(e: Error) -> TclError {
        let mut errorcode = vec!["SMTP".to_string()];
        errorcode.extend(e.code_words());
        TclError { message: e.to_string(), errorcode }
    }
}
