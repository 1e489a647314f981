//! SCRAM-SHA-1 and SCRAM-SHA-256 (`tclsmtp::sasl::Exchange`): the server-first and
//! server-final messages; and the error challenge of OAUTHBEARER and XOAUTH2.
//!
//! Input layout: `server_first NUL server_final NUL username NUL password` (missing fields
//! are empty; the password is the rest and may contain NULs and need not be UTF-8; the user
//! name is taken as UTF-8, invalid bytes replaced). The server messages therefore never
//! contain NUL. The whole input is also the bearer mechanisms' error challenge, so NULs reach
//! that one.
//!
//! Each input runs both SCRAM mechanisms, each with its fixed client nonce: SHA-1 with RFC
//! 5802's `fyko+d2lbbFgONRv9qkxdawL`, SHA-256 with RFC 7677's `rOprNGfwEbeRWgbNEkqO`, so the
//! RFC examples are seeds that run to the end (and the other mechanism refuses their nonce).
//!
//! The independent model, written from RFC 5802 §5.1 and §7 and RFC 7677:
//! * client-first: exactly `n,,n=<saslname(SASLprep(user))>,r=<cnonce>`, or
//!   `Error::Credentials` when SASLprep refuses the user name or makes it empty (§5.1: the
//!   client SHOULD abort; `saslname` is `1*(...)`). SASLprep of ASCII text is
//!   modelled here (control characters refused, everything else unchanged); non-ASCII text is
//!   given to the `stringprep` crate, the same one the crate uses, so that part is not
//!   independent (and both apply the stored-string rules, see the note below).
//! * server-first: valid UTF-8; not starting with `m=` (a mandatory extension this client
//!   cannot have); `r=` the client nonce extended by at least one printable character
//!   (%x21-2B / %x2D-7E); `s=` RFC 5802 `base64` with zero pad bits (RFC 4648 §3.5 lets a
//!   decoder refuse others; the crate does); `i=` a `posit-number` (`%x31-39 *DIGIT`: no
//!   sign, no leading zero) in 4096..=1000000; then nothing or `,` extensions (`attr-val =
//!   ALPHA "=" 1*value-char`, value-char any UTF-8 character but NUL and `,`, so `=`, space,
//!   controls and non-ASCII included). The crate must take exactly what the model takes
//!   (`Error::BadChallenge` otherwise), then refuse a password SASLprep refuses
//!   (`Error::Credentials`); for the others the client-final must be
//!   `c=biws,r=<nonce>,p=<base64 proof>` with the proof recomputed here with RustCrypto's
//!   PBKDF2, HMAC, SHA-1 and SHA-256 (the crate uses OpenSSL). The model itself is checked
//!   against the RFC 5802 and RFC 7677 examples first.
//! * server-final: `v=` and the canonical base64 of the model's ServerSignature, then nothing
//!   or `,` extensions (as above), completes the exchange (the caller sees `is_complete`);
//!   anything else fails it, with `Error::ServerNotVerified` for UTF-8 text whose first
//!   attribute is `v=` (a wrong signature, or anything after it that is not extensions) and
//!   `Error::BadChallenge` otherwise (`e=`, no `v=`, not UTF-8). The fuzzed server-final
//!   is fed, then in fresh exchanges the model's right one and the right one followed by the
//!   fuzzed one's tail (from its first `,`), so extension handling is reached with a valid
//!   signature.
//!
//! PBKDF2's cost is bounded: only `i` in 4096..=8192 is computed by the model (full checks);
//! for 8193..=20000 the crate is called and its client-final checked for form (nonce, proof
//! length), and the fuzzed server-final must be refused as the model says (a right 20- or
//! 32-byte HMAC cannot be guessed) unless the crate accepts it, and only then does the model
//! compute and check the proof and signature (a seed can carry the right one); no fresh
//! exchanges there. For 20001..=1000000 the model's verdict is "accept" but the crate is not
//! called.
//! Counts outside 4096..=1000000 are refused before any PBKDF2, so they are always checked.
//!
//! The crate is expected to follow this grammar exactly, with no tolerance: a `+` or a
//! leading zero in `i=` and anything after `i=` that is not `,` extensions are
//! `Error::BadChallenge`, anything after the right `v=` that is not `,` extensions is
//! `Error::ServerNotVerified`, and a user name SASLprep makes empty is `Error::Credentials`
//! (seeds `first-plus-count`, `first-zero-padded-count`, `first-trailing-comma`,
//! `first-junk-extension`, `final-junk-after-signature`, `cred-empty-user`,
//! `cred-soft-hyphen-user`; `rfc5802-extensions` carries extensions that must be ignored).
//!
//! Not modelled, since the model uses the same stringprep crate for non-ASCII text: a user name
//! with a code point unassigned in Unicode 3.2 (e.g. U+1F600, seed `cred-emoji-user`) is refused
//! with `Error::Credentials`, though RFC 5802 §5.1 prepares the user name as a query string
//! (unassigned code points allowed; only the password is a stored string, §2.2).
//!
//! The bearer mechanisms: a user name with a control character (Unicode Cc) is refused with
//! `Error::Credentials` before anything is sent (the crate's documented choice: a `^A` would
//! start another key-value pair); for any other the first response is the exact RFC 7628 /
//! XOAUTH2 initial response for a fixed token and the fuzzed user name; the second challenge
//! is arbitrary bytes (the whole input): it must not panic, must be acknowledged with `\x01`
//! (OAUTHBEARER) or nothing (XOAUTH2), `refusal()` must be Some, shaped as the crate
//! documents, never longer than its two 200-character excerpts allow, and never contain the
//! token unless the challenge itself does (literally or possibly through a JSON escape); for
//! a simple JSON object (string members, no escapes, unique names) its status and scope are
//! predicted here. A third challenge is refused and the exchange is never complete (the
//! server refused the token).
#![no_main]

use std::cell::RefCell;
use std::sync::Once;

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tclsmtp::sasl::{Credentials, Error, Exchange, Mechanism};
use tclsmtp::secret::Secret;

const HOST: &str = "host";
/// The highest iteration count whose PBKDF2 the model computes.
const MODEL_PBKDF2_MAX: u32 = 8192;
/// The highest iteration count for which the crate is called at all.
const CRATE_PBKDF2_MAX: u32 = 20_000;
const TOKEN: &str = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";

static RFC_EXAMPLES: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    RFC_EXAMPLES.call_once(model_matches_the_rfc_examples);
    let mut fields = data.splitn(4, |&b| b == 0);
    let server_first = fields.next().unwrap_or_default();
    let server_final = fields.next().unwrap_or_default();
    let username = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let password = fields.next().unwrap_or_default();

    for kind in [Kind::Sha1, Kind::Sha256] {
        scram(kind, &username, password, server_first, server_final);
    }
    for mechanism in Mechanism::BEARER {
        bearer(mechanism, &username, data);
    }
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sha1,
    Sha256,
}

impl Kind {
    fn mechanism(self) -> Mechanism {
        match self {
            Kind::Sha1 => Mechanism::ScramSha1,
            Kind::Sha256 => Mechanism::ScramSha256,
        }
    }

    fn cnonce(self) -> &'static str {
        match self {
            Kind::Sha1 => "fyko+d2lbbFgONRv9qkxdawL",
            Kind::Sha256 => "rOprNGfwEbeRWgbNEkqO",
        }
    }

    fn output_len(self) -> usize {
        match self {
            Kind::Sha1 => 20,
            Kind::Sha256 => 32,
        }
    }
}

fn credentials(username: &str, password: &[u8]) -> Credentials {
    Credentials { username: username.to_string(), password: Secret::new(password) }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---- SCRAM ----------------------------------------------------------------------------

fn scram(kind: Kind, username: &str, password: &[u8], server_first: &[u8], server_final: &[u8]) {
    let cnonce = kind.cnonce();
    let new_exchange = || Exchange::new(kind.mechanism(), credentials(username, password), HOST, cnonce);
    let mut exchange = new_exchange();

    // Step 0: the client-first message.
    let client_first = exchange.respond(b"");
    let bare = match (client_first, model_client_first_bare(username, cnonce)) {
        (Err(Error::Credentials(_)), Err(())) => return after_failure(&mut exchange, server_first),
        (Ok(message), Ok(bare)) => {
            assert_eq!(show(message.expose()), format!("n,,{bare}"), "client-first for {username:?}");
            bare
        }
        (got, model) => panic!("client-first for {username:?}: got {got:?}, model {model:?}"),
    };
    assert!(!exchange.is_complete());

    // Step 1: the server-first message.
    let params = match model_server_first(server_first, cnonce) {
        Err(why) => {
            let got = exchange.respond(server_first);
            assert!(
                matches!(got, Err(Error::BadChallenge(_))),
                "server-first the model refuses ({why}) gave {got:?}: {:?}",
                show(server_first)
            );
            return after_failure(&mut exchange, server_final);
        }
        Ok(params) => params,
    };
    if params.iterations > CRATE_PBKDF2_MAX {
        return; // Accepted by the model; too costly to let the crate compute.
    }
    let got = exchange.respond(server_first);
    let Ok(salted_password) = model_password(password) else {
        assert!(matches!(got, Err(Error::Credentials(_))), "password SASLprep refuses: {got:?}");
        return after_failure(&mut exchange, server_final);
    };
    let client_final = match got {
        Ok(message) => message,
        Err(error) => panic!("refused a server-first the model accepts: {error:?}: {:?}", show(server_first)),
    };
    assert!(!exchange.is_complete(), "complete before the server-final message");

    // The client-final message: its form, then the proof.
    let without_proof = format!("c={},r={}", b64_encode(b"n,,"), params.nonce);
    let client_final = show(client_final.expose());
    let proof = client_final
        .strip_prefix(&without_proof)
        .and_then(|rest| rest.strip_prefix(",p="))
        .and_then(b64_decode)
        .unwrap_or_else(|| panic!("client-final {client_final:?} is not {without_proof:?},p=<base64>"));
    assert_eq!(proof.len(), kind.output_len(), "proof length in {client_final:?}");

    // Above MODEL_PBKDF2_MAX the model computes nothing unless the crate accepts the
    // server-final (only a seed that carries the right signature can make it).
    let mut got = None;
    if params.iterations > MODEL_PBKDF2_MAX {
        let result = exchange.respond(server_final);
        if result.is_err() {
            check_final(&exchange, result, Final::refused(server_final), server_final);
            return after_failure(&mut exchange, b"");
        }
        got = Some(result);
    }

    let server_first_text = std::str::from_utf8(server_first).expect("the model took it as UTF-8");
    let auth_message = format!("{bare},{server_first_text},{without_proof}");
    let keys = model_keys(kind, &salted_password, &params.salt, params.iterations, auth_message.as_bytes());
    assert_eq!(b64_encode(&proof), b64_encode(&keys.proof), "ClientProof for {:?}", show(server_first));

    // Step 2: the fuzzed server-final message.
    let got = got.unwrap_or_else(|| exchange.respond(server_final));
    let accepted = got.is_ok();
    check_final(&exchange, got, model_server_final(server_final, &keys.server_signature), server_final);
    assert_eq!(exchange.respond(b""), Err(Error::UnexpectedChallenge), "a fourth SCRAM challenge");
    assert!(!exchange.is_complete());
    if params.iterations > MODEL_PBKDF2_MAX {
        return;
    }

    // The right server-final, and the right one followed by the fuzzed one's tail, in fresh
    // exchanges that must answer exactly as the first did.
    let right = format!("v={}", b64_encode(&keys.server_signature));
    let mut finals = vec![right.clone().into_bytes()];
    if let Some(comma) = server_final.iter().position(|&b| b == b',') {
        finals.push([right.as_bytes(), &server_final[comma..]].concat());
    }
    for last in finals {
        if accepted && last == server_final {
            continue;
        }
        let mut fresh = new_exchange();
        assert!(fresh.respond(b"").is_ok());
        let again = fresh.respond(server_first).map(|m| show(m.expose()));
        assert_eq!(again.as_deref(), Ok(client_final.as_str()), "same input, same client-final");
        let got = fresh.respond(&last);
        let model = model_server_final(&last, &keys.server_signature);
        assert!(matches!(model, Final::Accept) || last != right.as_bytes(), "the model refuses its own final");
        check_final(&fresh, got, model, &last);
    }
}

/// After a failed step: the exchange is over.
fn after_failure(exchange: &mut Exchange, next: &[u8]) {
    assert!(!exchange.is_complete(), "complete after a failed step");
    assert_eq!(exchange.respond(next), Err(Error::UnexpectedChallenge), "a challenge after a failed step");
    assert!(!exchange.is_complete());
}

/// What the model expects of a server-final message (the reasons show in panics).
#[derive(Debug)]
#[allow(dead_code)]
enum Final {
    Accept,
    BadChallenge(&'static str),
    NotVerified(&'static str),
}

impl Final {
    /// How a server-final message is refused when its signature is not the right one.
    fn refused(text: &[u8]) -> Final {
        match std::str::from_utf8(text) {
            Err(_) => Final::BadChallenge("not UTF-8"),
            Ok(t) if t.starts_with("e=") => Final::BadChallenge("server error e="),
            Ok(t) if t.split(',').next().is_some_and(|first| first.starts_with("v=")) => {
                Final::NotVerified("wrong signature or not extensions after it")
            }
            Ok(_) => Final::BadChallenge("no v="),
        }
    }
}

fn check_final(exchange: &Exchange, got: Result<Secret, Error>, model: Final, input: &[u8]) {
    match (got, model) {
        (Ok(ack), Final::Accept) => {
            assert!(ack.is_empty(), "SCRAM's last response is empty");
            assert!(exchange.is_complete(), "not complete after the right server-final");
        }
        (Err(Error::BadChallenge(_)), Final::BadChallenge(_))
        | (Err(Error::ServerNotVerified), Final::NotVerified(_)) => {
            assert!(!exchange.is_complete(), "complete after a refused server-final");
        }
        (got, model) => panic!("server-final {:?}: got {got:?}, model {model:?}", show(input)),
    }
}

// ---- the model ------------------------------------------------------------------------

/// SASLprep (RFC 4013): for ASCII, prohibited output is the ASCII control characters
/// (C.2.1) and nothing is mapped or normalised; non-ASCII text goes to the stringprep crate.
fn saslprep(text: &str) -> Result<String, ()> {
    if text.is_ascii() {
        let ours = if text.bytes().any(|b| b < 0x20 || b == 0x7F) { Err(()) } else { Ok(text.to_string()) };
        let theirs = stringprep::saslprep(text).map(|s| s.into_owned()).map_err(|_| ());
        assert_eq!(ours, theirs, "the ASCII SASLprep model disagrees with the stringprep crate on {text:?}");
        ours
    } else {
        stringprep::saslprep(text).map(|s| s.into_owned()).map_err(|_| ())
    }
}

/// `n=<saslname>,r=<cnonce>`; Err when SASLprep refuses the user name or makes it empty.
fn model_client_first_bare(username: &str, cnonce: &str) -> Result<String, ()> {
    let prepared = saslprep(username)?;
    if prepared.is_empty() {
        return Err(());
    }
    let mut saslname = String::new();
    for c in prepared.chars() {
        match c {
            ',' => saslname.push_str("=2C"),
            '=' => saslname.push_str("=3D"),
            c => saslname.push(c),
        }
    }
    Ok(format!("n={saslname},r={cnonce}"))
}

/// The password as hashed: SASLprep'd when it is UTF-8, else its bytes as they are (the
/// crate's documented choice for a password that is not text).
fn model_password(password: &[u8]) -> Result<Vec<u8>, ()> {
    match std::str::from_utf8(password) {
        Ok(text) => saslprep(text).map(String::into_bytes),
        Err(_) => Ok(password.to_vec()),
    }
}

#[derive(Debug)]
struct ServerFirst {
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

/// RFC 5802 §7: `server-first-message = [reserved-mext ","] nonce "," salt ","
/// iteration-count ["," extensions]`.
fn model_server_first(message: &[u8], cnonce: &str) -> Result<ServerFirst, &'static str> {
    let text = std::str::from_utf8(message).map_err(|_| "not UTF-8")?;
    if text.starts_with("m=") {
        return Err("mandatory extension");
    }
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() < 3 {
        return Err("fewer than three attributes");
    }
    let nonce = parts[0].strip_prefix("r=").ok_or("no r=")?;
    if !nonce.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b',') {
        return Err("nonce not printable");
    }
    if !nonce.starts_with(cnonce) || nonce.len() == cnonce.len() {
        return Err("nonce does not extend the client's");
    }
    let salt = b64_decode(parts[1].strip_prefix("s=").ok_or("no s=")?).ok_or("salt not base64")?;
    let count = parts[2].strip_prefix("i=").ok_or("no i=")?;
    let iterations = posit_number(count).ok_or("iteration count not a posit-number")?;
    if !(4096..=1_000_000).contains(&iterations) {
        return Err("iteration count outside 4096..=1000000");
    }
    if !parts[3..].iter().all(|a| attr_val(a)) {
        return Err("something after i= that is not extensions");
    }
    Ok(ServerFirst { nonce: nonce.to_string(), salt, iterations: iterations as u32 })
}

/// `posit-number = %x31-39 *DIGIT`, saturating.
fn posit_number(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.is_empty() || !(b'1'..=b'9').contains(&b[0]) || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0'))))
}

/// RFC 5802 §7 `attr-val = ALPHA "=" value`, `value = 1*value-char`, `value-char =
/// value-safe-char / "="`, `value-safe-char = %x01-2B / %x2D-3C / %x3E-7F / UTF8-2 / UTF8-3
/// / UTF8-4`: any UTF-8 character but NUL and ',' (the text is UTF-8 and already split at ',').
fn attr_val(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b'=' && !b[2..].contains(&0)
}

/// `server-final-message = (server-error / verifier) ["," extensions]`.
fn model_server_final(message: &[u8], signature: &[u8]) -> Final {
    let Ok(text) = std::str::from_utf8(message) else { return Final::refused(message) };
    let (first, rest) = text.split_once(',').map_or((text, None), |(f, r)| (f, Some(r)));
    match first.strip_prefix("v=").and_then(b64_decode) {
        Some(got) if got == signature && rest.is_none_or(|r| r.split(',').all(attr_val)) => Final::Accept,
        _ => Final::refused(message),
    }
}

struct Keys {
    proof: Vec<u8>,
    server_signature: Vec<u8>,
}

/// Mechanism, password, salt, iteration count.
type SaltedKey = (Kind, Vec<u8>, Vec<u8>, u32);

thread_local! {
    /// The last few SaltedPasswords: mutations of the server-final keep the same one.
    static SALTED: RefCell<Vec<(SaltedKey, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// RFC 5802 §3: SaltedPassword = Hi(Normalize(password), salt, i); ClientKey = HMAC(SaltedPassword,
/// "Client Key"); StoredKey = H(ClientKey); ClientSignature = HMAC(StoredKey, AuthMessage);
/// ClientProof = ClientKey XOR ClientSignature; ServerKey = HMAC(SaltedPassword, "Server Key");
/// ServerSignature = HMAC(ServerKey, AuthMessage).
fn model_keys(kind: Kind, password: &[u8], salt: &[u8], iterations: u32, auth_message: &[u8]) -> Keys {
    macro_rules! keys {
        ($d:ty) => {{
            let key = (kind, password.to_vec(), salt.to_vec(), iterations);
            let cached = SALTED.with(|c| c.borrow().iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()));
            let salted = cached.unwrap_or_else(|| {
                let mut out = vec![0u8; <$d as Digest>::output_size()];
                pbkdf2::pbkdf2_hmac::<$d>(password, salt, iterations, &mut out);
                SALTED.with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() >= 4 {
                        c.remove(0);
                    }
                    c.push((key, out.clone()));
                });
                out
            });
            let mac = |key: &[u8], data: &[u8]| {
                let mut m = <Hmac<$d> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            };
            let client_key = mac(&salted, b"Client Key");
            let stored_key = <$d as Digest>::digest(&client_key).to_vec();
            let client_signature = mac(&stored_key, auth_message);
            let proof = client_key.iter().zip(&client_signature).map(|(k, s)| k ^ s).collect();
            let server_key = mac(&salted, b"Server Key");
            Keys { proof, server_signature: mac(&server_key, auth_message) }
        }};
    }
    match kind {
        Kind::Sha1 => keys!(Sha1),
        Kind::Sha256 => keys!(Sha256),
    }
}

/// The model reproduces RFC 5802 §5's and RFC 7677 §3's examples (user "user", password
/// "pencil").
fn model_matches_the_rfc_examples() {
    let examples = [
        (
            Kind::Sha1,
            "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
            "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
        ),
        (
            Kind::Sha256,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
        ),
    ];
    for (kind, server_first, client_final, server_final) in examples {
        let bare = model_client_first_bare("user", kind.cnonce()).unwrap();
        let params = model_server_first(server_first.as_bytes(), kind.cnonce()).unwrap();
        let without_proof = format!("c={},r={}", b64_encode(b"n,,"), params.nonce);
        let auth = format!("{bare},{server_first},{without_proof}");
        let keys = model_keys(kind, b"pencil", &params.salt, params.iterations, auth.as_bytes());
        assert_eq!(format!("{without_proof},p={}", b64_encode(&keys.proof)), client_final);
        assert!(matches!(model_server_final(server_final.as_bytes(), &keys.server_signature), Final::Accept));
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for k in 0..4 {
            out.push(if k <= chunk.len() { B64[(n >> (18 - 6 * k)) as usize & 63] as char } else { '=' });
        }
    }
    out
}

/// RFC 5802 §7 `base64 = *(4base64-char) [base64-char base64-char "==" / 3base64-char "="]`,
/// with zero pad bits (RFC 4648 §3.5).
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| B64.iter().position(|&x| x == c).map(|v| v as u32);
    let mut out = Vec::new();
    let quads = b.len() / 4;
    for (q, quad) in b.chunks(4).enumerate() {
        let pads = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pads > 2 || (pads > 0 && q + 1 != quads) {
            return None;
        }
        let mut n = 0u32;
        for &c in &quad[..4 - pads] {
            n = n << 6 | value(c)?;
        }
        n <<= 6 * pads;
        if n & ((1 << (8 * pads)) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pads]);
    }
    Some(out)
}

// ---- the bearer mechanisms ------------------------------------------------------------

fn bearer(mechanism: Mechanism, username: &str, challenge: &[u8]) {
    let mut exchange = Exchange::new(mechanism, credentials(username, TOKEN.as_bytes()), HOST, "unused");
    let initial = match mechanism {
        Mechanism::OAuthBearer => {
            let user = username.replace('=', "=3D").replace(',', "=2C");
            format!("n,a={user},\x01auth=Bearer {TOKEN}\x01\x01")
        }
        _ => format!("user={username}\x01auth=Bearer {TOKEN}\x01\x01"),
    };
    // A control character (Unicode Cc: U+0000-001F, U+007F-009F) in the user name is
    // refused before anything is sent: a ^A would start another key-value pair.
    if username.chars().any(|c| c < '\u{20}' || ('\u{7F}'..='\u{9F}').contains(&c)) {
        let got = exchange.respond(b"");
        assert!(matches!(got, Err(Error::Credentials(_))), "{mechanism:?} with user {username:?}: {got:?}");
        assert!(exchange.refusal().is_none());
        return after_failure(&mut exchange, challenge);
    }
    let first = exchange.respond(b"").expect("a valid token is sent");
    assert_eq!(show(first.expose()), initial, "{mechanism:?}'s initial response");
    assert!(exchange.refusal().is_none());

    let ack = exchange.respond(challenge).expect("the error challenge is acknowledged");
    let expected_ack: &[u8] = if mechanism == Mechanism::OAuthBearer { b"\x01" } else { b"" };
    assert_eq!(ack.expose(), expected_ack, "{mechanism:?}'s acknowledgement");
    let refusal = exchange.refusal().expect("the refusal is kept");

    const NO_DETAILS: &str = "the server refused the token (no details)";
    const STATUS: &str = "the server refused the token: status ";
    assert!(refusal == NO_DETAILS || refusal.starts_with(STATUS), "refusal {refusal:?}");
    assert!(refusal.chars().count() <= STATUS.len() + 200 + ", scope ".len() + 200, "refusal too long");
    if !contains(challenge, TOKEN.as_bytes()) && !challenge.contains(&b'\\') {
        assert!(!refusal.contains(TOKEN), "the refusal shows the token: {refusal:?}");
    }
    if let Some(members) = simple_json(challenge) {
        let get =
            |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v.chars().take(200).collect::<String>());
        let expected = match (get("status"), get("scope")) {
            (Some(status), Some(scope)) => format!("{STATUS}{status}, scope {scope}"),
            (Some(status), None) => format!("{STATUS}{status}"),
            (None, _) => NO_DETAILS.to_string(),
        };
        assert_eq!(refusal, expected, "refusal for {:?}", show(challenge));
    }

    assert!(!exchange.is_complete(), "complete though the server refused the token");
    assert_eq!(exchange.respond(challenge), Err(Error::UnexpectedChallenge));
    assert!(!exchange.is_complete());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A JSON object (RFC 8259) whose members are all strings without escapes, with unique
/// names; None for anything else.
fn simple_json(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let ws = |s: &str| s.trim_start_matches([' ', '\t', '\n', '\r']).to_string();
    let string = |s: &str| -> Option<(String, String)> {
        let s = s.strip_prefix('"')?;
        let end = s.find('"')?;
        let value = &s[..end];
        if value.contains('\\') || value.chars().any(|c| c < '\u{20}') {
            return None;
        }
        Some((value.to_string(), s[end + 1..].to_string()))
    };
    let mut rest = ws(text).strip_prefix('{').map(ws)?;
    let mut members: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('}') {
        return ws(after).is_empty().then_some(members);
    }
    loop {
        let (name, after) = string(&rest)?;
        let after = ws(&after);
        let after = ws(after.strip_prefix(':')?);
        let (value, after) = string(&after)?;
        if members.iter().any(|(n, _)| *n == name) {
            return None;
        }
        members.push((name, value));
        let after = ws(&after);
        if let Some(after) = after.strip_prefix(',') {
            rest = ws(after);
        } else {
            let after = after.strip_prefix('}')?;
            return ws(after).is_empty().then_some(members);
        }
    }
}
