//! The SMTP protocol engine. No sockets, no clock, no Tcl: it turns replies into the next
//! command and, at the end, an [`Outcome`]. The driver in `crate::client` does the I/O,
//! which keeps every rule here testable with `cargo test` and lets the engine run on any
//! thread.

mod capabilities;
mod command;
mod data;
mod dsn;
mod failure;
mod reply;
mod session;
#[cfg(test)]
mod session_tests;

pub use capabilities::Capabilities;
pub use command::{has_line_break_or_nul, Command};
pub use data::{message_size, wire_lines, DataEncoder, SizeCounter};
pub use dsn::{Dsn, Notify, Ret};
pub use failure::{Extension, Failure, FailureKind, PolicyAnswer, Step, TlsIssue};
pub use reply::{parse_reply, EnhancedCode, Reply, ReplyError, Status};
pub use session::{
    ascii_address, AuthParams, End, Envelope, Form, Next, Outcome, Params, Refusal, Session, SevenBit, Timeouts, Token,
};
