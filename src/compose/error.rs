//! Errors of the message builder. Each knows its `-errorcode` words after `SMTP`, in the
//! families `sendmessage` uses for the same faults.

use std::fmt;
use std::path::PathBuf;

/// Why a message cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An address that is not `addr@domain`, `<addr@domain>` or `Name <addr@domain>`.
    Address { option: String, value: String },
    /// CR, LF or NUL in header text.
    LineBreak { field: String, value: String },
    /// A header word too long to fold under 998 characters.
    LineTooLong(String),
    /// An attachment file that cannot be read.
    File { path: PathBuf, why: String },
    /// An attachment media type that is not `type/subtype`.
    MediaType(String),
    /// No random numbers for a boundary.
    Random(String),
}

impl Error {
    /// The `-errorcode` list after `SMTP`.
    pub fn code_words(&self) -> &'static [&'static str] {
        match self {
            Error::Address { .. } => &["ADDRESS", "SYNTAX"],
            Error::LineBreak { .. } => &["INJECTION"],
            Error::LineTooLong(_) => &["HEADER", "TOOLONG"],
            Error::File { .. } | Error::MediaType(_) => &["OPTION", "VALUE", "-attachments"],
            Error::Random(_) => &["INTERNAL", "RANDOM"],
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address { option, value } => write!(
                f,
                "error in {option}: {value:?} is not an address (addr@domain, <addr@domain> or Name <addr@domain>)"
            ),
            Error::LineBreak { field, value } => {
                write!(f, "{field} contains CR, LF or NUL, which could inject commands or headers: {value:?}")
            }
            Error::LineTooLong(field) => {
                write!(f, "the {field} field has a word longer than 998 characters, which cannot be folded")
            }
            Error::File { path, why } => write!(f, "-attachments: cannot read {}: {why}", path.display()),
            Error::MediaType(t) => write!(f, "-attachments: invalid media type {t:?}: must be type/subtype"),
            Error::Random(why) => write!(f, "no random numbers for a MIME boundary: {why}"),
        }
    }
}
