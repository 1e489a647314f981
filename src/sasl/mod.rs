//! SASL client mechanisms for SMTP AUTH (RFC 4954): SCRAM-SHA-256 and SCRAM-SHA-1,
//! DIGEST-MD5, CRAM-MD5, PLAIN and LOGIN with a password; OAUTHBEARER and XOAUTH2 with an
//! OAuth 2.0 access token.
//!
//! Pure steppers: no I/O, no clock, no randomness (the caller supplies the client nonce of
//! DIGEST-MD5 and SCRAM). The SMTP engine sends `AUTH <name>`, then for each `334 <text>` reply it calls
//! [`decode`], [`Exchange::respond`] and [`encode`] and sends the result as one line.
//!
//! Everything that contains or derives from the password is a [`Secret`].

mod cram;
mod digest;
mod directives;
mod login;
mod oauth;
pub use oauth::check_token;
mod plain;
mod scram;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

use crate::secret::Secret;

/// A SASL mechanism this client implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 7677: SCRAM with SHA-256; the password is not sent and the server proves it
    /// knows it.
    ScramSha256,
    /// RFC 5802: the same with SHA-1.
    ScramSha1,
    /// RFC 2831: challenge-response that also proves the server knows the password.
    DigestMd5,
    /// RFC 2195: challenge-response; the password is not sent.
    CramMd5,
    /// The non-standard two-step user name / password exchange.
    Login,
    /// RFC 4616: user name and password in one response.
    Plain,
    /// RFC 7628: an OAuth 2.0 bearer token.
    OAuthBearer,
    /// Google's and Microsoft's predecessor of OAUTHBEARER.
    XOAuth2,
}

impl Mechanism {
    /// The password mechanisms in the order they are tried by default: those that keep the
    /// password from the server and make it prove it knows it first, those that send it
    /// last (PLAIN, the standard one, before LOGIN).
    pub const PASSWORD: [Mechanism; 6] = [
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::DigestMd5,
        Mechanism::CramMd5,
        Mechanism::Plain,
        Mechanism::Login,
    ];

    /// The bearer token mechanisms in the order they are tried by default: the standard
    /// one first.
    pub const BEARER: [Mechanism; 2] = [Mechanism::OAuthBearer, Mechanism::XOAuth2];

    /// The name used in EHLO's `AUTH` keyword and the `AUTH` command.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::DigestMd5 => "DIGEST-MD5",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::Login => "LOGIN",
            Mechanism::Plain => "PLAIN",
            Mechanism::OAuthBearer => "OAUTHBEARER",
            Mechanism::XOAuth2 => "XOAUTH2",
        }
    }

    /// The mechanism an EHLO `AUTH` word names (ASCII case-insensitive, as SASL names are),
    /// or `None` for one this client does not implement.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::PASSWORD.into_iter().chain(Mechanism::BEARER).find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Whether the mechanism authenticates with a bearer token rather than a password.
    pub fn is_bearer(self) -> bool {
        matches!(self, Mechanism::OAuthBearer | Mechanism::XOAuth2)
    }

    /// PLAIN and LOGIN send the password itself, the bearer mechanisms the token (only
    /// base64-encoded), so the caller may want them only over TLS.
    pub fn sends_secret(self) -> bool {
        matches!(self, Mechanism::Login | Mechanism::Plain | Mechanism::OAuthBearer | Mechanism::XOAuth2)
    }

    /// Whether success needs the server's proof that it knows the password: DIGEST-MD5's
    /// `rspauth`, SCRAM's server signature.
    pub fn proves_server(self) -> bool {
        matches!(self, Mechanism::DigestMd5 | Mechanism::ScramSha256 | Mechanism::ScramSha1)
    }

    /// How many challenges the mechanism answers when it succeeds.
    fn steps(self) -> u8 {
        match self {
            Mechanism::ScramSha256 | Mechanism::ScramSha1 => 3,
            Mechanism::DigestMd5 | Mechanism::Login => 2,
            Mechanism::CramMd5 | Mechanism::Plain | Mechanism::OAuthBearer | Mechanism::XOAuth2 => 1,
        }
    }
}

/// Who to authenticate as. The password's bytes are UTF-8 text.
#[derive(Clone)]
pub struct Credentials {
    /// The authentication identity (`authcid`), sent as UTF-8.
    pub username: String,
    /// The password, UTF-8; for the bearer mechanisms the OAuth 2.0 access token.
    pub password: Secret,
}

impl fmt::Debug for Credentials {
    /// Shows the user name (useful in diagnostics) but never the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &self.password).finish()
    }
}

/// One mechanism's client side: a pure stepper. The caller base64-decodes each 334
/// challenge, calls `respond`, base64-encodes the result and sends it as one line.
pub struct Exchange {
    mechanism: Mechanism,
    credentials: Credentials,
    host: String,
    cnonce: String,
    /// Challenges answered so far.
    steps_done: u8,
    /// A step failed: the exchange is over and must be cancelled.
    failed: bool,
    /// DIGEST-MD5: the `rspauth` the server must send, once the first step is done.
    expected_rspauth: Secret,
    scram: scram::State,
    /// A bearer mechanism's server said why it refused the token.
    refusal: Option<String>,
}

impl Exchange {
    /// `host`: the server's host name as given to the client (for DIGEST-MD5's digest-uri
    /// `smtp/<host>`); `cnonce`: fresh random client nonce chosen by the caller (the crate
    /// has no RNG of its own here; the caller uses OpenSSL's), used only by DIGEST-MD5. It
    /// must not be empty (Dovecot refuses an empty one); e.g. 16 random bytes in hex.
    pub fn new(mechanism: Mechanism, credentials: Credentials, host: &str, cnonce: &str) -> Exchange {
        Exchange {
            mechanism,
            credentials,
            host: host.to_string(),
            cnonce: cnonce.to_string(),
            steps_done: 0,
            failed: false,
            expected_rspauth: Secret::default(),
            scram: scram::State::default(),
            refusal: None,
        }
    }

    /// Why a bearer mechanism's server refused the token, once it has said so.
    pub fn refusal(&self) -> Option<&str> {
        self.refusal.as_deref()
    }

    /// The mechanism this exchange runs, for the `AUTH` command and diagnostics.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The response to the next challenge (already base64-decoded; may be empty).
    ///
    /// # Errors
    /// [`Error::UnexpectedChallenge`] past the mechanism's last step; for DIGEST-MD5,
    /// [`Error::BadChallenge`] for an unusable first challenge and [`Error::ServerNotVerified`]
    /// for a second one that is not the right `rspauth`. After an error the exchange is over
    /// (the caller cancels it with `*`): further calls return [`Error::UnexpectedChallenge`].
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Secret, Error> {
        if self.failed {
            return Err(Error::UnexpectedChallenge);
        }
        let step = self.steps_done;
        let result = match (self.mechanism, step) {
            (Mechanism::Plain, 0) => Ok(plain::response(&self.credentials)),
            (Mechanism::Login, _) => login::response(step, &self.credentials).ok_or(Error::UnexpectedChallenge),
            (Mechanism::CramMd5, 0) => Ok(cram::response(&self.credentials, challenge)),
            (Mechanism::DigestMd5, 0) => digest::first_step(&self.credentials, &self.host, &self.cnonce, challenge)
                .map(|first| {
                    self.expected_rspauth = first.expected_rspauth;
                    first.response
                }),
            (Mechanism::DigestMd5, 1) => {
                digest::verify_server(challenge, &self.expected_rspauth).map(|()| Secret::default())
            }
            (Mechanism::ScramSha256 | Mechanism::ScramSha1, 0) => {
                scram::client_first(&self.credentials, &self.cnonce, &mut self.scram)
            }
            (Mechanism::ScramSha256, 1) => {
                scram::client_final(scram::Hash::Sha256, &self.credentials, challenge, &mut self.scram)
            }
            (Mechanism::ScramSha1, 1) => {
                scram::client_final(scram::Hash::Sha1, &self.credentials, challenge, &mut self.scram)
            }
            (Mechanism::ScramSha256 | Mechanism::ScramSha1, 2) => {
                scram::verify_server(challenge, &self.scram).map(|()| Secret::default())
            }
            (Mechanism::OAuthBearer | Mechanism::XOAuth2, 0) => {
                oauth::check(&self.credentials.username, &self.credentials.password).map(|()| match self.mechanism {
                    Mechanism::OAuthBearer => {
                        oauth::oauthbearer(&self.credentials.username, &self.credentials.password)
                    }
                    _ => oauth::xoauth2(&self.credentials.username, &self.credentials.password),
                })
            }
            // The server's error, acknowledged as each mechanism requires; its 535 follows.
            (Mechanism::OAuthBearer | Mechanism::XOAuth2, 1) => {
                self.refusal = Some(oauth::refusal(challenge));
                Ok(Secret::new(if self.mechanism == Mechanism::OAuthBearer { vec![1] } else { Vec::new() }))
            }
            _ => Err(Error::UnexpectedChallenge),
        };
        match result {
            Ok(_) => self.steps_done = step.saturating_add(1),
            Err(_) => self.failed = true,
        }
        result
    }

    /// Whether every step has been answered successfully. Check it when the server says 235:
    /// for DIGEST-MD5 and SCRAM a 235 before the server's proof was verified means the
    /// server never proved that it knows the password (RFC 4954 gives 235 no room for
    /// it), so treat the server as unverified.
    pub fn is_complete(&self) -> bool {
        !self.failed && self.steps_done == self.mechanism.steps()
    }
}

impl fmt::Debug for Exchange {
    /// Progress only: no user name, password, nonce or expected `rspauth`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("mechanism", &self.mechanism)
            .field("steps_done", &self.steps_done)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Why an exchange cannot go on; the caller cancels it (`*`) and may try another mechanism.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// More challenges than the mechanism has steps.
    UnexpectedChallenge,
    /// A challenge that cannot be used (the reason; never containing credentials).
    BadChallenge(String),
    /// DIGEST-MD5's rspauth or SCRAM's server signature did not match: the server does not
    /// know the password, i.e. it is not the server it claims to be.
    ServerNotVerified,
    /// Credentials the mechanism cannot send (the reason; never containing them).
    Credentials(String),
    /// The cryptographic library failed (its message).
    Crypto(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnexpectedChallenge => {
                f.write_str("the server sent more SASL challenges than the mechanism has steps")
            }
            Error::BadChallenge(reason) => write!(f, "unusable challenge: {reason}"),
            Error::ServerNotVerified => f.write_str(
                "the server did not prove that it knows the password (DIGEST-MD5 rspauth, SCRAM server signature)",
            ),
            Error::Credentials(reason) => f.write_str(reason),
            Error::Crypto(reason) => write!(f, "cryptographic library error: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// base64 (standard alphabet, padded, one line) of a response, itself a Secret.
pub fn encode(response: &Secret) -> Secret {
    Secret::new(base64::engine::general_purpose::STANDARD.encode(response.expose()))
}

/// Decodes a 334 challenge text; None when it is not valid base64 (the caller cancels the exchange).
///
/// Surrounding whitespace is ignored and padding is optional, since some servers omit it.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text.trim_matches(|c: char| c.is_ascii_whitespace())).ok()
}

/// Lowercase hexadecimal, as the hash-based mechanisms send their digests.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(text, "{b:02x}");
    }
    text
}
