//! Why a step of the dialogue did not succeed.

use std::fmt;
use std::time::Duration;

use super::{Reply, ReplyError};

/// A step of the dialogue, named for what the client waits for or does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Connect,
    Greeting,
    Ehlo,
    Helo,
    Onex,
    Qued,
    /// The reply to STARTTLS.
    StartTls,
    /// The TLS handshake (after STARTTLS, or at connect with implicit TLS).
    TlsHandshake,
    /// Authentication (AUTH and its SASL exchange).
    Auth,
    Mail,
    Rcpt,
    Data,
    /// Writing the message after DATA's 354.
    Message,
    /// The reply to the final `.` of the message.
    EndOfData,
    Rset,
    Quit,
}

impl Step {
    /// The upper-case word used in `-errorcode` lists (`SMTP REPLY 553 MAIL`).
    pub fn code_word(self) -> &'static str {
        match self {
            Step::Connect => "CONNECT",
            Step::Greeting => "GREETING",
            Step::Ehlo => "EHLO",
            Step::Helo => "HELO",
            Step::Onex => "ONEX",
            Step::Qued => "QUED",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "HANDSHAKE",
            Step::Auth => "AUTH",
            Step::Mail => "MAIL",
            Step::Rcpt => "RCPT",
            Step::Data => "DATA",
            Step::Message => "MESSAGE",
            Step::EndOfData => "ENDOFDATA",
            Step::Rset => "RSET",
            Step::Quit => "QUIT",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Greeting => "greeting",
            Step::Ehlo => "EHLO",
            Step::Helo => "HELO",
            Step::Onex => "ONEX",
            Step::Qued => "QUED",
            Step::StartTls => "STARTTLS",
            Step::TlsHandshake => "TLS handshake",
            Step::Auth => "AUTH",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "message transfer",
            Step::EndOfData => "end of data",
            Step::Rset => "RSET",
            Step::Quit => "QUIT",
        })
    }
}

/// What went wrong, independent of the step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The server answered, but not with the code this step needs.
    Reply(Reply),
    /// No complete reply (or no progress writing) within this time.
    Timeout(Duration),
    /// The server closed the connection.
    Closed,
    /// A socket error, with the system's text (also name resolution and connect errors).
    Io(String),
    /// The server sent bytes that are not an SMTP reply.
    Protocol(ReplyError),
    /// The message is larger than the SIZE limit the server announced.
    TooBig { size: u64, limit: u64 },
    /// TLS could not be had as required, and the policy did not allow going on without.
    TlsRefused { issue: TlsIssue, answer: PolicyAnswer },
    /// Every AUTH mechanism failed. `reply` is the server's last refusal, if any; `detail`
    /// says what went wrong on our side (a challenge we could not answer).
    AuthFailed { reply: Option<Reply>, detail: Option<String> },
    /// The server offers AUTH, but none of the mechanisms this client may use.
    AuthUnsupported { offered: Vec<String>, allowed: Vec<&'static str> },
    /// The server's proof that it knows the password (DIGEST-MD5's rspauth, SCRAM's
    /// server signature) was wrong or missing.
    AuthServerNotVerified,
    /// The message needs a service extension the server does not announce. Found before
    /// MAIL; another server may offer it.
    ExtensionMissing(Extension),
}

/// A service extension a message cannot be sent without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extension {
    /// The message has 8-bit bytes (RFC 6152) and cannot be converted to 7 bits: why.
    EightBitMime { unconvertible: String },
    /// `address` (originator or recipient) is not ASCII (RFC 6531).
    SmtpUtf8 { address: String },
}

impl Extension {
    /// The EHLO keyword, also the word in `-errorcode` lists.
    pub fn keyword(&self) -> &'static str {
        match self {
            Extension::EightBitMime { .. } => "8BITMIME",
            Extension::SmtpUtf8 { .. } => "SMTPUTF8",
        }
    }
}

/// A TLS weakness on which `-tlspolicy` is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsIssue {
    /// STARTTLS was answered with something other than 220.
    Refused(Reply),
    /// The server does not offer STARTTLS although TLS is wanted.
    NotOffered,
    /// The handshake failed (OpenSSL's reason).
    Handshake(String),
    /// The handshake worked but the certificate did not verify (OpenSSL's reason).
    NotVerified(String),
    /// A mechanism would send the password in clear (PLAIN, LOGIN) over a connection that
    /// is neither TLS nor to a loopback address.
    EncryptionRequired(&'static str),
}

impl TlsIssue {
    /// The SMTP code the policy command receives.
    pub fn code(&self) -> u16 {
        match self {
            TlsIssue::Refused(reply) => reply.code,
            TlsIssue::NotOffered => 530,
            TlsIssue::Handshake(_) | TlsIssue::NotVerified(_) => 454,
            TlsIssue::EncryptionRequired(_) => 538,
        }
    }

    /// The diagnostic the policy command receives.
    pub fn diagnostic(&self) -> String {
        match self {
            TlsIssue::Refused(reply) => reply.text().to_string(),
            TlsIssue::NotOffered => "STARTTLS is not offered by the server".into(),
            TlsIssue::Handshake(why) => format!("TLS handshake failed: {why}"),
            TlsIssue::NotVerified(why) => format!("certificate verify failed: {why}"),
            TlsIssue::EncryptionRequired(mechanism) => {
                format!("encryption required: AUTH {mechanism} would send the password in clear")
            }
        }
    }
}

/// What `-tlspolicy` (or its absence) decided about a [`TlsIssue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAnswer {
    /// Go on without (verified) TLS.
    Insecure,
    /// Give up this server. `why` says who decided: the policy's answer or its error,
    /// or the default when there is no policy.
    Secure { why: String },
}

/// A failed step: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub kind: FailureKind,
}

impl Failure {
    /// The `-errorcode` words after `SMTP`: `REPLY 553 MAIL`, `TIMEOUT ENDOFDATA`,
    /// `CLOSED RCPT`, `IO CONNECT`, `PROTOCOL EHLO`, `SIZE 2000 1000`, `TLS VERIFY`,
    /// `EXTENSION SMTPUTF8`: what happened first, so `SMTP REPLY 5*` matches every refusal.
    /// A reply's enhanced status code, when the server gave one, is the last word:
    /// `REPLY 550 MAIL 5.7.1`, `AUTH FAILED 535 5.7.8`.
    pub fn code_words(&self) -> Vec<String> {
        let step = self.step.code_word().to_string();
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let enhanced = |r: &Reply| r.enhanced.map(|code| code.to_string()).into_iter();
        match &self.kind {
            FailureKind::Reply(r) => {
                ["REPLY".into(), r.code.to_string(), step].into_iter().chain(enhanced(r)).collect()
            }
            FailureKind::Timeout(_) => vec!["TIMEOUT".into(), step],
            FailureKind::Closed => vec!["CLOSED".into(), step],
            FailureKind::Io(_) => vec!["IO".into(), step],
            FailureKind::Protocol(_) => vec!["PROTOCOL".into(), step],
            FailureKind::TooBig { size, limit } => vec!["SIZE".into(), size.to_string(), limit.to_string()],
            // The kind of TLS trouble names its step already.
            FailureKind::TlsRefused { issue, .. } => match issue {
                TlsIssue::Refused(reply) => vec!["TLS".into(), "REFUSED".into(), reply.code.to_string()],
                TlsIssue::NotOffered => words(&["TLS", "NOTOFFERED"]),
                TlsIssue::Handshake(_) => words(&["TLS", "HANDSHAKE"]),
                TlsIssue::NotVerified(_) => words(&["TLS", "VERIFY"]),
                TlsIssue::EncryptionRequired(_) => words(&["AUTH", "ENCRYPTION"]),
            },
            FailureKind::AuthFailed { reply, .. } => {
                let code = reply.as_ref().map_or("NONE".into(), |r| r.code.to_string());
                ["AUTH".into(), "FAILED".into(), code].into_iter().chain(reply.iter().flat_map(enhanced)).collect()
            }
            FailureKind::AuthUnsupported { .. } => words(&["AUTH", "NOMECHANISM"]),
            FailureKind::AuthServerNotVerified => words(&["AUTH", "SERVER"]),
            FailureKind::ExtensionMissing(extension) => vec!["EXTENSION".into(), extension.keyword().into()],
        }
    }

    /// Whether the server was usable, only not for this send (TLS as required, an
    /// extension the message needs): such a failure's code replaces `SERVERS`.
    pub fn is_refusal_of_the_send(&self) -> bool {
        matches!(self.kind, FailureKind::TlsRefused { .. } | FailureKind::ExtensionMissing(_))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step;
        match &self.kind {
            FailureKind::Reply(reply) => write!(f, "{step} refused: {reply}"),
            FailureKind::Timeout(t) => write!(f, "no answer to {step} within {} seconds", t.as_secs_f64()),
            FailureKind::Closed => write!(f, "connection closed by the server at {step}"),
            FailureKind::Io(e) => write!(f, "{step} failed: {e}"),
            FailureKind::Protocol(e) => write!(f, "bad reply to {step}: {e}"),
            FailureKind::TooBig { size, limit } => {
                write!(f, "the message is {size} bytes but the server accepts at most {limit}")
            }
            FailureKind::TlsRefused { issue: TlsIssue::Refused(reply), answer: PolicyAnswer::Secure { why } } => {
                write!(f, "TLS refused by policy: STARTTLS answered {reply} ({why})")
            }
            FailureKind::TlsRefused {
                issue: issue @ TlsIssue::EncryptionRequired(_),
                answer: PolicyAnswer::Secure { why },
            } => {
                write!(f, "{} ({why})", issue.diagnostic())
            }
            FailureKind::TlsRefused { issue, answer: PolicyAnswer::Secure { why } } => {
                write!(f, "TLS refused by policy: {} ({why})", issue.diagnostic())
            }
            FailureKind::TlsRefused { issue, answer: PolicyAnswer::Insecure } => {
                write!(f, "TLS refused: {}", issue.diagnostic())
            }
            FailureKind::AuthFailed { reply, detail } => {
                f.write_str("authentication failed: no mechanism succeeded")?;
                if let Some(reply) = reply {
                    write!(f, "; last reply: {reply}")?;
                }
                if let Some(detail) = detail {
                    write!(f, "; {detail}")?;
                }
                Ok(())
            }
            FailureKind::AuthUnsupported { offered, allowed } => write!(
                f,
                "authentication impossible: the server offers AUTH {}, and this send may use only {}",
                offered.join(" "),
                allowed.join(" ")
            ),
            FailureKind::ExtensionMissing(Extension::EightBitMime { unconvertible }) => write!(
                f,
                "the message has 8-bit bytes, the server does not offer 8BITMIME, \
                 and the message cannot be converted to 7 bits: {unconvertible}"
            ),
            FailureKind::ExtensionMissing(Extension::SmtpUtf8 { address }) => {
                let local_part = address.rsplit_once('@').map_or(address.as_str(), |(local, _)| local);
                if local_part.is_ascii() {
                    // Only the domain is not ASCII, and IDNA found no A-label for it.
                    write!(
                        f,
                        "the domain of {address} has no IDNA A-label (it is not a valid internationalized \
                         domain name) and the server does not offer SMTPUTF8"
                    )
                } else {
                    write!(f, "the address {address} is not ASCII and the server does not offer SMTPUTF8")
                }
            }
            FailureKind::AuthServerNotVerified => f.write_str(
                "authentication failed: the server's proof (DIGEST-MD5 rspauth, SCRAM server signature) \
                 is wrong or missing, so it does not know the password: it is not the server it claims to be",
            ),
        }
    }
}
