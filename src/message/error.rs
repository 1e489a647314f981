//! Errors of the message layer. Messages keep tcllib smtp's wording where scripts may
//! match on them.

use std::fmt;

/// Why the envelope or the header block cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An address list did not parse: `error in <who>: <detail>`.
    Address { who: String, detail: String },
    /// The originator holds several mailboxes: `too many mailboxes in <who>: <value>`.
    TooManyMailboxes { who: String, value: String },
    /// No `-recipients` and no To header: `need -header "To ..."`.
    NeedTo { resent: bool },
    /// The address lists gave no address at all (tcllib silently sends nothing).
    NoRecipients { who: String },
    /// CR, LF or NUL where it could inject a command or a header line.
    LineBreak { what: String, value: String },
    /// A header name that is not a valid field name.
    FieldName(String),
    /// A once-only field given several times with `-header`.
    DuplicateField(String),
    /// A field with a line longer than 998 characters and no white space to fold it at.
    LineTooLong(String),
    /// The address parser (mime) itself failed.
    Parser(String),
    /// A header block (the message's or a MIME part's) holds a line that is neither a
    /// field nor a fold: a CR or LF inside header text that reached the wire.
    MalformedHeader { part: String, after: Option<String>, line: String },
    /// A header block holds a well-formed field that neither the mime token nor the
    /// options set: header text with a line break that started a field of its own.
    UndeclaredField { part: String, field: String },
}

impl Error {
    /// The `-errorcode` list after `SMTP`.
    pub fn code_words(&self) -> &'static [&'static str] {
        match self {
            Error::Address { .. } => &["ADDRESS", "SYNTAX"],
            Error::TooManyMailboxes { .. } => &["ADDRESS", "MULTIPLE"],
            Error::NeedTo { .. } => &["ENVELOPE", "NOTO"],
            Error::NoRecipients { .. } => &["ENVELOPE", "NORECIPIENT"],
            Error::LineBreak { .. } => &["INJECTION"],
            Error::FieldName(_) => &["HEADER", "NAME"],
            Error::DuplicateField(_) => &["HEADER", "DUPLICATE"],
            Error::LineTooLong(_) => &["HEADER", "TOOLONG"],
            Error::Parser(_) => &["ADDRESS", "PARSER"],
            Error::MalformedHeader { .. } | Error::UndeclaredField { .. } => &["INJECTION"],
        }
    }
}

/// How header text comes to break its line, for the two wire-check errors.
const WHERE_FROM: &str = "a CR, LF or NUL in a header value, the content type or a content-type parameter would \
                          put it there";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address { who, detail } => write!(f, "error in {who}: {detail}"),
            Error::TooManyMailboxes { who, value } => write!(f, "too many mailboxes in {who}: {value}"),
            Error::NeedTo { resent: false } => f.write_str("need -header \"To ...\""),
            Error::NeedTo { resent: true } => f.write_str("need -header \"Resent-To ...\""),
            Error::NoRecipients { who } => write!(f, "no recipients: {who} holds no address, so nothing would be sent"),
            Error::LineBreak { what, value } => {
                write!(f, "{what} contains CR, LF or NUL, which could inject commands or headers: {value:?}")
            }
            Error::FieldName(name) => {
                write!(f, "invalid header name {name:?}: must be printable ASCII without ':' or spaces")
            }
            Error::DuplicateField(name) => {
                write!(f, "-header {name} given more than once, but a message has at most one {name} field")
            }
            Error::LineTooLong(name) => {
                write!(f, "the {name} field has a line longer than 998 characters without a space to fold it at")
            }
            Error::Parser(e) => write!(f, "cannot parse addresses: {e}"),
            Error::MalformedHeader { part, after, line } => {
                write!(f, "the header of {part} has a line that is neither a header field nor a folded continuation")?;
                if let Some(field) = after {
                    write!(f, " (after its {field} field)")?;
                }
                write!(f, ": {line:?}; {WHERE_FROM}")
            }
            Error::UndeclaredField { part, field } => {
                write!(f, "the header of {part} holds a {field} field that neither the mime token nor -header set; {WHERE_FROM}")
            }
        }
    }
}
