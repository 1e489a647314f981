//! Sends one message: tries each server in turn and drives the protocol engine over a
//! connection to it. Plain Rust, no Tcl: it can run on any thread.

use std::fmt;
use std::time::{Duration, Instant};

use crate::smtp::{
    parse_reply, Command, DataEncoder, Failure, FailureKind, Next, Outcome, Params, Refusal, Reply, Session, Status,
    Step,
};
use crate::transport::{self, Connection};

/// One entry of `-servers`/`-ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Everything needed to send one message.
#[derive(Debug, Clone)]
pub struct Request {
    /// Tried in order until one accepts the connection.
    pub servers: Vec<Server>,
    pub params: Params,
    /// The message as it should be stored (any line endings); encoded for DATA on the way out.
    pub message: Vec<u8>,
}

/// The result of a send that reached a server's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Whether the server accepted the message.
    pub sent: bool,
    /// Recipients the server refused, in envelope order.
    pub refused: Vec<Refusal>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// No server could be used; each one's failure, in order.
    NoServer(Vec<(Server, Failure)>),
    /// A server took the connection but the transaction failed.
    Transaction { server: Server, failure: Failure },
    /// The request itself cannot be sent (checked again here, after the option layer).
    Invalid(String),
}

/// How many message bytes are encoded and written at a time: large enough for few system
/// calls, small enough that the encoded copy stays a small fraction of the message.
const MESSAGE_CHUNK: usize = 256 * 1024;

/// Sends `request`, writing a `-debug` trace line to `trace` for every step.
pub fn send(request: &Request, trace: &mut dyn FnMut(&str)) -> Result<Delivery, Error> {
    let mut failures = Vec::new();
    for server in &request.servers {
        trace(&format!("Trying {}...", server.host));
        let session = Session::new(request.params.clone()).map_err(|e| Error::Invalid(e.0))?;
        let timeouts = request.params.timeouts;
        let outcome = match transport::connect(&server.host, server.port, timeouts.connect) {
            Ok(conn) => Driver { conn, buf: Vec::new(), trace: &mut *trace }.run(session, &request.message),
            Err(e) => {
                trace(&format!("    ... {e} ..."));
                Outcome::Unusable(Failure { step: Step::Connect, kind: failure_kind(e, timeouts.connect) })
            }
        };
        match outcome {
            Outcome::Delivered { refused } => return Ok(Delivery { sent: true, refused }),
            Outcome::NotSent { refused } => return Ok(Delivery { sent: false, refused }),
            Outcome::Failed(failure) => return Err(Error::Transaction { server: server.clone(), failure }),
            Outcome::Unusable(failure) => failures.push((server.clone(), failure)),
        }
    }
    Err(Error::NoServer(failures))
}

/// One connection's I/O on behalf of a [`Session`].
struct Driver<'t> {
    conn: Connection,
    /// Bytes received but not yet parsed.
    buf: Vec<u8>,
    trace: &'t mut dyn FnMut(&str),
}

impl Driver<'_> {
    fn run(mut self, mut session: Session, message: &[u8]) -> Outcome {
        let mut next = self.await_reply(&mut session);
        loop {
            next = match next {
                Next::Close(outcome) => return outcome,
                Next::Send(command) => match self.write_command(&command, &session) {
                    Ok(()) => self.await_reply(&mut session),
                    Err(kind) => session.handle_failure(kind),
                },
                Next::SendMessage => match self.write_message(message, &session) {
                    Ok(()) => {
                        session.message_sent();
                        (self.trace)(&format!("--> . (wait upto {} seconds)", session.timeout().as_secs()));
                        self.await_reply(&mut session)
                    }
                    Err(kind) => session.handle_failure(kind),
                },
            }
        }
    }

    fn await_reply(&mut self, session: &mut Session) -> Next {
        match self.read_reply(session) {
            Ok(reply) => session.handle_reply(reply),
            Err(kind) => session.handle_failure(kind),
        }
    }

    /// Reads one complete reply within the session's current timeout (for the whole reply,
    /// so a server trickling lines cannot stretch the wait).
    fn read_reply(&mut self, session: &Session) -> Result<Reply, FailureKind> {
        let timeout = session.timeout();
        let deadline = Instant::now() + timeout;
        loop {
            match parse_reply(&self.buf) {
                Ok(Status::Complete((reply, used))) => {
                    self.buf.drain(..used);
                    self.trace_reply(&reply);
                    return Ok(reply);
                }
                Ok(Status::Partial) => {}
                Err(e) => {
                    (self.trace)(&format!("    ... {e} ..."));
                    return Err(FailureKind::Protocol(e));
                }
            }
            if let Err(e) = self.conn.read_some(&mut self.buf, deadline) {
                (self.trace)(&format!("    ... {e} ..."));
                return Err(failure_kind(e, timeout));
            }
        }
    }

    fn write_command(&mut self, command: &Command, session: &Session) -> Result<(), FailureKind> {
        let mut line = Vec::with_capacity(64);
        command.encode(&mut line);
        // The timeout shown is the wait for the reply that follows, as in tcllib's trace.
        (self.trace)(&format!("--> {command} (wait upto {} seconds)", session.timeout().as_secs()));
        let write = session.write_timeout();
        self.conn.write_all(&line, Instant::now() + write).map_err(|e| failure_kind(e, write))
    }

    /// Writes the message as a DATA section, in chunks so the encoded copy stays small.
    fn write_message(&mut self, message: &[u8], session: &Session) -> Result<(), FailureKind> {
        let write = session.write_timeout();
        let mut encoder = DataEncoder::new();
        let mut out = Vec::with_capacity(MESSAGE_CHUNK + MESSAGE_CHUNK / 8);
        for chunk in message.chunks(MESSAGE_CHUNK) {
            out.clear();
            encoder.encode(chunk, &mut out);
            self.conn.write_all(&out, Instant::now() + write).map_err(|e| failure_kind(e, write))?;
        }
        out.clear();
        encoder.finish(&mut out);
        self.conn.write_all(&out, Instant::now() + write).map_err(|e| failure_kind(e, write))
    }

    fn trace_reply(&mut self, reply: &Reply) {
        let last = reply.lines.len().saturating_sub(1);
        for (i, text) in reply.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            (self.trace)(format!("<-- {}{sep}{text}", reply.code).trim_end());
        }
    }
}

fn failure_kind(e: transport::Error, waited: Duration) -> FailureKind {
    match e {
        transport::Error::Timeout => FailureKind::Timeout(waited),
        transport::Error::Closed => FailureKind::Closed,
        e => FailureKind::Io(e.to_string()),
    }
}
