//! What is sent: the envelope (who from, who to) and the header block, computed from the
//! options and the rendered mime message. Pure functions, no Tcl: address parsing is
//! borrowed from mime through the [`AddressParser`] trait so the rules stay testable.

mod block;
mod envelope;
mod error;
mod headers;

pub use crate::smtp::has_line_break_or_nul;
pub use envelope::{envelope, AddressParser, Envelope, HeaderOption, Input, Mailbox};
pub use error::Error;
pub use headers::{check_field_name, check_message_field, forwarded_header, rewrite, HeaderPlan};
