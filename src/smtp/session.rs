//! The dialogue of one connection as a state machine: the connection's setup (greeting,
//! EHLO, STARTTLS, AUTH), then any number of transactions, then QUIT.
//!
//! Call order for a driver:
//! 1. [`Session::new`]; [`Session::submit`] the messages known already and, for a
//!    connection that carries only those, [`Session::quit`]. Then read the greeting:
//!    wait at most [`Session::timeout`].
//! 2. Give the bytes read to [`Session::receive`] (first with none, for what was
//!    buffered) until it returns a [`Next`], all within one wait; or, when no reply could
//!    be read (timeout, closed connection, socket error), the reason to
//!    [`Session::handle_failure`]. ([`Session::handle_reply`] takes a reply parsed
//!    already.) They return a [`Next`]:
//!    - `Send(commands)`: write them in one write (a flight: several only when the server
//!      offers PIPELINING), then read the reply to the first (step 2); the session asks
//!      for the other replies with `Receive`, in order;
//!    - `SendMessage(form)`: write the DATA section of the oldest unfinished transaction,
//!      the message in that [`Form`] (converted for a server without 8BITMIME); just
//!      before its end (the final dot), give [`Session::finish_message`] what has arrived
//!      meanwhile (read without waiting): it gives the commands to write after the dot in
//!      the same write (a pipelined QUIT, or the next transaction's MAIL and RCPTs:
//!      submit it before), or, when the server spoke, what to do instead; once written,
//!      call [`Session::message_sent`] and read (step 2);
//!    - `StartTls`: run the TLS handshake (the session has dropped what it had received),
//!      then call [`Session::tls_established`] (or [`Session::tls_failed`]);
//!    - `AskPolicy(issue)`: ask `-tlspolicy` and give its answer, or `None` when there is
//!      no policy, to [`Session::policy_answer`];
//!    - `AskToken(user)`: ask `-oauthcommand` for a bearer token for the user and give it
//!      (or why there is none) to [`Session::token_answer`];
//!    - `Receive`: read the next reply (step 2);
//!    - `Finished(outcome)`: the oldest unfinished transaction ended (transactions end in
//!      the order they were submitted); call [`Session::resume`] for what follows;
//!    - `Idle`: the connection waits for a transaction: [`Session::submit`] one (or
//!      [`Session::quit`]) and call [`Session::resume`]; give anything that arrives
//!      meanwhile to [`Session::receive`] (a server may end an idle connection);
//!    - `Close(end)`: close the connection (a TLS session with close_notify first); the
//!      session is over, and says so again whenever asked ([`Session::resume`]).
//!      Transactions submitted but not finished never had their message written: they
//!      can go over another connection.
//! 3. A failed write is reported through `handle_failure` like a failed read.
//! 4. With implicit TLS the driver runs the handshake before reading the greeting and
//!    reports it with `tls_established`/`tls_failed` too.
//! 5. [`Session::take_trace`] gives the `-debug` lines of what the session read and
//!    decided since it was last called.
//!
//! Replies are data, not errors: a refused recipient is an entry in the outcome, and only
//! the engine decides which replies end the transaction. The engine also owns the rules
//! about bytes that arrive when no reply is due: left over when a command is to be sent
//! (an early reply must never pass for the answer to a later command), at STARTTLS
//! (sent before TLS protects anything: a man in the middle may have injected them, RFC
//! 3207 §6, so they are dropped), before the final dot (the dot is then not sent), and
//! while idle (the connection is lost).
//!
//! With PIPELINING (RFC 2920) MAIL, the RCPTs and, when a partial delivery is acceptable,
//! DATA go in one flight; the end of a message's data goes with what follows it (QUIT,
//! or the next transaction's flight), RSET with QUIT. Nothing is pipelined across EHLO,
//! STARTTLS or AUTH, whose replies change the dialogue.

use std::collections::VecDeque;
use std::time::Duration;

use super::{
    parse_reply, Capabilities, Command, Dsn, Extension, Failure, FailureKind, PolicyAnswer, Reply, ReplyError, Status,
    Step, TlsIssue,
};
use crate::sasl::{self, Credentials, Exchange, Mechanism};
use crate::secret::Secret;

/// `address` in ASCII: as it is when it is ASCII, with its domain as the IDNA A-label
/// (`xn--...`, RFC 5891, UTS 46 with the host name rules: hyphens, label and name
/// lengths) when only the domain is not; `None` when it cannot be (a local part that is
/// not ASCII, a domain IDNA refuses).
pub fn ascii_address(address: &str) -> Option<String> {
    if address.is_ascii() {
        return Some(address.to_string());
    }
    let (local, domain) = address.rsplit_once('@')?;
    if !local.is_ascii() {
        return None;
    }
    idna::domain_to_ascii_strict(domain).ok().map(|domain| format!("{local}@{domain}"))
}

/// What a connection needs to know.
#[derive(Debug, Clone)]
pub struct Params {
    /// The name in EHLO/HELO.
    pub client: String,
    /// Send QUED when the server offers XQUE (`-queue`).
    pub queue: bool,
    /// Upgrade with STARTTLS after EHLO (`-usetls`, when the connection is not TLS yet).
    pub starttls: bool,
    /// Authenticate with these (`-username`/`-password`), when the server offers AUTH.
    pub auth: Option<AuthParams>,
    /// The server's address is a loopback one, where a password in clear never leaves the
    /// machine.
    pub loopback: bool,
    pub timeouts: Timeouts,
}

/// What one transaction needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path; empty for the null sender `<>`.
    pub sender: String,
    /// Envelope recipients, in order (Bcc ones included).
    pub recipients: Vec<String>,
    /// Send even when some recipients were refused, if at least one was accepted.
    pub at_least_one: bool,
    /// The message size for `SIZE=` (see `message_size`).
    pub message_size: u64,
    /// The message has a byte above 127: it needs `BODY=8BITMIME` (RFC 6152), or to be
    /// converted.
    pub eight_bit: bool,
    /// The message converted to 7 bits, for a server without 8BITMIME ([`Form::SevenBit`]),
    /// or why it cannot be.
    pub seven_bit: Result<SevenBit, String>,
    /// Delivery status notifications asked for (sent when the server offers DSN).
    pub dsn: Option<Dsn>,
}

/// The form of a message with 8-bit bytes converted to 7 bits (its 8-bit parts
/// re-encoded as quoted-printable or base64), for a server without 8BITMIME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SevenBit {
    /// Its size for `SIZE=`.
    pub size: u64,
    /// What was converted, for the trace: `part 1 as quoted-printable, ...`.
    pub parts: String,
}

/// Which form of the message DATA carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As it is.
    AsIs,
    /// Converted to 7 bits ([`Envelope::seven_bit`]).
    SevenBit,
}

/// What authentication needs.
#[derive(Debug, Clone)]
pub struct AuthParams {
    pub username: String,
    pub password: Secret,
    /// The OAuth 2.0 access token for the bearer mechanisms (`-oauthtoken`), or `Ask` to
    /// have the driver ask for one (`-oauthcommand`); with a token only the bearer
    /// mechanisms are used, without one only the password ones.
    pub token: Option<Token>,
    /// The mechanisms allowed, in order of preference (`-authmechanisms`); empty for the
    /// defaults ([`Mechanism::PASSWORD`] or [`Mechanism::BEARER`]).
    pub mechanisms: Vec<Mechanism>,
    /// The server's host name as given, for DIGEST-MD5's digest-uri.
    pub host: String,
    /// A fresh random client nonce for DIGEST-MD5 and SCRAM.
    pub cnonce: String,
}

/// Where a bearer token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Given(Secret),
    /// Asked for when a bearer mechanism starts (`Next::AskToken`), once per connection.
    Ask,
}

/// How long each wait may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub greeting: Duration,
    /// EHLO, HELO, ONEX, QUED, RSET and DATA.
    pub command: Duration,
    pub mail: Duration,
    pub rcpt: Duration,
    /// The reply to the end of data (`-maxsecs`), counted once the message is written.
    pub end_of_data: Duration,
    pub quit: Duration,
    /// Each write of a command or of a piece of the message.
    pub write: Duration,
}

impl Timeouts {
    /// tcllib smtp's waits (greeting, MAIL and RCPT 600 s; other commands 300 s; the end of
    /// data `end_of_data`), plus what tcllib lacks: a connect timeout, a write timeout and a
    /// short wait for QUIT's reply, which only tells us the server said goodbye.
    pub fn standard(end_of_data: Duration) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(60),
            greeting: Duration::from_secs(600),
            command: Duration::from_secs(300),
            mail: Duration::from_secs(600),
            rcpt: Duration::from_secs(600),
            end_of_data,
            quit: Duration::from_secs(10),
            write: Duration::from_secs(300),
        }
    }

    /// The same with every wait at most `cap` (`-timeout`).
    pub fn capped(self, cap: Duration) -> Timeouts {
        let c = |d: Duration| d.min(cap);
        Timeouts {
            connect: c(self.connect),
            greeting: c(self.greeting),
            command: c(self.command),
            mail: c(self.mail),
            rcpt: c(self.rcpt),
            end_of_data: c(self.end_of_data),
            quit: c(self.quit),
            write: c(self.write),
        }
    }
}

/// A recipient the server did not accept, and its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub address: String,
    pub reply: Reply,
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted the message (250 to end of data). `refused` holds the recipients
    /// it refused (only possible with `at_least_one`).
    Delivered { refused: Vec<Refusal> },
    /// Nothing was sent because recipients were refused.
    NotSent { refused: Vec<Refusal> },
    /// The server refused the transaction (MAIL, DATA, the end of data), or the
    /// connection ended after the end of data was written, where it is unknown whether
    /// the message was delivered (`Step::EndOfData` with a failure that is not a reply).
    Failed(Failure),
    /// This server cannot take the message at all (an extension it lacks): another one may.
    Unusable(Failure),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// QUIT, after the transactions that were asked for.
    Quit,
    /// This server could not be used (connect, greeting, EHLO/HELO, TLS): try the next one.
    Unusable(Failure),
    /// The TLS handshake failed and the policy allowed plaintext: connect to the same
    /// server again, without TLS.
    RetryWithoutTls,
    /// The server accepted the connection but its setup failed for good (authentication).
    Failed(Failure),
    /// The connection broke, or the server ended it (421), after its setup. Unfinished
    /// transactions never had their message written.
    Lost(Failure),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Send(Vec<Command>),
    SendMessage(Form),
    StartTls,
    AskPolicy(TlsIssue),
    /// Ask for a bearer token for this user name (`-oauthcommand`) and give it to
    /// [`Session::token_answer`].
    AskToken(String),
    Receive,
    Finished(Outcome),
    Idle,
    Close(End),
}

/// The reply the session waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Greeting,
    Ehlo,
    Helo,
    Onex,
    Qued,
    StartTls,
    /// The driver is running the TLS handshake.
    TlsHandshake,
    /// Waiting for the reply to AUTH or to a SASL response.
    Auth,
    /// Waiting for the driver to get a bearer token.
    Token,
    /// Waiting for the reply to a cancelled SASL exchange; `fatal`: give up afterwards.
    AuthCancel {
        fatal: bool,
    },
    /// Waiting for the policy's answer. `implicit`: the issue arose before the greeting.
    Policy {
        kind: IssueKind,
        implicit: bool,
    },
    /// Set up, no transaction: the driver submits one or quits.
    Idle,
    Mail,
    Rcpt {
        index: usize,
    },
    Data,
    /// Writing the message: no reply is due until `message_sent`.
    Message,
    EndOfData,
    /// The reply to a lone `.` that ended a DATA section no recipient gets; the outcome is
    /// already decided.
    EmptyData,
    /// A transaction has ended and its outcome was returned; `reset`: it was left half
    /// done, and RSET comes before anything else.
    Between {
        reset: bool,
    },
    /// The reply to RSET.
    Rset,
    /// Saying goodbye; how the connection ends is decided.
    Quit,
    /// Implicit TLS whose certificate the policy refused: the greeting is awaited only
    /// so that QUIT can follow it; how the connection ends is decided.
    GreetingBeforeQuit,
    Closed,
}

/// What an `insecure` answer leads to, by kind of TLS issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IssueKind {
    /// STARTTLS refused or not offered: go on in plaintext.
    Unavailable,
    /// The handshake failed: reconnect without TLS.
    Handshake,
    /// The certificate did not verify: go on over the unverified session.
    NotVerified,
    /// A password would go in clear: send it.
    Cleartext,
}

/// One transaction's state, from MAIL to the outcome.
#[derive(Debug)]
struct Transaction {
    envelope: Envelope,
    /// The form the message goes in: decided with MAIL ([`Session::transaction_flight`]).
    form: Form,
    accepted: usize,
    refused: Vec<Refusal>,
    /// How many RCPT commands have been written.
    rcpts_sent: usize,
    /// DATA was written in the flight of the last RCPTs; its reply follows theirs.
    data_sent: bool,
    /// MAIL was refused (pipelined): the outcome once the rest of its flight is read.
    mail_refused: Option<Failure>,
    /// The outcome, decided before the last reply is read (a lone dot's).
    decided: Option<Outcome>,
}

impl Transaction {
    fn new(envelope: Envelope) -> Transaction {
        Transaction {
            envelope,
            form: Form::AsIs,
            accepted: 0,
            refused: Vec::new(),
            rcpts_sent: 0,
            data_sent: false,
            mail_refused: None,
            decided: None,
        }
    }

    /// Whether the message goes out: only when every recipient was accepted, or with
    /// `at_least_one` when some were (tcllib's rule), and MAIL was not refused.
    fn deliverable(&self) -> bool {
        self.mail_refused.is_none() && self.accepted > 0 && (self.refused.is_empty() || self.envelope.at_least_one)
    }

    /// The outcome when the message is not sent: MAIL's refusal, or the recipients'.
    fn not_sent(&mut self) -> Outcome {
        match self.mail_refused.take() {
            Some(failure) => Outcome::Failed(failure),
            None => Outcome::NotSent { refused: std::mem::take(&mut self.refused) },
        }
    }
}

/// The dialogue of one connection.
#[derive(Debug)]
pub struct Session {
    params: Params,
    state: State,
    capabilities: Capabilities,
    /// The connection is TLS (STARTTLS done, or implicit TLS).
    tls: bool,
    /// The TLS issue being decided, kept for the failure if the answer is secure.
    issue: Option<TlsIssue>,
    auth: AuthState,
    /// Bytes received and not yet parsed.
    received: Vec<u8>,
    /// Lines for the `-debug` trace (replies read, remarks), taken by the driver.
    trace: Vec<String>,
    /// The server offers PIPELINING: commands go in flights.
    pipelining: bool,
    /// The transaction whose replies are awaited.
    current: Option<Transaction>,
    /// The next transaction, whose flight went with the current one's end of data.
    following: Option<Transaction>,
    /// Submitted and not started.
    pending: VecDeque<Envelope>,
    /// QUIT once the submitted transactions have ended.
    quit_requested: bool,
    /// QUIT has been written; only its reply is left to read.
    quit_sent: bool,
    /// How the connection ends, once decided; kept once closed.
    end: Option<End>,
}

/// The most RCPT commands in one flight. The client does not read while it writes, so the
/// replies to a flight must fit in the socket buffers, or both sides would wait for each
/// other (RFC 2920 §3.2); a hundred short replies fit in any.
const MAX_FLIGHT_RCPTS: usize = 100;

/// Where authentication stands.
#[derive(Debug, Default)]
struct AuthState {
    /// Offered mechanisms not yet tried, strongest first.
    candidates: VecDeque<Mechanism>,
    exchange: Option<Exchange>,
    /// The policy allowed a password in clear on this connection.
    cleartext_allowed: bool,
    /// The mechanism that succeeded.
    done: Option<Mechanism>,
    /// The bearer token of this connection, once given or got.
    token: Option<Secret>,
    /// Exchanges started on this connection.
    attempts: u32,
    /// The server's last refusal and our last problem, for the final error.
    last_reply: Option<Reply>,
    last_problem: Option<String>,
}

/// Why parameters cannot make a valid dialogue. The layers above check the same rules with
/// friendlier messages; this is the last line of defence against command injection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParams(pub String);

impl Session {
    /// A session waiting for the server's greeting.
    pub fn new(params: Params) -> Result<Session, InvalidParams> {
        let bad = super::has_line_break_or_nul;
        if params.client.is_empty() || bad(&params.client) || params.client.contains(char::is_whitespace) {
            return Err(InvalidParams(format!("invalid client name {:?}", params.client)));
        }
        Ok(Session {
            params,
            state: State::Greeting,
            capabilities: Capabilities::default(),
            tls: false,
            issue: None,
            auth: AuthState::default(),
            received: Vec::new(),
            trace: Vec::new(),
            pipelining: false,
            current: None,
            following: None,
            pending: VecDeque::new(),
            quit_requested: false,
            quit_sent: false,
            end: None,
        })
    }

    /// Queues a transaction; it starts once the connection is set up and the transactions
    /// submitted before it have ended.
    pub fn submit(&mut self, envelope: Envelope) -> Result<(), InvalidParams> {
        let bad = super::has_line_break_or_nul;
        if let Some(a) = std::iter::once(&envelope.sender).chain(&envelope.recipients).find(|a| bad(a)) {
            return Err(InvalidParams(format!("address contains CR, LF or NUL: {a:?}")));
        }
        if envelope.recipients.is_empty() {
            return Err(InvalidParams("no recipients".into()));
        }
        self.pending.push_back(envelope);
        Ok(())
    }

    /// Asks for QUIT once the submitted transactions have ended.
    pub fn quit(&mut self) {
        self.quit_requested = true;
    }

    /// What follows `Finished` or `Idle` (after a `submit` or `quit`); `Close` again once
    /// the connection is over. While a reply is awaited: `Receive`.
    pub fn resume(&mut self) -> Next {
        let next = self.next_after_pause();
        self.checked(next)
    }

    fn next_after_pause(&mut self) -> Next {
        match self.state {
            State::Closed => self.close(),
            State::Idle => self.between(),
            State::Between { reset } => {
                if let Some(transaction) = self.following.take() {
                    self.current = Some(transaction);
                    self.state = State::Mail;
                    return Next::Receive;
                }
                if reset {
                    return self.reset();
                }
                self.between()
            }
            _ => Next::Receive,
        }
    }

    /// The step whose reply is awaited (or, while writing the message, `Step::Message`).
    pub fn step(&self) -> Step {
        match self.state {
            State::Greeting => Step::Greeting,
            State::Ehlo => Step::Ehlo,
            State::Helo => Step::Helo,
            State::Onex => Step::Onex,
            State::Qued => Step::Qued,
            State::StartTls => Step::StartTls,
            State::Policy { kind: IssueKind::Cleartext, .. } => Step::Auth,
            State::TlsHandshake | State::Policy { .. } => Step::TlsHandshake,
            State::Auth | State::Token | State::AuthCancel { .. } => Step::Auth,
            State::Idle | State::Between { .. } | State::Mail => Step::Mail,
            State::Rcpt { .. } => Step::Rcpt,
            State::Data => Step::Data,
            State::Message => Step::Message,
            State::EndOfData | State::EmptyData => Step::EndOfData,
            State::Rset => Step::Rset,
            State::Quit | State::GreetingBeforeQuit | State::Closed => Step::Quit,
        }
    }

    /// How long the current wait may last.
    pub fn timeout(&self) -> Duration {
        self.timeout_of(self.step())
    }

    /// How long the wait at `step` may last (for a flight: the wait for each reply).
    pub fn timeout_of(&self, step: Step) -> Duration {
        let t = &self.params.timeouts;
        match step {
            Step::Connect => t.connect,
            Step::Greeting => t.greeting,
            Step::Ehlo
            | Step::Helo
            | Step::Onex
            | Step::Qued
            | Step::StartTls
            | Step::TlsHandshake
            | Step::Auth
            | Step::Data
            | Step::Rset => t.command,
            Step::Mail => t.mail,
            Step::Rcpt => t.rcpt,
            Step::Message => t.write,
            Step::EndOfData => t.end_of_data,
            Step::Quit => t.quit,
        }
    }

    /// How long each write may block.
    pub fn write_timeout(&self) -> Duration {
        self.params.timeouts.write
    }

    /// The `-debug` trace lines since the last call: each reply read, and remarks.
    pub fn take_trace(&mut self) -> Vec<String> {
        std::mem::take(&mut self.trace)
    }

    /// A remark for the trace.
    fn note(&mut self, text: impl std::fmt::Display) {
        self.trace.push(format!("    ... {text} ..."));
    }

    /// Bytes from the server: `None` while they hold no complete reply (read more within
    /// the same wait), else what the reply, or bytes that cannot be one, lead to. A reply
    /// read, the rest stays buffered for the next call (pipelined replies). Bytes that
    /// arrive when no reply is due end the connection (a 421 ends it as the server said).
    pub fn receive(&mut self, bytes: &[u8]) -> Option<Next> {
        self.received.extend_from_slice(bytes);
        if self.received.is_empty() {
            return None;
        }
        let parsed = parse_reply(&self.received);
        if !self.awaits_reply() {
            let kind = match parsed {
                Ok(Status::Complete((reply, _))) if reply.code == 421 => FailureKind::Reply(reply),
                _ => FailureKind::Protocol(ReplyError::unrequested(&self.received)),
            };
            self.received.clear();
            return Some(self.lost(kind));
        }
        match parsed {
            Ok(Status::Complete((reply, used))) => {
                self.received.drain(..used);
                self.trace_reply(&reply);
                let next = self.handle_reply(reply);
                Some(self.checked(next))
            }
            Ok(Status::Partial) => None,
            Err(e) => {
                self.note(&e);
                self.received.clear();
                Some(self.handle_failure(FailureKind::Protocol(e)))
            }
        }
    }

    /// Whether a reply is due now (not while idle, between transactions, writing the
    /// message, handshaking or waiting for the policy).
    fn awaits_reply(&self) -> bool {
        !matches!(
            self.state,
            State::Idle
                | State::Between { .. }
                | State::Message
                | State::TlsHandshake
                | State::Policy { .. }
                | State::Token
        )
    }

    /// `next`, unless it writes a command while bytes that no command asked for wait:
    /// everything that arrived answered a command already, so they were sent early, and
    /// taking them for the next reply would misread the dialogue (a 250 queued before
    /// the message was even written). At STARTTLS they are dropped.
    fn checked(&mut self, next: Next) -> Next {
        match next {
            Next::Send(_) | Next::SendMessage(_) if !self.received.is_empty() => {
                let early = ReplyError::unrequested(&self.received);
                self.received.clear();
                self.note(&early);
                self.handle_failure(FailureKind::Protocol(early))
            }
            Next::StartTls => {
                self.received.clear();
                next
            }
            next => next,
        }
    }

    fn trace_reply(&mut self, reply: &Reply) {
        let last = reply.lines.len().saturating_sub(1);
        for (i, text) in reply.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.trace.push(format!("<-- {}{sep}{text}", reply.code).trim_end().to_string());
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The mechanism the connection authenticated with.
    pub fn authenticated(&self) -> Option<Mechanism> {
        self.auth.done
    }

    /// The TLS handshake succeeded (and the certificate verified, or was not to be
    /// checked). After STARTTLS everything learnt before is forgotten and EHLO is sent
    /// again (RFC 3207 §4.2); with implicit TLS the greeting is next.
    pub fn tls_established(&mut self) -> Next {
        self.tls = true;
        if self.state == State::Greeting {
            return Next::Receive;
        }
        self.capabilities = Capabilities::default();
        self.pipelining = false;
        self.send(State::Ehlo, Command::Ehlo(self.params.client.clone()))
    }

    /// TLS could not be had: the policy decides what happens next.
    pub fn tls_failed(&mut self, issue: TlsIssue) -> Next {
        let kind = match issue {
            TlsIssue::Refused(_) | TlsIssue::NotOffered => IssueKind::Unavailable,
            TlsIssue::Handshake(_) => IssueKind::Handshake,
            TlsIssue::NotVerified(_) => IssueKind::NotVerified,
            TlsIssue::EncryptionRequired(_) => IssueKind::Cleartext,
        };
        let implicit = self.state == State::Greeting;
        self.issue = Some(issue.clone());
        self.state = State::Policy { kind, implicit };
        Next::AskPolicy(issue)
    }

    /// The policy's answer to the issue of the last `AskPolicy`; `None` when no policy
    /// was given, for the defaults: a server that refuses or lacks STARTTLS is used in
    /// plaintext (as tcllib does); a failed handshake, an unverified certificate or a
    /// password in clear is never accepted.
    pub fn policy_answer(&mut self, answer: Option<PolicyAnswer>) -> Next {
        let (State::Policy { kind, implicit }, Some(issue)) = (self.state, self.issue.take()) else {
            return self.close();
        };
        let (code, diagnostic) = (issue.code(), issue.diagnostic());
        let answer = match answer {
            Some(answer) => {
                let said = match &answer {
                    PolicyAnswer::Insecure => "insecure".to_string(),
                    PolicyAnswer::Secure { why } => format!("secure ({why})"),
                };
                self.note(format!("-tlspolicy on {code} {diagnostic}: {said}"));
                answer
            }
            None if kind == IssueKind::Unavailable => {
                self.note(format!("{diagnostic}: no -tlspolicy, continuing without TLS"));
                PolicyAnswer::Insecure
            }
            None => PolicyAnswer::Secure { why: "no -tlspolicy allows it".into() },
        };
        match (answer, kind) {
            (PolicyAnswer::Insecure, IssueKind::Unavailable) => self.after_tls(),
            (PolicyAnswer::Insecure, IssueKind::Handshake) => self.close_with(End::RetryWithoutTls),
            // An encrypted session with an unverified peer: go on as with a verified one.
            (PolicyAnswer::Insecure, IssueKind::NotVerified) => {
                self.state = if implicit { State::Greeting } else { State::TlsHandshake };
                self.tls_established()
            }
            (PolicyAnswer::Insecure, IssueKind::Cleartext) => {
                self.auth.cleartext_allowed = true;
                self.next_mechanism()
            }
            // The transaction-level refusal: the password is not sent, and nothing else.
            (answer @ PolicyAnswer::Secure { .. }, IssueKind::Cleartext) => {
                self.fail(Failure { step: Step::Auth, kind: FailureKind::TlsRefused { issue, answer } })
            }
            // A TLS session exists, only its certificate is not trusted: say goodbye over
            // it (QUIT carries no secret), after the greeting with implicit TLS.
            (answer @ PolicyAnswer::Secure { .. }, IssueKind::NotVerified) => {
                let failure = Failure { step: Step::TlsHandshake, kind: FailureKind::TlsRefused { issue, answer } };
                self.end = Some(End::Unusable(failure));
                if implicit {
                    self.state = State::GreetingBeforeQuit;
                    return Next::Receive;
                }
                self.goodbye()
            }
            // No TLS session to say goodbye over: STARTTLS refused or not offered, or the
            // handshake failed.
            (answer @ PolicyAnswer::Secure { .. }, _) => {
                let step = if matches!(issue, TlsIssue::Refused(_) | TlsIssue::NotOffered) {
                    Step::StartTls
                } else {
                    Step::TlsHandshake
                };
                self.close_with(End::Unusable(Failure { step, kind: FailureKind::TlsRefused { issue, answer } }))
            }
        }
    }

    /// The EHLO keywords of this connection (empty before EHLO and after HELO).
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// The commands to write after the end of the message, in the same write: with
    /// PIPELINING the next submitted transaction's flight, or QUIT when it was asked for
    /// and nothing else is left. Call it just before writing the final dot, with what
    /// arrived while the message was written: if the server said anything, the dot must
    /// not go out (an early reply would read as its answer, and a message never accepted
    /// would count as delivered; without the dot the server delivers nothing), and the
    /// error is what follows.
    pub fn finish_message(&mut self, arrived: &[u8]) -> Result<Vec<Command>, Next> {
        self.received.extend_from_slice(arrived);
        if !self.received.is_empty() {
            let early = ReplyError::unrequested(&self.received);
            self.received.clear();
            self.note(&early);
            return Err(self.handle_failure(FailureKind::Protocol(early)));
        }
        Ok(self.after_the_dot())
    }

    fn after_the_dot(&mut self) -> Vec<Command> {
        if self.state != State::Message || !self.pipelining || self.following.is_some() {
            return Vec::new();
        }
        // A message that will not go is left for `between` to report.
        if self.pending.front().is_some_and(|envelope| self.cannot_take(envelope).is_some()) {
            return Vec::new();
        }
        if let Some(envelope) = self.pending.pop_front() {
            let mut transaction = Transaction::new(envelope);
            let flight = self.transaction_flight(&mut transaction);
            self.following = Some(transaction);
            return flight;
        }
        if self.quit_requested {
            self.quit_sent = true;
            return vec![Command::Quit];
        }
        Vec::new()
    }

    /// The message has been written; the end-of-data reply is next.
    pub fn message_sent(&mut self) {
        if self.state == State::Message {
            self.state = State::EndOfData;
        }
    }

    /// Feeds the complete reply to the last command (or the greeting).
    pub fn handle_reply(&mut self, mut reply: Reply) -> Next {
        if self.capabilities.has("ENHANCEDSTATUSCODES") {
            reply.enhanced = reply.enhanced_code();
        }
        let code = reply.code;
        match self.state {
            State::Greeting if code == 220 => self.send(State::Ehlo, Command::Ehlo(self.params.client.clone())),
            State::Ehlo if code == 250 => {
                self.capabilities = Capabilities::from_ehlo(&reply);
                self.pipelining = self.capabilities.has("PIPELINING");
                self.after_hello()
            }
            // An old server that does not know EHLO (tcllib also falls back on any 5xx).
            State::Ehlo if reply.is_permanent() => self.send(State::Helo, Command::Helo(self.params.client.clone())),
            State::Helo if code == 250 => {
                self.capabilities = Capabilities::default();
                self.pipelining = false;
                self.after_hello()
            }
            State::Greeting | State::Ehlo | State::Helo => {
                let step = self.step();
                self.close_with(End::Unusable(Failure { step, kind: FailureKind::Reply(reply) }))
            }
            State::StartTls if code == 220 => {
                self.state = State::TlsHandshake;
                Next::StartTls
            }
            State::StartTls => self.tls_failed(TlsIssue::Refused(reply)),
            // No reply is due while the driver handshakes, asks the policy or has nothing
            // for the server.
            State::TlsHandshake
            | State::Policy { .. }
            | State::Token
            | State::Idle
            | State::Between { .. }
            | State::Message => {
                let line = format!("{} {}", reply.code, reply.text());
                self.lost(FailureKind::Protocol(super::ReplyError::Unrequested { line }))
            }
            State::Auth => self.handle_auth_reply(reply),
            State::AuthCancel { fatal: true } => {
                self.fail(Failure { step: Step::Auth, kind: FailureKind::AuthServerNotVerified })
            }
            State::AuthCancel { fatal: false } => self.next_mechanism(),
            // Replies to ONEX and QUED are advisory; tcllib ignores them too.
            State::Onex => self.after_onex(),
            State::Qued => self.start_auth(),
            State::Mail if code == 250 => self.send_rcpt(0),
            State::Mail if code == 421 => self.lost(FailureKind::Reply(reply)),
            // The rest of the flight is in the server's hands: read its replies before
            // going on, since a pipelined DATA may still get a 354 (RFC 2920 §3.1).
            State::Mail if self.pipelining => {
                if let Some(t) = self.current.as_mut() {
                    t.mail_refused = Some(Failure { step: Step::Mail, kind: FailureKind::Reply(reply) });
                }
                self.send_rcpt(0)
            }
            State::Mail => self.finish(Outcome::Failed(Failure { step: Step::Mail, kind: FailureKind::Reply(reply) })),
            State::Rcpt { index } => self.handle_rcpt(index, reply),
            State::Data => self.handle_data(reply),
            State::EndOfData if code == 250 || code == 251 => {
                let refused = self.current.as_mut().map(|t| std::mem::take(&mut t.refused)).unwrap_or_default();
                self.finish(Outcome::Delivered { refused })
            }
            State::EndOfData => {
                let failure = Failure { step: Step::EndOfData, kind: FailureKind::Reply(reply) };
                if code == 421 {
                    return self.finish_and_lose(Outcome::Failed(failure.clone()), failure);
                }
                self.finish(Outcome::Failed(failure))
            }
            State::EmptyData => {
                let outcome = self.current.as_mut().and_then(|t| t.decided.take());
                self.finish(outcome.unwrap_or(Outcome::NotSent { refused: Vec::new() }))
            }
            State::Rset if code == 421 => self.lost(FailureKind::Reply(reply)),
            State::Rset => self.between(),
            State::GreetingBeforeQuit => self.goodbye(),
            State::Quit | State::Closed => self.close(),
        }
    }

    /// No reply could be read, or a write failed.
    pub fn handle_failure(&mut self, kind: FailureKind) -> Next {
        let failure = Failure { step: self.step(), kind };
        match self.state {
            State::Greeting
            | State::Ehlo
            | State::Helo
            | State::Onex
            | State::Qued
            | State::StartTls
            | State::TlsHandshake
            | State::Policy { .. } => self.close_with(End::Unusable(failure)),
            // Once the server has accepted us, a broken authentication is final (as a
            // broken transaction is): nothing was sent, so nothing is lost.
            State::Auth | State::Token | State::AuthCancel { .. } => self.close_with(End::Failed(failure)),
            // The rest of a pipelined flight after MAIL was refused, or a pipelined DATA
            // after every recipient was refused: nothing was sent, and the refusals say why.
            State::Rcpt { .. } | State::Data if self.current.as_ref().is_some_and(|t| t.mail_refused.is_some()) => {
                let outcome = self.current.as_mut().map(Transaction::not_sent);
                self.finish_and_lose(outcome.unwrap_or(Outcome::NotSent { refused: Vec::new() }), failure)
            }
            State::Data if self.current.as_ref().is_some_and(|t| !t.deliverable()) => {
                let outcome = self.current.as_mut().map(Transaction::not_sent);
                self.finish_and_lose(outcome.unwrap_or(Outcome::NotSent { refused: Vec::new() }), failure)
            }
            // Whether the server got the final dot is unknown.
            State::EndOfData => self.finish_and_lose(Outcome::Failed(failure.clone()), failure),
            State::EmptyData => {
                let outcome = self.current.as_mut().and_then(|t| t.decided.take());
                self.finish_and_lose(outcome.unwrap_or(Outcome::NotSent { refused: Vec::new() }), failure)
            }
            // The message was not written in full: the server discards it.
            State::Idle | State::Between { .. } | State::Mail | State::Rcpt { .. } | State::Data | State::Message => {
                self.close_with(End::Lost(failure))
            }
            State::Rset => self.close_with(End::Lost(failure)),
            // How the connection ends is known; a broken goodbye does not change it.
            State::GreetingBeforeQuit | State::Quit | State::Closed => self.close(),
        }
    }

    fn send(&mut self, state: State, command: Command) -> Next {
        self.state = state;
        Next::Send(vec![command])
    }

    /// After EHLO/HELO: STARTTLS first when wanted (nothing else is worth saying before
    /// it, since the server forgets it), then ONEX, QUED and the transaction.
    fn after_hello(&mut self) -> Next {
        if self.params.starttls && !self.tls {
            if self.capabilities.has("STARTTLS") {
                return self.send(State::StartTls, Command::StartTls);
            }
            return self.tls_failed(TlsIssue::NotOffered);
        }
        self.after_tls()
    }

    /// ONEX (one transaction only) when the server offers it, as tcllib sends it, but only
    /// on a connection asked to carry no more than the transactions submitted already.
    fn after_tls(&mut self) -> Next {
        if self.capabilities.has("ONEX") && self.quit_requested && self.pending.len() <= 1 {
            return self.send(State::Onex, Command::Onex);
        }
        self.after_onex()
    }

    fn after_onex(&mut self) -> Next {
        if self.params.queue && self.capabilities.has("XQUE") {
            return self.send(State::Qued, Command::Qued);
        }
        self.start_auth()
    }

    /// Authenticates when credentials were given and the server offers AUTH (after
    /// STARTTLS, since the EHLO that offered it came after TLS when TLS is in use), with the
    /// allowed mechanisms the server offers, in the order of preference; the trace says
    /// which and why the others are not tried.
    fn start_auth(&mut self) -> Next {
        let Some(auth) = self.params.auth.as_ref().filter(|_| self.auth.done.is_none()) else {
            return self.between();
        };
        let offered = self.capabilities.auth_mechanisms();
        if offered.is_empty() {
            self.note("credentials given, but the server offers no AUTH: continuing unauthenticated");
            return self.between();
        }
        let allowed: Vec<Mechanism> = match (&auth.mechanisms, &auth.token) {
            (list, _) if !list.is_empty() => list.clone(),
            (_, Some(_)) => Mechanism::BEARER.to_vec(),
            (_, None) => Mechanism::PASSWORD.to_vec(),
        };
        let is_offered = |m: &Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
        self.auth.candidates = allowed.iter().copied().filter(is_offered).collect();
        let skipped: Vec<String> = offered
            .iter()
            .filter(|o| !self.auth.candidates.iter().any(|m| m.name().eq_ignore_ascii_case(o)))
            .map(|o| match Mechanism::from_name(o) {
                None => format!("{o} (not implemented)"),
                Some(_) if !auth.mechanisms.is_empty() => format!("{o} (not in -authmechanisms)"),
                Some(m) if m.is_bearer() => format!("{o} (needs -oauthtoken or -oauthcommand)"),
                Some(_) => format!("{o} (a password mechanism: a token was given)"),
            })
            .collect();
        let trying: Vec<&str> = self.auth.candidates.iter().map(|m| m.name()).collect();
        let mut note = format!("AUTH: the server offers {}; trying {}", offered.join(" "), trying.join(", "));
        if trying.is_empty() {
            note = format!("AUTH: the server offers {}; none can be tried", offered.join(" "));
        }
        if !skipped.is_empty() {
            note.push_str(&format!("; not trying {}", skipped.join(", ")));
        }
        self.note(note);
        if self.auth.candidates.is_empty() {
            let allowed = allowed.iter().map(|m| m.name()).collect();
            return self.fail(Failure { step: Step::Auth, kind: FailureKind::AuthUnsupported { offered, allowed } });
        }
        self.next_mechanism()
    }

    /// Starts the preferred mechanism not yet tried (asking for a token first if it needs
    /// one), or fails when none is left.
    fn next_mechanism(&mut self) -> Next {
        let Some(auth) = self.params.auth.clone() else { return self.between() };
        let Some(&mechanism) = self.auth.candidates.front() else {
            let kind =
                FailureKind::AuthFailed { reply: self.auth.last_reply.take(), detail: self.auth.last_problem.take() };
            return self.fail(Failure { step: Step::Auth, kind });
        };
        if mechanism.sends_secret() && !self.tls && !self.params.loopback && !self.auth.cleartext_allowed {
            return self.tls_failed(TlsIssue::EncryptionRequired(mechanism.name()));
        }
        let secret = if mechanism.is_bearer() {
            match (&self.auth.token, &auth.token) {
                (Some(token), _) => token.clone(),
                (None, Some(Token::Given(token))) => token.clone(),
                (None, _) => {
                    self.state = State::Token;
                    return Next::AskToken(auth.username);
                }
            }
        } else {
            auth.password
        };
        self.auth.candidates.pop_front();
        // Each exchange needs a nonce of its own (RFC 5802 §5.1): the connection's random
        // one and the number of the attempt.
        self.auth.attempts += 1;
        let cnonce = format!("{}{:x}", auth.cnonce, self.auth.attempts);
        let credentials = Credentials { username: auth.username, password: secret };
        self.auth.exchange = Some(Exchange::new(mechanism, credentials, &auth.host, &cnonce));
        self.send(State::Auth, Command::Auth(mechanism))
    }

    /// The bearer token asked for with `AskToken`, or why there is none (the send fails).
    pub fn token_answer(&mut self, token: Result<Secret, String>) -> Next {
        if self.state != State::Token {
            return self.close();
        }
        match token {
            Ok(token) => {
                self.auth.token = Some(token);
                self.next_mechanism()
            }
            Err(why) => {
                let kind =
                    FailureKind::AuthFailed { reply: None, detail: Some(format!("-oauthcommand failed: {why}")) };
                self.fail(Failure { step: Step::Auth, kind })
            }
        }
    }

    /// A reply during a SASL exchange: 334 carries the next challenge, 235 is success,
    /// a 5xx refusal moves to the next mechanism, anything else ends the dialogue.
    fn handle_auth_reply(&mut self, reply: Reply) -> Next {
        let name = self.auth.exchange.as_ref().map_or("?", |e| e.mechanism().name());
        match reply.code {
            // Success only counts once the mechanism is complete: a DIGEST-MD5 or SCRAM
            // server that says 235 without having proved it knows the password may be an
            // impostor that skipped the proof.
            235 if self.auth.exchange.as_ref().is_none_or(|e| !e.mechanism().proves_server() || e.is_complete()) => {
                self.auth.done = self.auth.exchange.take().map(|e| e.mechanism());
                self.between()
            }
            235 => self.fail(Failure { step: Step::Auth, kind: FailureKind::AuthServerNotVerified }),
            334 => {
                let answer = match (sasl::decode(reply.text()), self.auth.exchange.as_mut()) {
                    (Some(challenge), Some(exchange)) => exchange.respond(&challenge),
                    _ => Err(sasl::Error::BadChallenge("the challenge is not base64".into())),
                };
                // A bearer mechanism's server says why it refused the token, for the error.
                if let Some(refusal) = self.auth.exchange.as_ref().and_then(Exchange::refusal) {
                    let problem = format!("AUTH {name}: {refusal}");
                    self.note(&problem);
                    self.auth.last_problem = Some(problem);
                }
                match answer {
                    Ok(response) => self.send(State::Auth, Command::AuthResponse(sasl::encode(&response))),
                    Err(sasl::Error::ServerNotVerified) => {
                        self.send(State::AuthCancel { fatal: true }, Command::AuthCancel)
                    }
                    Err(e) => {
                        self.note(format!("AUTH {name}: {e}: cancelling"));
                        self.auth.last_problem = Some(format!("AUTH {name}: {e}"));
                        self.send(State::AuthCancel { fatal: false }, Command::AuthCancel)
                    }
                }
            }
            421 => self.fail(Failure { step: Step::Auth, kind: FailureKind::Reply(reply) }),
            _ if reply.is_permanent() => {
                self.note(format!("AUTH {name} failed: {reply}"));
                self.auth.last_reply = Some(reply);
                self.next_mechanism()
            }
            // A temporary failure (454) or nonsense: trying weaker mechanisms would not help.
            _ => self.fail(Failure { step: Step::Auth, kind: FailureKind::Reply(reply) }),
        }
    }

    /// Between transactions: start the next submitted one, or QUIT when asked and nothing
    /// is left, or wait for the driver.
    fn between(&mut self) -> Next {
        if let Some(envelope) = self.pending.pop_front() {
            return self.start_mail(envelope);
        }
        if self.quit_requested {
            return self.goodbye();
        }
        self.state = State::Idle;
        Next::Idle
    }

    /// Starts a transaction: MAIL alone, or with PIPELINING MAIL and the first flight of
    /// RCPTs (and DATA when it may go with them).
    fn start_mail(&mut self, envelope: Envelope) -> Next {
        if let Some(outcome) = self.cannot_take(&envelope) {
            self.state = State::Between { reset: false };
            return Next::Finished(outcome);
        }
        let mut transaction = Transaction::new(envelope);
        let flight = self.transaction_flight(&mut transaction);
        self.current = Some(transaction);
        self.state = State::Mail;
        Next::Send(flight)
    }

    /// Why this server cannot take a message, before anything is sent for it: a missing
    /// extension (another server may have it) or a size above its limit.
    fn cannot_take(&self, envelope: &Envelope) -> Option<Outcome> {
        if let Some(missing) = self.missing_extension(envelope) {
            return Some(Outcome::Unusable(Failure { step: Step::Mail, kind: FailureKind::ExtensionMissing(missing) }));
        }
        let size = self.size_in(envelope, self.form_for(envelope));
        match self.capabilities.size_limit() {
            Some(limit) if size > limit => {
                Some(Outcome::Failed(Failure { step: Step::Mail, kind: FailureKind::TooBig { size, limit } }))
            }
            _ => None,
        }
    }

    /// The form `envelope`'s message takes to this server: converted to 7 bits when it
    /// has 8-bit bytes and the server lacks 8BITMIME (then it can be: see
    /// [`Session::missing_extension`]).
    fn form_for(&self, envelope: &Envelope) -> Form {
        if envelope.eight_bit && !self.capabilities.has("8BITMIME") {
            Form::SevenBit
        } else {
            Form::AsIs
        }
    }

    /// The size of `envelope`'s message in `form`.
    fn size_in(&self, envelope: &Envelope, form: Form) -> u64 {
        match (form, &envelope.seven_bit) {
            (Form::SevenBit, Ok(seven_bit)) => seven_bit.size,
            _ => envelope.message_size,
        }
    }

    /// MAIL, and with PIPELINING the first flight of RCPTs; decides the form of the
    /// message.
    fn transaction_flight(&mut self, transaction: &mut Transaction) -> Vec<Command> {
        let envelope = &transaction.envelope;
        let dsn = self.dsn_of(envelope);
        if envelope.dsn.is_some() && dsn.is_none() {
            self.note("the server does not offer DSN: sending without the NOTIFY, RET, ENVID and ORCPT parameters");
        }
        transaction.form = self.form_for(envelope);
        let size = self.size_in(envelope, transaction.form);
        if let (Form::SevenBit, Ok(seven_bit)) = (transaction.form, &envelope.seven_bit) {
            let parts = seven_bit.parts.clone();
            self.note(format_args!(
                "the server does not offer 8BITMIME: sending the message converted to 7 bits ({parts}), {size} bytes"
            ));
        }
        let from = self.converted(&transaction.envelope.sender.clone());
        let envelope = &transaction.envelope;
        let all_ascii = envelope.sender.is_ascii() && envelope.recipients.iter().all(|a| a.is_ascii());
        let mail = Command::Mail {
            from,
            size: self.capabilities.has("SIZE").then_some(size),
            eight_bit: transaction.form == Form::AsIs && envelope.eight_bit,
            smtputf8: !all_ascii && self.capabilities.has("SMTPUTF8"),
            parameters: dsn.map(Dsn::mail_parameters).unwrap_or_default(),
        };
        let mut flight = vec![mail];
        if self.pipelining {
            flight.extend(self.rcpt_flight(transaction, 0));
        }
        flight
    }

    /// The envelope's DSN request, when the server offers DSN.
    fn dsn_of<'e>(&self, envelope: &'e Envelope) -> Option<&'e Dsn> {
        envelope.dsn.as_ref().filter(|_| self.capabilities.has("DSN"))
    }

    /// The extension this message needs and the server does not offer: SMTPUTF8 for an
    /// address that is not ASCII, 8BITMIME for 8-bit bytes when the message cannot be
    /// converted to 7 bits (a server offering SMTPUTF8 must offer 8BITMIME too,
    /// RFC 6531 §3.1, so both are checked).
    fn missing_extension(&self, envelope: &Envelope) -> Option<Extension> {
        let mut addresses = std::iter::once(&envelope.sender).chain(&envelope.recipients);
        if let Some(address) = addresses.find(|a| self.wire_address(a).is_none()) {
            return Some(Extension::SmtpUtf8 { address: address.clone() });
        }
        match (&envelope.seven_bit, self.form_for(envelope)) {
            (Err(why), Form::SevenBit) => Some(Extension::EightBitMime { unconvertible: why.clone() }),
            _ => None,
        }
    }

    /// `address` as this server can take it: as given, or, when it lacks SMTPUTF8, in
    /// ASCII ([`ascii_address`]); `None` when it cannot go.
    fn wire_address(&self, address: &str) -> Option<String> {
        if self.capabilities.has("SMTPUTF8") {
            return Some(address.to_string());
        }
        ascii_address(address)
    }

    /// The wire form of `address` (see [`Session::wire_address`]), noting a conversion.
    fn converted(&mut self, address: &str) -> String {
        let wire = self.wire_address(address).unwrap_or_else(|| address.to_string());
        if wire != address {
            self.note(format!("the server lacks SMTPUTF8: {address} goes as {wire}"));
        }
        wire
    }

    /// The RCPT commands from `index` on that go in the next flight: one without
    /// PIPELINING, up to `MAX_FLIGHT_RCPTS` with it, followed by DATA after the last
    /// recipient when a partial delivery is acceptable.
    ///
    /// DATA waits for the RCPT replies otherwise: once DATA has its 354 the only way out
    /// is the end-of-data dot, which would deliver an empty message to the recipients
    /// accepted so far when the message must not go to anyone (some recipient refused,
    /// no `-atleastone`). With one recipient, or with `-atleastone`, a 354 after refusals
    /// means no recipient was accepted, and the dot then delivers nothing.
    fn rcpt_flight(&mut self, transaction: &mut Transaction, index: usize) -> Vec<Command> {
        let count = transaction.envelope.recipients.len();
        let end = if self.pipelining { (index + MAX_FLIGHT_RCPTS).min(count) } else { index + 1 };
        let mut flight = Vec::with_capacity(end.saturating_sub(index) + 1);
        for to in transaction.envelope.recipients.get(index..end).unwrap_or_default() {
            let parameters = self.dsn_of(&transaction.envelope).map(|d| d.rcpt_parameters(to)).unwrap_or_default();
            flight.push(Command::Rcpt(self.converted(to), parameters));
        }
        if self.pipelining && end == count && (transaction.envelope.at_least_one || count == 1) {
            flight.push(Command::Data);
            transaction.data_sent = true;
        }
        transaction.rcpts_sent = end;
        flight
    }

    /// Waits for the reply to RCPT `index`, writing its flight first if that is not done.
    fn send_rcpt(&mut self, index: usize) -> Next {
        let Some(mut transaction) = self.current.take() else { return self.close() };
        let next = if index < transaction.rcpts_sent {
            self.state = State::Rcpt { index };
            Next::Receive
        } else if index >= transaction.envelope.recipients.len() || transaction.mail_refused.is_some() {
            // Past the last recipient, or MAIL was refused and its flight is drained.
            self.current = Some(transaction);
            return self.after_rcpts();
        } else {
            let flight = self.rcpt_flight(&mut transaction, index);
            self.state = State::Rcpt { index };
            Next::Send(flight)
        };
        self.current = Some(transaction);
        next
    }

    fn handle_rcpt(&mut self, index: usize, reply: Reply) -> Next {
        let Some(transaction) = self.current.as_mut() else { return self.close() };
        match reply.code {
            // 421: the server is closing the connection; no further command can succeed.
            // After a refused MAIL that refusal is the better explanation.
            421 if transaction.mail_refused.is_some() => {
                let outcome = transaction.not_sent();
                let failure = Failure { step: Step::Rcpt, kind: FailureKind::Reply(reply) };
                return self.finish_and_lose(outcome, failure);
            }
            421 => return self.lost(FailureKind::Reply(reply)),
            // MAIL was refused: the replies of its flight mean nothing.
            _ if transaction.mail_refused.is_some() => {}
            250 | 251 => transaction.accepted += 1,
            _ => {
                // send_rcpt waits only for replies to recipients that exist.
                let Some(address) = transaction.envelope.recipients.get(index).cloned() else {
                    let line = format!("{} {}", reply.code, reply.text());
                    return self.lost(FailureKind::Protocol(super::ReplyError::Unrequested { line }));
                };
                transaction.refused.push(Refusal { address, reply });
            }
        }
        self.send_rcpt(index + 1)
    }

    /// After the last RCPT reply: DATA (its reply is next if it was pipelined), or the end
    /// of a transaction that will not send anything (RSET when MAIL was accepted).
    fn after_rcpts(&mut self) -> Next {
        let Some(transaction) = self.current.as_mut() else { return self.close() };
        if transaction.data_sent {
            self.state = State::Data;
            return Next::Receive;
        }
        if transaction.deliverable() {
            return self.send(State::Data, Command::Data);
        }
        let reset = transaction.mail_refused.is_none();
        let outcome = transaction.not_sent();
        self.finish_with(outcome, reset)
    }

    /// The reply to DATA. A pipelined DATA also gets here when the transaction failed
    /// before it; if the server then says 354 anyway, a lone dot ends the empty data
    /// section (RFC 2920 §3.1).
    fn handle_data(&mut self, reply: Reply) -> Next {
        let Some(transaction) = self.current.as_mut() else { return self.close() };
        if reply.code == 421 {
            if transaction.deliverable() {
                return self.lost(FailureKind::Reply(reply));
            }
            let outcome = transaction.not_sent();
            return self.finish_and_lose(outcome, Failure { step: Step::Data, kind: FailureKind::Reply(reply) });
        }
        if transaction.deliverable() {
            if reply.code == 354 {
                self.state = State::Message;
                return Next::SendMessage(transaction.form);
            }
            // MAIL and RCPT were accepted: the transaction is open on the server, and is
            // reset unless only QUIT follows.
            let reset = !self.quit_requested || !self.pending.is_empty();
            return self
                .finish_with(Outcome::Failed(Failure { step: Step::Data, kind: FailureKind::Reply(reply) }), reset);
        }
        let mail_refused = transaction.mail_refused.is_some();
        let accepted = transaction.accepted;
        let outcome = transaction.not_sent();
        match reply.code {
            354 if accepted == 0 => {
                transaction.decided = Some(outcome);
                self.note("DATA accepted although no recipient was: ending it empty");
                self.state = State::EmptyData;
                let mut flight = vec![Command::Dot];
                if self.quit_requested && self.pending.is_empty() {
                    self.quit_sent = true;
                    flight.push(Command::Quit);
                }
                Next::Send(flight)
            }
            // Never reached while DATA is pipelined only when a partial delivery is
            // acceptable (see `rcpt_flight`). Should that change, dropping the connection
            // leaves the data section unfinished, which delivers nothing, whereas the dot
            // would deliver an empty message.
            354 => {
                self.note("DATA accepted but the message must not be sent: closing");
                let failure = Failure { step: Step::Data, kind: FailureKind::Reply(reply) };
                self.finish_and_lose(outcome, failure)
            }
            _ => self.finish_with(outcome, !mail_refused),
        }
    }

    /// The current transaction ended, the connection stays.
    fn finish(&mut self, outcome: Outcome) -> Next {
        self.finish_with(outcome, false)
    }

    /// The current transaction ended; `reset`: RSET before anything else.
    fn finish_with(&mut self, outcome: Outcome, reset: bool) -> Next {
        self.current = None;
        self.state = State::Between { reset };
        Next::Finished(outcome)
    }

    /// The current transaction ended, and so did the connection.
    fn finish_and_lose(&mut self, outcome: Outcome, failure: Failure) -> Next {
        self.current = None;
        self.state = State::Closed;
        self.end = Some(End::Lost(failure));
        Next::Finished(outcome)
    }

    /// The connection ended with the current transaction unfinished (its message was
    /// not written in full).
    fn lost(&mut self, kind: FailureKind) -> Next {
        let step = self.step();
        self.close_with(End::Lost(Failure { step, kind }))
    }

    /// RSET after a transaction left half done, with QUIT in the same flight when the
    /// server pipelines and nothing else is left.
    fn reset(&mut self) -> Next {
        self.state = State::Rset;
        if self.pipelining && self.quit_requested && self.pending.is_empty() {
            self.quit_sent = true;
            return Next::Send(vec![Command::Rset, Command::Quit]);
        }
        Next::Send(vec![Command::Rset])
    }

    /// Ends the connection after a failed setup: a polite QUIT, unless the server already
    /// said (421) it is closing the connection.
    fn fail(&mut self, failure: Failure) -> Next {
        let closing = matches!(&failure.kind, FailureKind::Reply(r) if r.code == 421);
        if closing {
            return self.close_with(End::Failed(failure));
        }
        self.end = Some(End::Failed(failure));
        self.goodbye()
    }

    /// QUIT, or its reply when it was pipelined.
    fn goodbye(&mut self) -> Next {
        if self.quit_sent {
            self.state = State::Quit;
            return Next::Receive;
        }
        self.quit_sent = true;
        self.send(State::Quit, Command::Quit)
    }

    fn close_with(&mut self, end: End) -> Next {
        self.end = Some(end);
        self.close()
    }

    /// The end, as decided (QUIT when nothing else was); the same every time.
    fn close(&mut self) -> Next {
        self.state = State::Closed;
        Next::Close(self.end.get_or_insert(End::Quit).clone())
    }
}
