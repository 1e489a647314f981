//! One connection to a server and its protocol engine: the I/O on behalf of a
//! [`Session`], from the connect to the close, for as many transactions as its caller
//! submits. The caller (one send, or a pool worker) keeps the transactions' messages,
//! hooks and cancels, and hears how each ended, through a [`Feed`].

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Cancel, Error, Hooks, Server, Setup};
use crate::smtp::{
    Command, DataEncoder, End, Envelope, Failure, FailureKind, Form, Next, Outcome, Session, SizeCounter, Step,
    TlsIssue,
};
use crate::spool::{self, ChunkError, Spool};
use crate::transport::{self, Connection, TlsSetup, Verification};

/// The transactions of a connection, as its caller keeps them. "Oldest" is the oldest
/// submitted transaction that has not finished: the one whose replies or message are
/// due (transactions finish in the order they were submitted).
pub(super) trait Feed {
    /// Where the trace goes and the policy is asked: the oldest transaction's send, or the
    /// caller's own between transactions.
    fn hooks(&mut self) -> &mut dyn Hooks;
    /// The oldest transaction's cancel.
    fn cancel(&self) -> Option<&Cancel>;
    /// What writing the oldest transaction's message needs: the message, its send's
    /// hooks (for progress) and cancel.
    fn transfer(&mut self) -> Option<Transfer<'_>>;
    /// The oldest transaction ended.
    fn finished(&mut self, outcome: Outcome);
    /// Just before a message's final dot: submit a transaction that may go after it in
    /// the same write.
    fn before_dot(&mut self, _session: &mut Session) {}
    /// Why this server cannot take the transactions given at the start (taken: asked
    /// once per connection), so that the next server is tried.
    fn unusable(&mut self) -> Option<Failure> {
        None
    }
}

/// The message being written, with its send's hooks and cancel.
pub(super) struct Transfer<'a> {
    pub message: &'a Spool,
    pub hooks: &'a mut dyn Hooks,
    pub cancel: &'a Cancel,
}

/// How often progress is reported at most while a message is written.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Why [`Link::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// Every submitted transaction ended; the connection waits for more.
    Idle,
    /// The connection is closed.
    Closed(End),
    /// The oldest transaction was cancelled; the connection is abandoned.
    Cancelled,
}

/// What `smtp::info` shows of a connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    pub server: Option<Server>,
    /// Protocol, cipher and whether the certificate verified; `None` in plaintext.
    pub tls: Option<(String, String, bool)>,
    /// The SASL mechanism used, if any.
    pub auth: Option<String>,
    /// The EHLO keywords.
    pub capabilities: Vec<String>,
    pub size_limit: Option<u64>,
}

/// One open connection.
pub(super) struct Link {
    /// `None` once closed, or once a failed TLS handshake has consumed it.
    conn: Option<Connection>,
    session: Session,
    server: Server,
    /// Its place in the setup's list of servers.
    pub(super) index: usize,
    tls: Option<TlsSetup>,
    /// The certificate verified (`Some(false)`: the policy accepted it unverified).
    verified: Option<bool>,
    /// Writing the message body: a command now would become part of the message.
    in_body: bool,
}

impl Link {
    /// Connects to the first server of `setup` (from its `first`, in turn) that takes the
    /// connection, and runs the connection until it is idle or over. `prepare` gives each
    /// new session what it should carry from the start (one send's message and QUIT).
    /// A server that cannot be used, or cannot take what `prepare` gave it
    /// ([`Feed::unusable`]), is left for the next one.
    pub(super) fn establish(
        setup: &Setup,
        first: usize,
        feed: &mut dyn Feed,
        prepare: &dyn Fn(&mut Session) -> Result<(), Error>,
    ) -> Result<(Link, Stop), Error> {
        let mut failures = Vec::new();
        let count = setup.servers.len();
        for index in (0..count).map(|i| (first + i) % count) {
            let Some(server) = setup.servers.get(index) else { continue };
            let mut use_tls = true;
            loop {
                let (link, stop) = match Link::connect(setup, index, use_tls, feed, prepare)? {
                    Ok(started) => started,
                    Err(failure) => {
                        failures.push((server.clone(), failure));
                        break;
                    }
                };
                match stop {
                    Stop::Closed(End::RetryWithoutTls) if use_tls => {
                        feed.hooks().trace(
                            "    ... -tlspolicy allows plaintext after the failed TLS handshake: reconnecting ...",
                        );
                        use_tls = false;
                        continue;
                    }
                    Stop::Closed(End::Unusable(failure)) => failures.push((server.clone(), failure)),
                    Stop::Cancelled => return Err(Error::Cancelled),
                    stop => match feed.unusable() {
                        Some(failure) => failures.push((server.clone(), failure)),
                        None => return Ok((link, stop)),
                    },
                }
                break;
            }
        }
        Err(Error::NoServer(failures))
    }

    /// One connection to server `index` of `setup`, with TLS as requested (`use_tls`) or
    /// without any, run until idle or over; the inner error when the connect failed.
    fn connect(
        setup: &Setup,
        index: usize,
        use_tls: bool,
        feed: &mut dyn Feed,
        prepare: &dyn Fn(&mut Session) -> Result<(), Error>,
    ) -> Result<Result<(Link, Stop), Failure>, Error> {
        if feed.cancel().is_some_and(Cancel::is_requested) {
            return Err(Error::Cancelled);
        }
        let server = setup.server(index);
        feed.hooks().trace(&format!("Trying {}...", server.host));
        let tls = setup.tls.clone().filter(|_| use_tls);
        let mut params = setup.params.clone();
        params.starttls &= tls.is_some() && !setup.implicit_tls;
        if let Some(auth) = params.auth.as_mut() {
            auth.host = server.host.clone();
            auth.cnonce = crate::random::hex(16).map_err(Error::Random)?;
        }
        let timeouts = setup.params.timeouts;
        let conn = match transport::connect(&server.host, server.port, timeouts.connect) {
            Ok(conn) => conn,
            Err(e) => {
                feed.hooks().trace(&format!("    ... {e} ..."));
                return Ok(Err(Failure { step: Step::Connect, kind: failure_kind(e, timeouts.connect) }));
            }
        };
        params.loopback = conn.peer_is_loopback();
        let mut session = Session::new(params).map_err(|e| Error::Invalid(e.0))?;
        prepare(&mut session)?;
        let implicit = tls.is_some() && setup.implicit_tls;
        if let Some(cancel) = feed.cancel() {
            cancel.watch(&conn);
        }
        let mut link =
            Link { conn: Some(conn), session, server: server.clone(), index, tls, verified: None, in_body: false };
        let next = if implicit { link.handshake(feed) } else { Next::Receive };
        let stop = link.run(next, feed);
        Ok(Ok((link, stop)))
    }

    /// Submits a transaction; [`Link::resume`] then runs it.
    pub(super) fn submit(&mut self, envelope: Envelope) -> Result<(), Error> {
        self.session.submit(envelope).map_err(|e| Error::Invalid(e.0))
    }

    /// Asks for QUIT once the submitted transactions have ended.
    pub(super) fn quit(&mut self) {
        self.session.quit();
    }

    /// Runs what was submitted (or the QUIT asked for) until idle or over.
    pub(super) fn resume(&mut self, feed: &mut dyn Feed) -> Stop {
        if let (Some(cancel), Some(conn)) = (feed.cancel(), self.conn.as_ref()) {
            cancel.watch(conn);
        }
        let next = self.session.resume();
        self.run(next, feed)
    }

    /// Whether the server has said something, or closed the connection, while it was
    /// idle: then it cannot carry a transaction (a 421 before MAIL, or a timeout's close),
    /// and it is closed.
    pub(super) fn went_away(&mut self, hooks: &mut dyn Hooks) -> bool {
        let Some(conn) = self.conn.as_mut() else { return true };
        let mut arrived = Vec::new();
        let next = match conn.read_arrived(&mut arrived) {
            Ok(0) => return false,
            Ok(_) => self.session.receive(&arrived),
            Err(e) => Some(self.session.handle_failure(failure_kind(e, Duration::ZERO))),
        };
        for line in self.session.take_trace() {
            hooks.trace(&line);
        }
        if !matches!(next, Some(Next::Close(_))) {
            return false;
        }
        self.close();
        true
    }

    /// Ends the connection without a word (the server has gone already, or it will not
    /// be used again).
    pub(super) fn drop_connection(mut self) {
        self.close();
    }

    pub(super) fn info(&self) -> LinkInfo {
        let capabilities = self.session.capabilities();
        let tls = self.conn.as_ref().and_then(Connection::tls_details);
        LinkInfo {
            server: Some(self.server.clone()),
            tls: tls.map(|(protocol, cipher)| (protocol, cipher, self.verified == Some(true))),
            auth: self.session.authenticated().map(|m| m.name().to_string()),
            capabilities: capabilities.keywords().map(str::to_string).collect(),
            size_limit: capabilities.size_limit(),
        }
    }

    fn run(&mut self, mut next: Next, feed: &mut dyn Feed) -> Stop {
        loop {
            for line in self.session.take_trace() {
                feed.hooks().trace(&line);
            }
            if feed.cancel().is_some_and(Cancel::is_requested) {
                self.abandon(feed);
                return Stop::Cancelled;
            }
            next = match next {
                Next::Close(end) => {
                    self.close();
                    return Stop::Closed(end);
                }
                Next::Idle => return Stop::Idle,
                Next::Finished(outcome) => {
                    feed.finished(outcome);
                    if let (Some(cancel), Some(conn)) = (feed.cancel(), self.conn.as_ref()) {
                        cancel.watch(conn);
                    }
                    self.session.resume()
                }
                Next::Receive => self.await_reply(feed),
                Next::Send(commands) => match self.write_flight(&commands, feed) {
                    Ok(()) => self.await_reply(feed),
                    Err(kind) => self.session.handle_failure(kind),
                },
                Next::SendMessage(form) => match self.write_message(form, feed) {
                    Ok(after) => {
                        self.session.message_sent();
                        let wait = self.session.timeout().as_secs();
                        feed.hooks().trace(&format!("--> . (wait upto {wait} seconds)"));
                        self.trace_commands(&after, feed);
                        self.await_reply(feed)
                    }
                    Err(next) => next,
                },
                Next::StartTls => self.handshake(feed),
                Next::AskPolicy(issue) => {
                    let answer = feed.hooks().tls_policy(issue.code(), &issue.diagnostic());
                    self.session.policy_answer(answer)
                }
                Next::AskToken(username) => {
                    feed.hooks().trace("    ... asking -oauthcommand for a token ...");
                    let token = feed.hooks().oauth_token(&username);
                    self.session.token_answer(token)
                }
            }
        }
    }

    /// Ends the connection, a TLS session with close_notify (sent within QUIT's wait).
    fn close(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.close(transport::deadline_after(self.session.timeout()));
        }
    }

    /// Ends a cancelled connection: QUIT where a command may be sent (its reply is not
    /// awaited), else just the close, which makes the server discard a partial message.
    fn abandon(&mut self, feed: &mut dyn Feed) {
        feed.hooks().trace("    ... cancelled ...");
        if !self.in_body {
            let mut line = Vec::new();
            Command::Quit.encode(&mut line);
            feed.hooks().trace("--> QUIT");
            let _ = self.write(&line);
        }
        // Dropped, not closed: close_notify could wait on a server that reads nothing.
        self.conn = None;
    }

    /// Reads until the session has a complete reply, within the session's current
    /// timeout (for the whole reply, so a server trickling lines cannot stretch the wait).
    fn await_reply(&mut self, feed: &mut dyn Feed) -> Next {
        let timeout = self.session.timeout();
        let deadline = transport::deadline_after(timeout);
        let mut bytes = Vec::new();
        loop {
            if let Some(next) = self.session.receive(&bytes) {
                return next;
            }
            bytes.clear();
            let Some(conn) = self.conn.as_mut() else { return self.session.handle_failure(FailureKind::Closed) };
            if let Err(e) = conn.read_some(&mut bytes, deadline) {
                feed.hooks().trace(&format!("    ... {e} ..."));
                return self.session.handle_failure(failure_kind(e, timeout));
            }
        }
    }

    /// Runs the TLS handshake and tells the session how it went.
    fn handshake(&mut self, feed: &mut dyn Feed) -> Next {
        let (Some(tls), Some(conn)) = (self.tls.as_ref(), self.conn.take()) else {
            return self.session.handle_failure(FailureKind::Closed);
        };
        let hooks = feed.hooks();
        let config = match tls.config() {
            Ok(config) => config,
            Err(e) => {
                hooks.trace(&format!("    ... no TLS configuration: {e} ..."));
                return self.session.tls_failed(TlsIssue::Handshake(e.to_string()));
            }
        };
        let deadline = transport::deadline_after(self.session.timeout());
        match conn.start_tls(&config, &self.server.host, deadline) {
            Ok((conn, verification)) => {
                // A cancel must now interrupt the TLS connection's socket.
                if let Some(cancel) = feed.cancel() {
                    cancel.watch(&conn);
                }
                self.conn = Some(conn);
                let hooks = feed.hooks();
                match verification {
                    Verification::Verified => {
                        hooks.trace("    ... TLS established, certificate verified ...");
                        self.verified = Some(true);
                        self.session.tls_established()
                    }
                    Verification::Skipped => {
                        hooks.trace("    ... TLS established, certificate not checked (-require 0) ...");
                        self.verified = Some(false);
                        self.session.tls_established()
                    }
                    Verification::Failed(why) => {
                        hooks.trace(&format!("    ... TLS established, certificate verify failed: {why} ..."));
                        self.verified = Some(false);
                        self.session.tls_failed(TlsIssue::NotVerified(why))
                    }
                }
            }
            Err(why) => {
                hooks.trace(&format!("    ... TLS handshake failed: {why} ..."));
                self.session.tls_failed(TlsIssue::Handshake(why))
            }
        }
    }

    /// Writes a flight of commands in one write, so that no command waits for an
    /// acknowledgement of the one before (Nagle) and the server can read them at once.
    fn write_flight(&mut self, commands: &[Command], feed: &mut dyn Feed) -> Result<(), FailureKind> {
        let mut flight = Vec::with_capacity(64 * commands.len());
        for command in commands {
            command.encode(&mut flight);
        }
        self.trace_commands(commands, feed);
        self.write(&flight)
    }

    /// One trace line per command. The timeout shown is the wait for the command's reply,
    /// as in tcllib's trace.
    fn trace_commands(&self, commands: &[Command], feed: &mut dyn Feed) {
        for command in commands {
            let wait = self.session.timeout_of(command.step()).as_secs();
            feed.hooks().trace(&format!("--> {command} (wait upto {wait} seconds)"));
        }
    }

    /// Writes the oldest transaction's message as a DATA section, a chunk at a time so
    /// the encoded copy stays small, and what the session puts after the final dot (a
    /// pipelined QUIT or the next transaction) in the same write: a message smaller than
    /// a chunk takes one write. Stops between chunks when the send is cancelled. Returns
    /// the commands written after the dot, or what follows a failure.
    fn write_message(&mut self, form: Form, feed: &mut dyn Feed) -> Result<Vec<Command>, Next> {
        let mut out = self.write_body(form, feed).map_err(|kind| self.session.handle_failure(kind))?;
        let mut arrived = Vec::new();
        if let Some(conn) = self.conn.as_mut() {
            if let Err(e) = conn.read_arrived(&mut arrived) {
                feed.hooks().trace(&format!("    ... {e} ..."));
                return Err(self.session.handle_failure(failure_kind(e, Duration::ZERO)));
            }
        }
        feed.before_dot(&mut self.session);
        let after = self.session.finish_message(&arrived)?;
        for command in &after {
            command.encode(&mut out);
        }
        if let Some(cancel) = feed.cancel() {
            cancel.0.end_sent.store(true, Ordering::SeqCst);
        }
        self.write(&out).map_err(|kind| self.session.handle_failure(kind))?;
        self.in_body = false;
        Ok(after)
    }

    /// Writes the DATA section of the message in `form` but its last chunk, which holds
    /// the final dot and is returned. Progress (bytes of the message as sent, of its
    /// `SIZE=` total) is reported at most every [`PROGRESS_INTERVAL`] and once when all
    /// is written.
    fn write_body(&mut self, form: Form, feed: &mut dyn Feed) -> Result<Vec<u8>, FailureKind> {
        let mut encoder = DataEncoder::new();
        let mut out = Vec::with_capacity(spool::CHUNK + spool::CHUNK / 8);
        self.in_body = true;
        let Some(Transfer { message, hooks, cancel }) = feed.transfer() else { return Err(FailureKind::Closed) };
        let total = message.size_in(form);
        let mut written = SizeCounter::default();
        let mut reported = Instant::now();
        message
            .for_each_chunk(form, |chunk| {
                if cancel.is_requested() {
                    return Err(FailureKind::Closed);
                }
                encoder.encode(chunk, &mut out);
                written.add(chunk);
                if out.len() >= spool::CHUNK {
                    self.write(&out)?;
                    out.clear();
                    if reported.elapsed() >= PROGRESS_INTERVAL {
                        hooks.progress(written.total().min(total), total);
                        reported = Instant::now();
                    }
                }
                Ok(())
            })
            .map_err(|e| match e {
                ChunkError::Consumer(kind) => kind,
                // The server gets no final dot, so it delivers nothing.
                ChunkError::Read(e) => FailureKind::Io(format!("cannot read the message: {e}")),
            })?;
        encoder.finish(&mut out);
        // The rest goes in the write of the final dot, which follows at once.
        hooks.progress(total, total);
        Ok(out)
    }

    /// Writes `data` within the session's write timeout.
    fn write(&mut self, data: &[u8]) -> Result<(), FailureKind> {
        let limit = self.session.write_timeout();
        let Some(conn) = self.conn.as_mut() else { return Err(FailureKind::Closed) };
        conn.write_all(data, transport::deadline_after(limit)).map_err(|e| failure_kind(e, limit))
    }
}

fn failure_kind(e: transport::Error, waited: Duration) -> FailureKind {
    match e {
        transport::Error::Timeout => FailureKind::Timeout(waited),
        transport::Error::Closed => FailureKind::Closed,
        e => FailureKind::Io(e.to_string()),
    }
}
