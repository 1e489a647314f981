//! Sends one message: tries each server in turn and drives the protocol engine over a
//! connection to it. Plain Rust, no Tcl: it can run on any thread.

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::smtp::{
    parse_reply, Command, DataEncoder, Failure, FailureKind, Next, Outcome, Params, PolicyAnswer, Refusal, Reply,
    ReplyError, Session, Status, Step, TlsIssue,
};
use crate::spool::{self, ChunkError, Spool};
use crate::transport::{self, Connection, TlsSetup, Verification};

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
#[derive(Debug)]
pub struct Request {
    /// Tried in order until one accepts the connection.
    pub servers: Vec<Server>,
    pub params: Params,
    /// How to do TLS; `None` when neither STARTTLS nor implicit TLS is wanted.
    pub tls: Option<TlsSetup>,
    /// TLS from the first byte (`-tlsimport`), instead of STARTTLS.
    pub implicit_tls: bool,
    /// The message as it should be stored (any line endings); encoded for DATA on the way out.
    pub message: Spool,
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
    /// No random numbers (for a DIGEST-MD5 nonce).
    Random(String),
    /// The send's thread panicked: the panic's message (a bug to report).
    Panic(String),
    /// [`Cancel::cancel`] stopped the send.
    Cancelled,
}

impl Error {
    /// The `-errorcode` words after `SMTP`. When no server could be used, a TLS refusal or
    /// a missing extension of the last server says so first (`TLS ...`, `EXTENSION ...`:
    /// the server was usable, but not securely or not for this message); other failures
    /// are `SERVERS <the last failure's words>`.
    pub fn code_words(&self) -> Vec<String> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Error::NoServer(failures) => match failures.last() {
                Some((_, last)) if last.is_refusal_of_the_send() => last.code_words(),
                Some((_, last)) => [vec!["SERVERS".to_string()], last.code_words()].concat(),
                None => words(&["SERVERS"]),
            },
            Error::Transaction { failure, .. } => failure.code_words(),
            Error::Invalid(_) => words(&["INTERNAL", "INVALID"]),
            Error::Random(_) => words(&["INTERNAL", "RANDOM"]),
            Error::Panic(_) => words(&["INTERNAL", "PANIC"]),
            Error::Cancelled => words(&["CANCELLED"]),
        }
    }

    /// Whether a server's certificate did not verify (the caller may say how to trust it).
    pub fn has_unverified_certificate(&self) -> bool {
        let Error::NoServer(failures) = self else { return false };
        failures.iter().any(|(_, f)| matches!(f.kind, FailureKind::TlsRefused { issue: TlsIssue::NotVerified(_), .. }))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoServer(failures) => {
                f.write_str("no server accepted the message: ")?;
                for (i, (server, failure)) in failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{server}: {failure}")?;
                }
                Ok(())
            }
            Error::Transaction { server, failure } => {
                write!(f, "{server}: {failure}")?;
                let unknown = failure.step == Step::EndOfData && !matches!(failure.kind, FailureKind::Reply(_));
                if unknown {
                    f.write_str(" (the message may or may not have been delivered)")?;
                }
                Ok(())
            }
            Error::Invalid(why) => f.write_str(why),
            Error::Random(why) => write!(f, "no random numbers: {why}"),
            Error::Panic(what) => write!(f, "internal error in smtp (please report): the send failed: {what}"),
            Error::Cancelled => f.write_str("send cancelled (the message was not delivered)"),
        }
    }
}

/// Lets another thread stop a send in flight. The send notices at its next step; a wait
/// for a reply ends at once (the socket's receiving side is shut down). Before the
/// message body the server gets a QUIT; in the body, the connection is closed without
/// the final dot, so the server discards the message.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    requested: AtomicBool,
    /// The current connection's socket, to interrupt a blocked read.
    socket: Mutex<Option<TcpStream>>,
    /// The end-of-data dot has been (or is being) written: the server may deliver.
    end_sent: AtomicBool,
}

impl Cancel {
    pub fn cancel(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        if let Some(socket) = self.socket().as_ref() {
            let _ = socket.shutdown(Shutdown::Read);
        }
    }

    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Whether the end of the message went out, so a cancelled send may still have been
    /// delivered.
    pub fn end_of_data_sent(&self) -> bool {
        self.0.end_sent.load(Ordering::SeqCst)
    }

    /// Makes `conn` the connection a cancel interrupts.
    fn watch(&self, conn: &Connection) {
        *self.socket() = conn.socket().ok();
        // A cancel that came before the socket was registered has shut nothing down.
        if self.is_requested() {
            self.cancel();
        }
    }

    fn socket(&self) -> std::sync::MutexGuard<'_, Option<TcpStream>> {
        // The lock guards a plain Option; a panic while holding it left nothing half-done.
        self.0.socket.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the caller provides to a send: where the `-debug` trace goes, and the
/// `-tlspolicy` command.
pub trait Hooks {
    /// One line of the `-debug` trace.
    fn trace(&mut self, line: &str);
    /// Asks `-tlspolicy` about a TLS weakness (`code`, `diagnostic`); `None` when the caller
    /// gave no policy, so the defaults apply.
    fn tls_policy(&mut self, code: u16, diagnostic: &str) -> Option<PolicyAnswer>;
}

/// Sends `request`, trying each server in turn, until done or `cancel` stops it.
pub fn send(request: &Request, hooks: &mut dyn Hooks, cancel: &Cancel) -> Result<Delivery, Error> {
    let mut failures = Vec::new();
    for server in &request.servers {
        let mut outcome = attempt(request, server, true, hooks, cancel)?;
        if outcome == Outcome::RetryWithoutTls {
            hooks.trace("    ... -tlspolicy allows plaintext after the failed TLS handshake: reconnecting ...");
            outcome = attempt(request, server, false, hooks, cancel)?;
        }
        match outcome {
            Outcome::Delivered { refused } => return Ok(Delivery { sent: true, refused }),
            Outcome::NotSent { refused } => return Ok(Delivery { sent: false, refused }),
            Outcome::Failed(failure) => return Err(Error::Transaction { server: server.clone(), failure }),
            Outcome::Unusable(failure) => failures.push((server.clone(), failure)),
            // The second attempt runs without TLS, so it cannot ask for a third.
            Outcome::RetryWithoutTls => {}
        }
    }
    Err(Error::NoServer(failures))
}

/// One connection to `server`, with TLS as requested (`use_tls`) or without any.
fn attempt(
    request: &Request,
    server: &Server,
    use_tls: bool,
    hooks: &mut dyn Hooks,
    cancel: &Cancel,
) -> Result<Outcome, Error> {
    if cancel.is_requested() {
        return Err(Error::Cancelled);
    }
    hooks.trace(&format!("Trying {}...", server.host));
    let tls = request.tls.as_ref().filter(|_| use_tls);
    let mut params = request.params.clone();
    params.starttls &= tls.is_some() && !request.implicit_tls;
    if let Some(auth) = params.auth.as_mut() {
        auth.host = server.host.clone();
        auth.cnonce = cnonce()?;
    }
    let timeouts = request.params.timeouts;
    Ok(match transport::connect(&server.host, server.port, timeouts.connect) {
        Ok(conn) => {
            params.loopback = conn.peer_is_loopback();
            let session = Session::new(params).map_err(|e| Error::Invalid(e.0))?;
            cancel.watch(&conn);
            let driver =
                Driver { conn: Some(conn), buf: Vec::new(), hooks, tls, host: &server.host, cancel, in_body: false };
            driver.run(session, &request.message, tls.is_some() && request.implicit_tls)?
        }
        Err(e) => {
            hooks.trace(&format!("    ... {e} ..."));
            Outcome::Unusable(Failure { step: Step::Connect, kind: failure_kind(e, timeouts.connect) })
        }
    })
}

/// A fresh DIGEST-MD5 client nonce: 16 random bytes, in hex.
fn cnonce() -> Result<String, Error> {
    crate::random::hex(16).map_err(Error::Random)
}

/// One connection's I/O on behalf of a [`Session`].
struct Driver<'a> {
    /// `None` once a failed TLS handshake has consumed the connection.
    conn: Option<Connection>,
    /// Bytes received but not yet parsed.
    buf: Vec<u8>,
    hooks: &'a mut dyn Hooks,
    tls: Option<&'a TlsSetup>,
    /// The server's name as given, for TLS verification.
    host: &'a str,
    cancel: &'a Cancel,
    /// Writing the message body: a command now would become part of the message.
    in_body: bool,
}

impl Driver<'_> {
    fn run(mut self, mut session: Session, message: &Spool, implicit_tls: bool) -> Result<Outcome, Error> {
        let mut next = if implicit_tls { self.handshake(&mut session) } else { Next::Receive };
        loop {
            for note in session.take_notes() {
                self.hooks.trace(&format!("    ... {note} ..."));
            }
            if self.cancel.is_requested() {
                self.abandon(&session);
                return Err(Error::Cancelled);
            }
            next = match next {
                Next::Close(outcome) => {
                    self.close(&session);
                    return Ok(outcome);
                }
                Next::Receive => self.await_reply(&mut session),
                // Everything that arrived answered a command already: bytes left over were
                // sent early, and taking them for the next reply would misread the dialogue
                // (a 250 queued before the message was even written).
                Next::Send(_) | Next::SendMessage(_) if !self.buf.is_empty() => {
                    let early = ReplyError::unrequested(&self.buf);
                    self.hooks.trace(&format!("    ... {early} ..."));
                    session.handle_failure(FailureKind::Protocol(early))
                }
                Next::Send(commands) => match self.write_flight(&commands, &session) {
                    Ok(()) => self.await_reply(&mut session),
                    Err(kind) => session.handle_failure(kind),
                },
                Next::SendMessage(after) => match self.write_message(message, &after, &session) {
                    Ok(()) => {
                        session.message_sent();
                        self.hooks.trace(&format!("--> . (wait upto {} seconds)", session.timeout().as_secs()));
                        self.trace_commands(&after, &session);
                        self.await_reply(&mut session)
                    }
                    Err(kind) => session.handle_failure(kind),
                },
                Next::StartTls => {
                    // Bytes that came after the 220 were sent before TLS protects anything:
                    // a man in the middle may have injected them (RFC 3207 §6). Drop them.
                    self.buf.clear();
                    self.handshake(&mut session)
                }
                Next::AskPolicy(issue) => {
                    let answer = self.ask_policy(&issue);
                    session.policy_answer(answer)
                }
            }
        }
    }

    /// Ends the connection when the dialogue is over, a TLS session with close_notify
    /// (sent within QUIT's wait).
    fn close(&mut self, session: &Session) {
        if let Some(conn) = self.conn.take() {
            conn.close(transport::deadline_after(session.timeout()));
        }
    }

    /// Ends a cancelled connection: QUIT where a command may be sent (its reply is not
    /// awaited), else just the close, which makes the server discard a partial message.
    fn abandon(&mut self, session: &Session) {
        self.hooks.trace("    ... cancelled ...");
        if !self.in_body {
            let mut line = Vec::new();
            Command::Quit.encode(&mut line);
            self.hooks.trace("--> QUIT");
            let _ = self.write(&line, session);
        }
    }

    fn await_reply(&mut self, session: &mut Session) -> Next {
        match self.read_reply(session) {
            Ok(reply) => session.handle_reply(reply),
            Err(kind) => session.handle_failure(kind),
        }
    }

    /// Runs the TLS handshake and tells the session how it went.
    fn handshake(&mut self, session: &mut Session) -> Next {
        let (Some(tls), Some(conn)) = (self.tls, self.conn.take()) else {
            return session.handle_failure(FailureKind::Closed);
        };
        let config = match tls.config() {
            Ok(config) => config,
            Err(e) => {
                self.hooks.trace(&format!("    ... no TLS configuration: {e} ..."));
                return session.tls_failed(TlsIssue::Handshake(e.to_string()));
            }
        };
        let deadline = transport::deadline_after(session.timeout());
        match conn.start_tls(&config, self.host, deadline) {
            Ok((conn, verification)) => {
                self.conn = Some(conn);
                match verification {
                    Verification::Verified => {
                        self.hooks.trace("    ... TLS established, certificate verified ...");
                        session.tls_established()
                    }
                    Verification::Skipped => {
                        self.hooks.trace("    ... TLS established, certificate not checked (-require 0) ...");
                        session.tls_established()
                    }
                    Verification::Failed(why) => {
                        self.hooks.trace(&format!("    ... TLS established, certificate verify failed: {why} ..."));
                        session.tls_failed(TlsIssue::NotVerified(why))
                    }
                }
            }
            Err(why) => {
                self.hooks.trace(&format!("    ... TLS handshake failed: {why} ..."));
                session.tls_failed(TlsIssue::Handshake(why))
            }
        }
    }

    /// Asks the policy about `issue`, or applies the defaults: without a policy, a server
    /// that refuses or lacks STARTTLS is used in plaintext (as tcllib does), and a failed
    /// handshake or an unverified certificate is never accepted.
    fn ask_policy(&mut self, issue: &TlsIssue) -> PolicyAnswer {
        let (code, diagnostic) = (issue.code(), issue.diagnostic());
        if let Some(answer) = self.hooks.tls_policy(code, &diagnostic) {
            let said = match &answer {
                PolicyAnswer::Insecure => "insecure".to_string(),
                PolicyAnswer::Secure { why } => format!("secure ({why})"),
            };
            self.hooks.trace(&format!("    ... -tlspolicy on {code} {diagnostic}: {said} ..."));
            return answer;
        }
        match issue {
            TlsIssue::Refused(_) | TlsIssue::NotOffered => {
                self.hooks.trace(&format!("    ... {diagnostic}: no -tlspolicy, continuing without TLS ..."));
                PolicyAnswer::Insecure
            }
            TlsIssue::Handshake(_) | TlsIssue::NotVerified(_) | TlsIssue::EncryptionRequired(_) => {
                PolicyAnswer::Secure { why: "no -tlspolicy allows it".into() }
            }
        }
    }

    /// Reads one complete reply within the session's current timeout (for the whole reply,
    /// so a server trickling lines cannot stretch the wait).
    fn read_reply(&mut self, session: &Session) -> Result<Reply, FailureKind> {
        let timeout = session.timeout();
        let deadline = transport::deadline_after(timeout);
        loop {
            match parse_reply(&self.buf) {
                Ok(Status::Complete((reply, used))) => {
                    self.buf.drain(..used);
                    self.trace_reply(&reply);
                    return Ok(reply);
                }
                Ok(Status::Partial) => {}
                Err(e) => {
                    self.hooks.trace(&format!("    ... {e} ..."));
                    return Err(FailureKind::Protocol(e));
                }
            }
            let Some(conn) = self.conn.as_mut() else { return Err(FailureKind::Closed) };
            if let Err(e) = conn.read_some(&mut self.buf, deadline) {
                self.hooks.trace(&format!("    ... {e} ..."));
                return Err(failure_kind(e, timeout));
            }
        }
    }

    /// Writes a flight of commands in one write, so that no command waits for an
    /// acknowledgement of the one before (Nagle) and the server can read them at once.
    fn write_flight(&mut self, commands: &[Command], session: &Session) -> Result<(), FailureKind> {
        let mut flight = Vec::with_capacity(64 * commands.len());
        for command in commands {
            command.encode(&mut flight);
        }
        self.trace_commands(commands, session);
        self.write(&flight, session)
    }

    /// One trace line per command. The timeout shown is the wait for the command's reply,
    /// as in tcllib's trace.
    fn trace_commands(&mut self, commands: &[Command], session: &Session) {
        for command in commands {
            let wait = session.timeout_of(command.step()).as_secs();
            self.hooks.trace(&format!("--> {command} (wait upto {wait} seconds)"));
        }
    }

    /// Writes the message as a DATA section, a chunk at a time so the encoded copy stays
    /// small, and `after` (a pipelined QUIT) in the same write as the end of data: a
    /// message smaller than a chunk takes one write. Stops between chunks when the send
    /// is cancelled.
    fn write_message(&mut self, message: &Spool, after: &[Command], session: &Session) -> Result<(), FailureKind> {
        let mut encoder = DataEncoder::new();
        let mut out = Vec::with_capacity(spool::CHUNK + spool::CHUNK / 8);
        self.in_body = true;
        message
            .for_each_chunk(|chunk| {
                if self.cancel.is_requested() {
                    return Err(FailureKind::Closed);
                }
                encoder.encode(chunk, &mut out);
                if out.len() >= spool::CHUNK {
                    self.write(&out, session)?;
                    out.clear();
                }
                Ok(())
            })
            .map_err(|e| match e {
                ChunkError::Consumer(kind) => kind,
                // The server gets no final dot, so it delivers nothing.
                ChunkError::Read(e) => FailureKind::Io(format!("cannot read the message: {e}")),
            })?;
        self.check_silence()?;
        encoder.finish(&mut out);
        for command in after {
            command.encode(&mut out);
        }
        self.cancel.0.end_sent.store(true, Ordering::SeqCst);
        self.write(&out, session)?;
        self.in_body = false;
        Ok(())
    }

    /// Fails if the server has said anything (or gone) while the message was written:
    /// the final dot must not go out then, or an early reply would read as its answer and
    /// a message the server never accepted would count as delivered. Without the dot the
    /// server delivers nothing.
    fn check_silence(&mut self) -> Result<(), FailureKind> {
        let Some(conn) = self.conn.as_mut() else { return Err(FailureKind::Closed) };
        let mut early = Vec::new();
        match conn.read_arrived(&mut early) {
            Ok(0) => Ok(()),
            Ok(_) => {
                let early = ReplyError::unrequested(&early);
                self.hooks.trace(&format!("    ... {early} ..."));
                Err(FailureKind::Protocol(early))
            }
            Err(e) => {
                self.hooks.trace(&format!("    ... {e} ..."));
                Err(failure_kind(e, Duration::ZERO))
            }
        }
    }

    /// Writes `data` within the session's write timeout.
    fn write(&mut self, data: &[u8], session: &Session) -> Result<(), FailureKind> {
        let limit = session.write_timeout();
        let Some(conn) = self.conn.as_mut() else { return Err(FailureKind::Closed) };
        conn.write_all(data, transport::deadline_after(limit)).map_err(|e| failure_kind(e, limit))
    }

    fn trace_reply(&mut self, reply: &Reply) {
        let last = reply.lines.len().saturating_sub(1);
        for (i, text) in reply.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.hooks.trace(format!("<-- {}{sep}{text}", reply.code).trim_end());
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
