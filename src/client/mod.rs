//! Sends messages: tries each server in turn and drives the protocol engine over a
//! connection to it ([`link`]), for one message ([`send`]) or for many over the
//! connections of a [`pool`]. Plain Rust, no Tcl: it runs on worker threads.

mod link;
pub mod pool;

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::smtp::{End, Envelope, Failure, FailureKind, Outcome, Params, PolicyAnswer, Refusal, Step, TlsIssue};
use crate::spool::Spool;
use crate::transport::{Connection, TlsSetup};
use link::{Feed, Link, Stop};

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

/// Where and how to connect.
#[derive(Debug)]
pub struct Setup {
    /// Tried in order until one accepts the connection.
    pub servers: Vec<Server>,
    pub params: Params,
    /// How to do TLS; `None` when neither STARTTLS nor implicit TLS is wanted.
    pub tls: Option<TlsSetup>,
    /// TLS from the first byte (`-tlsimport`), instead of STARTTLS.
    pub implicit_tls: bool,
}

impl Setup {
    /// Server `index` of the list (one without a name if there is none such, which the
    /// option checks rule out).
    pub(crate) fn server(&self, index: usize) -> Server {
        self.servers.get(index).cloned().unwrap_or_else(|| Server { host: String::new(), port: 0 })
    }
}

/// One message and its envelope.
#[derive(Debug)]
pub struct Message {
    pub envelope: Envelope,
    /// The message as it should be stored (any line endings); encoded for DATA on the way out.
    pub spool: Spool,
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
    /// Asks `-oauthcommand` for a bearer token for `username`; why there is none.
    fn oauth_token(&mut self, username: &str) -> Result<crate::secret::Secret, String>;
    /// `written` bytes of the message (as stored) of `total` have gone out (`-progress`).
    fn progress(&mut self, _written: u64, _total: u64) {}
}

/// Sends one message over a connection of its own, trying each server in turn, until
/// done or `cancel` stops it.
pub fn send(setup: &Setup, message: &Message, hooks: &mut dyn Hooks, cancel: &Cancel) -> Result<Delivery, Error> {
    let mut feed = OneMessage { message, hooks, cancel, outcome: None };
    let envelope = &message.envelope;
    let prepare = |session: &mut crate::smtp::Session| {
        session.submit(envelope.clone()).map_err(|e| Error::Invalid(e.0))?;
        session.quit();
        Ok(())
    };
    let (link, stop) = Link::establish(setup, 0, &mut feed, &prepare)?;
    let server = setup.server(link.index);
    match (feed.outcome, stop) {
        (Some(Outcome::Delivered { refused }), _) => Ok(Delivery { sent: true, refused }),
        (Some(Outcome::NotSent { refused }), _) => Ok(Delivery { sent: false, refused }),
        (Some(Outcome::Failed(failure) | Outcome::Unusable(failure)), _) => Err(Error::Transaction { server, failure }),
        (None, Stop::Closed(End::Failed(failure) | End::Lost(failure) | End::Unusable(failure))) => {
            Err(Error::Transaction { server, failure })
        }
        (None, Stop::Cancelled) => Err(Error::Cancelled),
        // The session quits only once the message has ended.
        (None, _) => {
            let failure = Failure { step: Step::Quit, kind: FailureKind::Closed };
            Err(Error::Transaction { server, failure })
        }
    }
}

/// The one message of [`send`].
struct OneMessage<'a> {
    message: &'a Message,
    hooks: &'a mut dyn Hooks,
    cancel: &'a Cancel,
    outcome: Option<Outcome>,
}

impl Feed for OneMessage<'_> {
    fn hooks(&mut self) -> &mut dyn Hooks {
        self.hooks
    }

    fn cancel(&self) -> Option<&Cancel> {
        Some(self.cancel)
    }

    fn transfer(&mut self) -> Option<link::Transfer<'_>> {
        Some(link::Transfer { message: &self.message.spool, hooks: self.hooks, cancel: self.cancel })
    }

    fn finished(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }

    /// A server that lacks an extension the message needs: another one may have it.
    fn unusable(&mut self) -> Option<Failure> {
        match self.outcome.take() {
            Some(Outcome::Unusable(failure)) => Some(failure),
            outcome => {
                self.outcome = outcome;
                None
            }
        }
    }
}
