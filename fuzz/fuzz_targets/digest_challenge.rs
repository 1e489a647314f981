//! The SASL exchanges (`tclsmtp::sasl::Exchange`), above all DIGEST-MD5's challenge parser.
//!
//! Input layout: `challenge1 NUL username NUL password NUL challenge2` (missing fields are
//! empty; challenge2 is the rest and may contain NULs). The whole input is also used as a
//! DIGEST-MD5 challenge with fixed credentials, so NULs inside challenges are reached too.
//!
//! DIGEST-MD5 is checked against an independent model written from RFC 2831 and the module
//! documentation: the model decides whether the challenge is usable, and for a usable one the
//! response must be a comma list with `nc=00000001`, `qop=auth`, the challenge's nonce and first
//! realm, the right user name and digest-uri and a `response` digest recomputed here with MD5.
//! The server's correct `rspauth` (also recomputed here) must then complete the exchange, and an
//! arbitrary second challenge is accepted only if it is exactly that `rspauth`.
//! CRAM-MD5, LOGIN and PLAIN get arbitrary challenges (CRAM-MD5's HMAC is recomputed), and
//! `sasl::decode`/`sasl::encode` round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use tclsmtp::sasl::{self, Credentials, Error, Exchange, Mechanism};
use tclsmtp::secret::Secret;

const HOST: &str = "host";
const CNONCE: &str = "cnonce";

fuzz_target!(|data: &[u8]| {
    let mut fields = data.splitn(4, |&b| b == 0);
    let challenge1 = fields.next().unwrap_or_default();
    let username = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let password = fields.next().unwrap_or_default().to_vec();
    let challenge2 = fields.next().unwrap_or_default();

    digest_md5("alice", b"s3cret", data, challenge2);
    digest_md5(&username, &password, challenge1, challenge2);
    others(&username, &password, challenge1, challenge2);
    base64_round_trip(challenge1);
});

fn credentials(username: &str, password: &[u8]) -> Credentials {
    Credentials { username: username.to_string(), password: Secret::new(password) }
}

fn digest_md5(username: &str, password: &[u8], challenge: &[u8], second: &[u8]) {
    let new_exchange = || Exchange::new(Mechanism::DigestMd5, credentials(username, password), HOST, CNONCE);
    let mut exchange = new_exchange();
    let result = exchange.respond(challenge);
    let expected = model_first_step(username, password, challenge);

    let response = match (result, expected) {
        (Err(error), Err(why)) => {
            assert!(matches!(error, Error::BadChallenge(_)), "first step: {error:?} (model: {why})");
            let _ = error.to_string();
            assert_eq!(exchange.respond(second), Err(Error::UnexpectedChallenge), "after a failed step");
            assert!(!exchange.is_complete());
            return;
        }
        (Ok(_), Err(why)) => panic!("accepted a challenge the model refuses ({why}): {:?}", show(challenge)),
        (Err(error), Ok(_)) => panic!("refused a challenge the model accepts: {error:?}: {:?}", show(challenge)),
        (Ok(response), Ok(model)) => (response, model),
    };
    let (response, model) = response;
    assert!(!exchange.is_complete(), "complete after one DIGEST-MD5 step");

    // The response is a comma list of name=value with exactly the expected directives.
    let line = response.expose();
    let directives =
        parse_directives(line, false).unwrap_or_else(|why| panic!("response unparsable ({why}): {:?}", show(line)));
    let get = |name: &str| -> Option<&Value> {
        let mut found = directives.iter().filter(|(n, _)| n.as_slice() == name.as_bytes()).map(|(_, v)| v);
        let first = found.next();
        assert!(found.next().is_none(), "{name} twice in {:?}", show(line));
        first
    };
    let token = |name: &str, value: &[u8]| {
        assert_eq!(get(name), Some(&Value { quoted: false, bytes: value.to_vec() }), "{name} in {:?}", show(line));
    };
    let quoted = |name: &str, value: &[u8]| {
        assert_eq!(get(name), Some(&Value { quoted: true, bytes: value.to_vec() }), "{name} in {:?}", show(line));
    };
    token("nc", b"00000001");
    token("qop", b"auth");
    quoted("username", &model.username);
    quoted("nonce", &model.nonce);
    quoted("cnonce", CNONCE.as_bytes());
    quoted("digest-uri", format!("smtp/{HOST}").as_bytes());
    match &model.realm {
        Some(realm) => quoted("realm", realm),
        None => assert_eq!(get("realm"), None, "realm sent though none was offered: {:?}", show(line)),
    }
    if model.utf8 {
        token("charset", b"utf-8");
    } else {
        assert_eq!(get("charset"), None, "charset sent though the server did not offer it");
    }
    let expected_names: usize = 7 + usize::from(model.realm.is_some()) + usize::from(model.utf8);
    assert_eq!(directives.len(), expected_names, "directives in {:?}", show(line));
    let digests = model.digests();
    token("response", digests.response.as_bytes());

    // An arbitrary second challenge: accepted only if it is exactly the right rspauth.
    let second_result = exchange.respond(second);
    let second_ok = model_verify(second, &digests.rspauth);
    match &second_result {
        Ok(ack) => {
            assert!(second_ok, "accepted a wrong rspauth: {:?}", show(second));
            assert!(ack.is_empty(), "the rspauth acknowledgement is empty");
            assert!(exchange.is_complete());
        }
        Err(error) => {
            assert!(!second_ok, "refused the right rspauth {:?}: {error:?}", show(second));
            assert_eq!(*error, Error::ServerNotVerified);
            assert!(!exchange.is_complete());
        }
    }
    assert_eq!(exchange.respond(b""), Err(Error::UnexpectedChallenge), "a third DIGEST-MD5 challenge");

    // The right rspauth, in a fresh exchange: the same response (deterministic), then success.
    let mut fresh = new_exchange();
    assert_eq!(fresh.respond(challenge).map(|r| r.expose().to_vec()), Ok(line.to_vec()), "same input, same response");
    let rspauth = [b"rspauth=".as_slice(), digests.rspauth.as_bytes()].concat();
    assert_eq!(fresh.respond(&rspauth), Ok(Secret::default()), "the right rspauth refused");
    assert!(fresh.is_complete());
}

fn others(username: &str, password: &[u8], challenge1: &[u8], challenge2: &[u8]) {
    let creds = || credentials(username, password);

    let mut plain = Exchange::new(Mechanism::Plain, creds(), HOST, CNONCE);
    let expected = [b"\0".as_slice(), username.as_bytes(), b"\0", password].concat();
    assert_eq!(plain.respond(challenge1).map(|r| r.expose().to_vec()), Ok(expected));
    assert!(plain.is_complete());
    assert_eq!(plain.respond(challenge2), Err(Error::UnexpectedChallenge));
    assert!(!plain.is_complete());

    let mut login = Exchange::new(Mechanism::Login, creds(), HOST, CNONCE);
    assert_eq!(login.respond(challenge1).map(|r| r.expose().to_vec()), Ok(username.as_bytes().to_vec()));
    assert!(!login.is_complete());
    assert_eq!(login.respond(challenge2).map(|r| r.expose().to_vec()), Ok(password.to_vec()));
    assert!(login.is_complete());
    assert_eq!(login.respond(challenge1), Err(Error::UnexpectedChallenge));

    let mut cram = Exchange::new(Mechanism::CramMd5, creds(), HOST, CNONCE);
    let expected = format!("{username} {}", hex(&hmac_md5(password, challenge1)));
    assert_eq!(cram.respond(challenge1).map(|r| r.expose().to_vec()), Ok(expected.into_bytes()));
    assert!(cram.is_complete());
    assert_eq!(cram.respond(challenge2), Err(Error::UnexpectedChallenge));
    assert_eq!(cram.respond(challenge2), Err(Error::UnexpectedChallenge));
}

fn base64_round_trip(bytes: &[u8]) {
    let encoded = sasl::encode(&Secret::new(bytes));
    let text = std::str::from_utf8(encoded.expose()).expect("base64 is ASCII");
    assert_eq!(sasl::decode(text).as_deref(), Some(bytes), "decode(encode(x)) != x");
    assert_eq!(sasl::decode(&format!(" {} \r\n", text.trim_end_matches('='))).as_deref(), Some(bytes));
    // Arbitrary text: must not panic; whatever decodes must encode back to the same bytes
    // modulo padding and surrounding whitespace.
    let text = String::from_utf8_lossy(bytes);
    if let Some(decoded) = sasl::decode(&text) {
        let again = sasl::encode(&Secret::new(decoded));
        let again = std::str::from_utf8(again.expose()).unwrap();
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        assert_eq!(again.trim_end_matches('='), trimmed.trim_end_matches('='), "decode({text:?})");
    }
}

// ---- the model ------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct Value {
    quoted: bool,
    bytes: Vec<u8>,
}

/// RFC 2831 §7.1 / RFC 2616 §2.1 `#rule` as the crate documents it: elements separated by ',',
/// empty elements allowed, LWS (SP HT CR LF) around ',' and '='; a value is a quoted-string
/// (backslash escapes any byte; CTLs other than HT refused) or one or more bytes that are not
/// LWS, CTL, ',' or '"'. Not `strict`: CTLs are allowed inside quoted strings, for the
/// client's own response, where the caller's user name is sent as it is.
fn parse_directives(input: &[u8], strict: bool) -> Result<Vec<(Vec<u8>, Value)>, &'static str> {
    let lws = |b: u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    let ctl = |b: u8| b == 0x7F || (b < 0x20 && b != b'\t');
    let tok = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let mut out = Vec::new();
    let mut i = 0;
    let n = input.len();
    loop {
        while i < n && (lws(input[i]) || input[i] == b',') {
            i += 1;
        }
        if i == n {
            return Ok(out);
        }
        let start = i;
        while i < n && tok(input[i]) {
            i += 1;
        }
        if i == start {
            return Err("no name");
        }
        let name = input[start..i].to_vec();
        while i < n && lws(input[i]) {
            i += 1;
        }
        if i == n || input[i] != b'=' {
            return Err("no =");
        }
        i += 1;
        while i < n && lws(input[i]) {
            i += 1;
        }
        let value = if i < n && input[i] == b'"' {
            i += 1;
            let mut bytes = Vec::new();
            loop {
                match input.get(i) {
                    None => return Err("unterminated"),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let escaped = *input.get(i + 1).ok_or("unterminated")?;
                        bytes.push(escaped);
                        i += 2;
                    }
                    Some(&b) if strict && ctl(b) => return Err("ctl"),
                    Some(&b) => {
                        bytes.push(b);
                        i += 1;
                    }
                }
            }
            Value { quoted: true, bytes }
        } else {
            let start = i;
            while i < n && !lws(input[i]) && !ctl(input[i]) && input[i] != b',' && input[i] != b'"' {
                i += 1;
            }
            if i == start {
                return Err("no value");
            }
            Value { quoted: false, bytes: input[start..i].to_vec() }
        };
        out.push((name, value));
        while i < n && lws(input[i]) {
            i += 1;
        }
        if i < n && input[i] != b',' {
            return Err("no , between directives");
        }
    }
}

struct Model {
    /// As sent and hashed (UTF-8 or ISO-8859-1).
    username: Vec<u8>,
    password: Vec<u8>,
    realm: Option<Vec<u8>>,
    nonce: Vec<u8>,
    utf8: bool,
}

struct Digests {
    response: String,
    rspauth: String,
}

fn model_first_step(username: &str, password: &[u8], challenge: &[u8]) -> Result<Model, &'static str> {
    if challenge.len() > 64 * 1024 {
        return Err("too long");
    }
    let directives = parse_directives(challenge, true)?;
    let named = |name: &str| -> Vec<&Vec<u8>> {
        directives.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| &v.bytes).collect()
    };
    for once in ["nonce", "qop", "charset", "algorithm"] {
        if named(once).len() > 1 {
            return Err("twice");
        }
    }
    let nonce = named("nonce").first().map(|v| v.to_vec()).ok_or("no nonce")?;
    if nonce.is_empty() {
        return Err("empty nonce");
    }
    if let Some(qop) = named("qop").first() {
        let auth = qop.split(|&b| b == b',').any(|o| {
            let s = String::from_utf8_lossy(o);
            s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\r' | '\n')).eq_ignore_ascii_case("auth")
        });
        if !auth {
            return Err("no qop=auth");
        }
    }
    match named("algorithm").first() {
        Some(a) if a.eq_ignore_ascii_case(b"md5-sess") => {}
        _ => return Err("algorithm"),
    }
    let utf8 = match named("charset").first() {
        None => false,
        Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
        Some(_) => return Err("charset"),
    };
    if utf8 && std::str::from_utf8(challenge).is_err() {
        return Err("challenge not UTF-8");
    }
    let realm = named("realm").first().map(|v| v.to_vec());
    let (username, password) = if utf8 {
        (username.as_bytes().to_vec(), password.to_vec())
    } else {
        let latin1 =
            |text: &str| -> Option<Vec<u8>> { text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect() };
        let password = std::str::from_utf8(password).ok().and_then(latin1).ok_or("password not Latin-1")?;
        (latin1(username).ok_or("username not Latin-1")?, password)
    };
    Ok(Model { username, password, realm, nonce, utf8 })
}

impl Model {
    /// RFC 2831 §2.1.2.1 (qop=auth, nc=00000001, no authzid) and §2.1.3.
    fn digests(&self) -> Digests {
        let md5 = |parts: &[&[u8]]| -> Vec<u8> {
            let mut h = Md5::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        };
        let realm = self.realm.as_deref().unwrap_or_default();
        let inner = md5(&[&self.username, b":", realm, b":", &self.password]);
        let ha1 = hex(&md5(&[&inner, b":", &self.nonce, b":", CNONCE.as_bytes()]));
        let uri = format!("smtp/{HOST}");
        let kd = |a2: &str| {
            let ha2 = hex(&md5(&[a2.as_bytes(), uri.as_bytes()]));
            hex(&md5(&[ha1.as_bytes(), b":", &self.nonce, b":00000001:", CNONCE.as_bytes(), b":auth:", ha2.as_bytes()]))
        };
        Digests { response: kd("AUTHENTICATE:"), rspauth: kd(":") }
    }
}

/// Whether a second challenge is exactly one `rspauth` directive with the right value (hex
/// digits in any case).
fn model_verify(challenge: &[u8], rspauth: &str) -> bool {
    if challenge.len() > 64 * 1024 {
        return false;
    }
    match parse_directives(challenge, true).as_deref() {
        Ok([(name, value)]) => {
            name.eq_ignore_ascii_case(b"rspauth") && value.bytes.eq_ignore_ascii_case(rspauth.as_bytes())
        }
        _ => false,
    }
}

fn hmac_md5(key: &[u8], message: &[u8]) -> Vec<u8> {
    let hashed;
    let key = if key.len() > 64 {
        hashed = Md5::digest(key).to_vec();
        &hashed[..]
    } else {
        key
    };
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let mut inner = Md5::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Md5::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
