//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), without channel binding: the
//! client proves it knows the password without sending it, and the server proves it
//! knows it too (its signature is checked before success counts).
//!
//! The three steps: the client-first message (to the empty challenge after AUTH), the
//! client-final message with the proof (to the server-first message), and an empty
//! response once the server-final message's signature has been verified.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;

use super::{Credentials, Error};
use crate::secret::Secret;

/// The fewest PBKDF2 iterations accepted: RFC 7677 §4 asks for at least 4096; fewer make
/// a captured exchange cheap to attack.
pub(super) const MIN_ITERATIONS: u32 = 4096;

/// The most accepted: each iteration costs the client an HMAC, and a hostile server could
/// ask for billions.
pub(super) const MAX_ITERATIONS: u32 = 1_000_000;

/// The GS2 header of a client without channel binding (RFC 5802 §7: `n`, no authzid).
const GS2_HEADER: &str = "n,,";

/// The hash function of the mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha256,
}

impl Hash {
    fn digest(self) -> MessageDigest {
        match self {
            Hash::Sha1 => MessageDigest::sha1(),
            Hash::Sha256 => MessageDigest::sha256(),
        }
    }
}

/// What the client remembers between its messages.
#[derive(Default)]
pub(super) struct State {
    /// `n=user,r=cnonce`, part of the AuthMessage both sides sign.
    client_first_bare: String,
    cnonce: String,
    /// The signature the server-final message must carry.
    server_signature: Secret,
}

/// The client-first message: `n,,n=<user>,r=<cnonce>`.
pub(super) fn client_first(credentials: &Credentials, cnonce: &str, state: &mut State) -> Result<Secret, Error> {
    let user = prepared(&credentials.username, "user name")?;
    if user.is_empty() {
        return Err(Error::Credentials("the user name is empty once prepared with SASLprep".into()));
    }
    let user = saslname(&user);
    state.client_first_bare = format!("n={user},r={cnonce}");
    state.cnonce = cnonce.to_string();
    Ok(Secret::new(format!("{GS2_HEADER}{}", state.client_first_bare)))
}

/// The client-final message with the proof, for the server-first message `challenge`.
pub(super) fn client_final(
    hash_fn: Hash,
    credentials: &Credentials,
    challenge: &[u8],
    state: &mut State,
) -> Result<Secret, Error> {
    let server_first = std::str::from_utf8(challenge).map_err(|_| bad("the server-first message is not UTF-8"))?;
    let first = ServerFirst::parse(server_first)?;
    if !first.nonce.starts_with(&state.cnonce) || first.nonce.len() == state.cnonce.len() {
        return Err(bad("the server's nonce does not extend the client's"));
    }
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&first.iterations) {
        return Err(bad(&format!("iteration count {} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}", first.iterations)));
    }
    let password = prepared_secret(&credentials.password)?;
    let without_proof = format!("c={},r={}", STANDARD.encode(GS2_HEADER), first.nonce);
    let auth_message = format!("{},{server_first},{without_proof}", state.client_first_bare);

    let md = hash_fn.digest();
    let crypto = |e: openssl::error::ErrorStack| Error::Crypto(e.to_string());
    let mut salted = Secret::new(vec![0u8; md.size()]);
    openssl::pkcs5::pbkdf2_hmac(
        password.expose(),
        &first.salt,
        usize::try_from(first.iterations).unwrap_or(usize::MAX),
        md,
        salted.expose_mut(),
    )
    .map_err(crypto)?;
    let client_key = hmac(md, salted.expose(), b"Client Key").map_err(crypto)?;
    let stored_key = Secret::new(hash(md, client_key.expose()).map_err(crypto)?.to_vec());
    let client_signature = hmac(md, stored_key.expose(), auth_message.as_bytes()).map_err(crypto)?;
    let proof: Vec<u8> = client_key.expose().iter().zip(client_signature.expose()).map(|(k, s)| k ^ s).collect();
    let server_key = hmac(md, salted.expose(), b"Server Key").map_err(crypto)?;
    state.server_signature = hmac(md, server_key.expose(), auth_message.as_bytes()).map_err(crypto)?;

    let mut message = without_proof;
    let _ = write!(message, ",p={}", STANDARD.encode(&proof));
    Ok(Secret::new(message))
}

/// Checks the server-final message: `v=<signature>` must match; `e=<error>` is the
/// server's refusal.
pub(super) fn verify_server(challenge: &[u8], state: &State) -> Result<(), Error> {
    let text = std::str::from_utf8(challenge).map_err(|_| bad("the server-final message is not UTF-8"))?;
    if let Some(error) = text.strip_prefix("e=") {
        return Err(Error::BadChallenge(format!("the server refused the proof: {}", excerpt(error))));
    }
    let mut attributes = text.split(',');
    let Some(signature) = attributes.next().and_then(|v| v.strip_prefix("v=")) else {
        return Err(bad("the server-final message has no signature"));
    };
    if !attributes.all(is_extension) {
        return Err(Error::ServerNotVerified);
    }
    let signature = STANDARD.decode(signature).map_err(|_| Error::ServerNotVerified)?;
    let expected = state.server_signature.expose();
    if signature.len() != expected.len() || !openssl::memcmp::eq(&signature, expected) {
        return Err(Error::ServerNotVerified);
    }
    Ok(())
}

/// The server-first message's attributes (RFC 5802 §5.1: `r`, `s`, `i` in this order,
/// and no mandatory extension `m`).
struct ServerFirst<'a> {
    nonce: &'a str,
    salt: Vec<u8>,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(text: &'a str) -> Result<ServerFirst<'a>, Error> {
        if text.starts_with("m=") {
            return Err(bad("the server requires an extension (m=) this client lacks"));
        }
        let mut attributes = text.split(',');
        let mut next = |name: &str| {
            attributes
                .next()
                .and_then(|a| a.strip_prefix(name))
                .ok_or_else(|| bad(&format!("the server-first message lacks {name}")))
        };
        let nonce = next("r=")?;
        let salt = STANDARD.decode(next("s=")?).map_err(|_| bad("the salt is not base64"))?;
        // posit-number: no sign, no leading zero.
        let count = next("i=")?;
        let iterations = count
            .parse::<u32>()
            .ok()
            .filter(|_| count.bytes().all(|b| b.is_ascii_digit()) && !count.starts_with('0'))
            .ok_or_else(|| bad("the iteration count is not a number"))?;
        if !attributes.all(is_extension) {
            return Err(bad("the server-first message has something after i= that is no extension"));
        }
        if nonce.is_empty() || nonce.bytes().any(|b| !(0x21..=0x7e).contains(&b) || b == b',') {
            return Err(bad("the server's nonce is not printable"));
        }
        Ok(ServerFirst { nonce, salt, iterations })
    }
}

/// An extension attribute (RFC 5802 §7: `attr-val`, a letter, `=`, a value of one or more
/// UTF-8 characters other than NUL and `,`), which a client ignores.
fn is_extension(attribute: &str) -> bool {
    let mut bytes = attribute.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.next() == Some(b'=')
        && attribute.len() > 2
        && !attribute.contains('\0')
}

/// HMAC of `data` under `key`.
fn hmac(md: MessageDigest, key: &[u8], data: &[u8]) -> Result<Secret, openssl::error::ErrorStack> {
    let key = PKey::hmac(key)?;
    let mut signer = Signer::new(md, &key)?;
    signer.update(data)?;
    Ok(Secret::new(signer.sign_to_vec()?))
}

/// `what` prepared with SASLprep (RFC 4013), as RFC 5802 §5.1 asks.
fn prepared(text: &str, what: &str) -> Result<String, Error> {
    stringprep::saslprep(text)
        .map(|p| p.into_owned())
        .map_err(|_| Error::Credentials(format!("the {what} has characters SASLprep (RFC 4013) does not allow")))
}

/// The password prepared with SASLprep; a password that is not UTF-8 is used as it is.
fn prepared_secret(password: &Secret) -> Result<Secret, Error> {
    match std::str::from_utf8(password.expose()) {
        Ok(text) => prepared(text, "password").map(Secret::new),
        Err(_) => Ok(password.clone()),
    }
}

/// The user name as a `saslname`: `=` and `,` escaped (RFC 5802 §5.1).
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

fn bad(reason: &str) -> Error {
    Error::BadChallenge(reason.to_string())
}

/// At most 100 characters of what a server said, for a message.
fn excerpt(text: &str) -> String {
    text.chars().take(100).collect()
}
