//! DIGEST-MD5 (RFC 2831), client side, authentication only (`qop=auth`, no integrity or
//! confidentiality layer, no authzid, one nonce count).
//!
//! Unlike tcllib, this sends `nc` unquoted, puts the server's host (not the realm) in
//! `digest-uri`, and verifies the server's `rspauth` before acknowledging it.
//!
//! Character sets: with `charset=utf-8` user name, realm and password are sent and hashed as
//! UTF-8; without it, as ISO-8859-1 (credentials that do not fit are refused). RFC 2831
//! §2.1.2.1 would also hash Latin-1-representable strings as ISO-8859-1 under `charset=utf-8`;
//! that is deliberately not done: Dovecot hashes the UTF-8 bytes as they are (its stored
//! DIGEST-MD5 credential is MD5 of the raw `user:realm:password`), and Cyrus SASL tries the
//! converted form and then the raw one, so raw UTF-8 is what both Postfix back ends accept.

use md5::{Digest, Md5};

use super::directives::{self, Directive};
use super::{hex, Credentials, Error};
use crate::secret::Secret;

/// Longer challenges are refused unparsed: real ones are a few hundred bytes.
const MAX_CHALLENGE_LEN: usize = 64 * 1024;

/// The nonce count: this client answers each nonce once.
const NONCE_COUNT: &[u8] = b"00000001";

/// The outcome of the first step.
pub(super) struct FirstStep {
    /// The `digest-response` to send.
    pub(super) response: Secret,
    /// The `rspauth` value a server that knows the password will send next.
    pub(super) expected_rspauth: Secret,
}

/// Answers the server's `digest-challenge`.
pub(super) fn first_step(
    credentials: &Credentials,
    host: &str,
    cnonce: &str,
    challenge: &[u8],
) -> Result<FirstStep, Error> {
    let challenge = Challenge::parse(challenge)?;
    let mut digest_uri = b"smtp/".to_vec();
    digest_uri.extend_from_slice(host.as_bytes());

    let (username, password) = if challenge.utf8 {
        (Secret::from_text(&credentials.username), credentials.password.clone())
    } else {
        let not_latin1 =
            || Error::BadChallenge("credentials are not Latin-1 and the server does not accept UTF-8".into());
        (
            to_latin1(credentials.username.as_bytes()).ok_or_else(not_latin1)?,
            to_latin1(credentials.password.expose()).ok_or_else(not_latin1)?,
        )
    };
    let digests = compute(&HashInput {
        username: username.expose(),
        realm: challenge.realm.as_deref().unwrap_or_default(),
        password: password.expose(),
        nonce: &challenge.nonce,
        cnonce: cnonce.as_bytes(),
        digest_uri: &digest_uri,
    });

    let realm_len = challenge.realm.as_ref().map_or(0, Vec::len);
    let capacity =
        2 * (username.expose().len() + realm_len + challenge.nonce.len() + cnonce.len()) + digest_uri.len() * 2 + 200;
    let mut line = Vec::with_capacity(capacity);
    if challenge.utf8 {
        line.extend_from_slice(b"charset=utf-8,");
    }
    line.extend_from_slice(b"username=");
    push_quoted(&mut line, username.expose());
    if let Some(realm) = &challenge.realm {
        line.extend_from_slice(b",realm=");
        push_quoted(&mut line, realm);
    }
    line.extend_from_slice(b",nonce=");
    push_quoted(&mut line, &challenge.nonce);
    line.extend_from_slice(b",nc=");
    line.extend_from_slice(NONCE_COUNT);
    line.extend_from_slice(b",cnonce=");
    push_quoted(&mut line, cnonce.as_bytes());
    line.extend_from_slice(b",digest-uri=");
    push_quoted(&mut line, &digest_uri);
    line.extend_from_slice(b",response=");
    line.extend_from_slice(digests.response.as_bytes());
    line.extend_from_slice(b",qop=auth");
    Ok(FirstStep { response: Secret::new(line), expected_rspauth: digests.rspauth })
}

/// Checks the server's `response-auth` (`rspauth=<32 hex>`, nothing else) against the value
/// computed in the first step.
pub(super) fn verify_server(challenge: &[u8], expected_rspauth: &Secret) -> Result<(), Error> {
    if challenge.len() > MAX_CHALLENGE_LEN {
        return Err(Error::ServerNotVerified);
    }
    let directives = directives::parse(challenge).map_err(|_| Error::ServerNotVerified)?;
    match directives.as_slice() {
        [Directive { name, value }] if name.eq_ignore_ascii_case(b"rspauth") => {
            if constant_time_eq(&value.to_ascii_lowercase(), expected_rspauth.expose()) {
                Ok(())
            } else {
                Err(Error::ServerNotVerified)
            }
        }
        _ => Err(Error::ServerNotVerified),
    }
}

/// What the client takes from a `digest-challenge`.
struct Challenge {
    /// The first realm offered, as sent (UTF-8 if `utf8`, else ISO-8859-1); `None` if none was.
    realm: Option<Vec<u8>>,
    nonce: Vec<u8>,
    /// The server announced `charset=utf-8`.
    utf8: bool,
}

impl Challenge {
    fn parse(input: &[u8]) -> Result<Challenge, Error> {
        let bad = |reason: &str| Error::BadChallenge(reason.to_string());
        if input.len() > MAX_CHALLENGE_LEN {
            return Err(bad("challenge longer than 64 KiB"));
        }
        let directives = directives::parse(input).map_err(bad)?;
        let (mut realm, mut nonce, mut qop, mut charset, mut algorithm) = (None, None, None, None, None);
        for Directive { name, value } in directives {
            let (slot, twice) = match name.to_ascii_lowercase().as_slice() {
                b"realm" => {
                    // Several realms may be offered; the first is as good as any.
                    realm.get_or_insert(value);
                    continue;
                }
                b"nonce" => (&mut nonce, "more than one nonce"),
                b"qop" => (&mut qop, "more than one qop"),
                b"charset" => (&mut charset, "more than one charset"),
                b"algorithm" => (&mut algorithm, "more than one algorithm"),
                // stale, maxbuf, cipher and future extensions do not matter for auth only.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(bad(twice));
            }
        }
        let nonce = nonce.ok_or_else(|| bad("no nonce"))?;
        if nonce.is_empty() {
            return Err(bad("empty nonce"));
        }
        // RFC 2831: qop-options "is optional; if not present it defaults to auth".
        if let Some(qop) = qop {
            let offers_auth = qop.split(|&b| b == b',').any(|option| option.trim_ascii().eq_ignore_ascii_case(b"auth"));
            if !offers_auth {
                return Err(bad("the server does not offer qop=auth"));
            }
        }
        match algorithm {
            Some(algorithm) if algorithm.eq_ignore_ascii_case(b"md5-sess") => {}
            Some(_) => return Err(bad("algorithm is not md5-sess")),
            None => return Err(bad("no algorithm")),
        }
        let utf8 = match charset {
            None => false,
            Some(charset) if charset.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(bad("charset is not utf-8")),
        };
        if utf8 && std::str::from_utf8(input).is_err() {
            return Err(bad("charset=utf-8 but the challenge is not UTF-8"));
        }
        Ok(Challenge { realm, nonce, utf8 })
    }
}

/// The values that go into the hashes, each already in the character set it is hashed in.
pub(super) struct HashInput<'a> {
    pub(super) username: &'a [u8],
    pub(super) realm: &'a [u8],
    pub(super) password: &'a [u8],
    pub(super) nonce: &'a [u8],
    pub(super) cnonce: &'a [u8],
    pub(super) digest_uri: &'a [u8],
}

/// The client's `response` and the server's expected `rspauth`, both lowercase hex.
pub(super) struct Digests {
    pub(super) response: String,
    pub(super) rspauth: Secret,
}

/// RFC 2831 §2.1.2.1 and §2.1.3 for `qop=auth`, nonce count 1, no authzid. Separate from
/// the service so that the RFC's IMAP example can be checked.
pub(super) fn compute(input: &HashInput<'_>) -> Digests {
    let mut secret_hash = Md5::new();
    for part in [input.username, b":", input.realm, b":", input.password] {
        secret_hash.update(part);
    }
    let mut a1 = Md5::new();
    a1.update(secret_hash.finalize());
    for part in [b":", input.nonce, b":", input.cnonce] {
        a1.update(part);
    }
    let ha1_hex = Secret::new(hex(&a1.finalize()));

    let digest = |a2_prefix: &[u8]| {
        let mut a2 = Md5::new();
        a2.update(a2_prefix);
        a2.update(input.digest_uri);
        let ha2_hex = hex(&a2.finalize());
        let mut kd = Md5::new();
        for part in [ha1_hex.expose(), b":", input.nonce, b":", NONCE_COUNT, b":", input.cnonce, b":auth:"] {
            kd.update(part);
        }
        kd.update(ha2_hex.as_bytes());
        hex(&kd.finalize())
    };
    Digests { response: digest(b"AUTHENTICATE:"), rspauth: Secret::new(digest(b":")) }
}

/// Appends `value` as a quoted-string: `"` and `\` get a backslash.
fn push_quoted(line: &mut Vec<u8>, value: &[u8]) {
    line.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            line.push(b'\\');
        }
        line.push(b);
    }
    line.push(b'"');
}

/// The ISO-8859-1 form of UTF-8 text, or `None` when it is not UTF-8 or has a character
/// beyond U+00FF.
fn to_latin1(utf8: &[u8]) -> Option<Secret> {
    let text = std::str::from_utf8(utf8).ok()?;
    if text.chars().any(|c| u32::from(c) > 0xFF) {
        return None;
    }
    let mut latin1 = Vec::with_capacity(text.len());
    latin1.extend(text.chars().filter_map(|c| u8::try_from(u32::from(c)).ok()));
    Some(Secret::new(latin1))
}

/// Equality whose time does not depend on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials(username: &str, password: &str) -> Credentials {
        Credentials { username: username.into(), password: Secret::from_text(password) }
    }

    const CYRUS: &[u8] = br#"nonce="5Tg0qX+NyPrSVl4Y5yO3v2MqfZ3uF0yqb1tHq2B2yAc=",realm="localhost",qop="auth",charset=utf-8,algorithm=md5-sess"#;

    fn bad(challenge: &[u8]) -> String {
        match first_step(&credentials("u", "p"), "h", "c", challenge) {
            Err(Error::BadChallenge(reason)) => reason,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("accepted {:?}", String::from_utf8_lossy(challenge)),
        }
    }

    fn response_line(credentials: &Credentials, challenge: &[u8]) -> String {
        let step = first_step(credentials, "mail.example.org", "OA6MHXh6VqTrRk", challenge).unwrap();
        String::from_utf8(step.response.expose().to_vec()).unwrap()
    }

    #[test]
    fn rfc_2831_imap_example() {
        let digests = compute(&HashInput {
            username: b"chris",
            realm: b"elwood.innosoft.com",
            password: b"secret",
            nonce: b"OA6MG9tEQGm2hh",
            cnonce: b"OA6MHXh6VqTrRk",
            digest_uri: b"imap/elwood.innosoft.com",
        });
        assert_eq!(digests.response, "d388dad90d4bbd760a152321f2143af7");
        assert_eq!(digests.rspauth.expose(), b"ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn smtp_response_line_for_a_cyrus_challenge() {
        let line = response_line(&credentials("alice", "s3cret"), CYRUS);
        let digests = compute(&HashInput {
            username: b"alice",
            realm: b"localhost",
            password: b"s3cret",
            nonce: b"5Tg0qX+NyPrSVl4Y5yO3v2MqfZ3uF0yqb1tHq2B2yAc=",
            cnonce: b"OA6MHXh6VqTrRk",
            digest_uri: b"smtp/mail.example.org",
        });
        assert_eq!(
            line,
            format!(
                "charset=utf-8,username=\"alice\",realm=\"localhost\",\
                 nonce=\"5Tg0qX+NyPrSVl4Y5yO3v2MqfZ3uF0yqb1tHq2B2yAc=\",nc=00000001,\
                 cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"smtp/mail.example.org\",response={},qop=auth",
                digests.response
            )
        );
    }

    #[test]
    fn the_uri_uses_the_host_not_the_realm() {
        let line = response_line(&credentials("alice", "s3cret"), CYRUS);
        assert!(line.contains(",digest-uri=\"smtp/mail.example.org\","));
        assert!(line.contains(",nc=00000001,"));
    }

    #[test]
    fn without_a_realm_none_is_sent_and_the_hash_uses_an_empty_one() {
        let challenge = br#"nonce="n",qop="auth",charset=utf-8,algorithm=md5-sess"#;
        let step = first_step(&credentials("alice", "s3cret"), "h", "c", challenge).unwrap();
        let line = String::from_utf8(step.response.expose().to_vec()).unwrap();
        assert!(!line.contains("realm="), "{line}");
        let digests = compute(&HashInput {
            username: b"alice",
            realm: b"",
            password: b"s3cret",
            nonce: b"n",
            cnonce: b"c",
            digest_uri: b"smtp/h",
        });
        assert!(line.contains(&format!(",response={},", digests.response)));
        assert_eq!(step.expected_rspauth, digests.rspauth);
    }

    #[test]
    fn an_empty_realm_is_echoed() {
        let challenge = br#"realm="",nonce="n",charset=utf-8,algorithm=md5-sess"#;
        assert!(response_line(&credentials("a", "b"), challenge).contains(",realm=\"\","));
    }

    #[test]
    fn dovecot_style_challenge_with_quoted_values_and_an_empty_realm() {
        let challenge = br#"realm="",nonce="q0Ln3sOFfCRXCQ9nU7ByXA==",qop="auth,auth-int,auth-conf",charset="utf-8",algorithm="md5-sess""#;
        let line = response_line(&credentials("a", "b"), challenge);
        assert!(
            line.starts_with(r#"charset=utf-8,username="a",realm="",nonce="q0Ln3sOFfCRXCQ9nU7ByXA==",nc=00000001,"#)
        );
    }

    #[test]
    fn the_first_of_several_realms_is_used() {
        let challenge = br#"realm="one",realm="two",nonce="n",qop="auth",algorithm=md5-sess"#;
        let line = response_line(&credentials("a", "b"), challenge);
        assert!(line.contains(",realm=\"one\","), "{line}");
        assert!(!line.contains("two"));
    }

    #[test]
    fn quoted_values_are_escaped_again() {
        let challenge = br#"realm="a\"b\\c, d",nonce="n\"1",algorithm=md5-sess,charset=utf-8"#;
        let line = response_line(&credentials(r#"us"er\"#, "p"), challenge);
        assert!(line.contains(r#"username="us\"er\\",realm="a\"b\\c, d",nonce="n\"1","#), "{line}");
    }

    #[test]
    fn spaces_around_separators_and_any_key_case() {
        let challenge =
            b" Nonce = \"n\" , QOP = \"auth-int, auth\" ,\tAlgorithm=MD5-sess , charset = UTF-8 , stale=true";
        assert!(
            response_line(&credentials("a", "b"), challenge).starts_with("charset=utf-8,username=\"a\",nonce=\"n\",")
        );
    }

    #[test]
    fn qop_may_be_absent_because_it_defaults_to_auth() {
        assert!(first_step(&credentials("a", "b"), "h", "c", b"nonce=\"n\",algorithm=md5-sess").is_ok());
    }

    #[test]
    fn unusable_challenges_are_bad_with_a_reason() {
        for (challenge, reason) in [
            (&b""[..], "no nonce"),
            (b" , ,", "no nonce"),
            (b"\x00\xff\x13garbage\x80", "expected a directive name"),
            (b"qop=\"auth\",algorithm=md5-sess", "no nonce"),
            (b"nonce=\"\",algorithm=md5-sess", "empty nonce"),
            (b"nonce=\"a\",nonce=\"b\",algorithm=md5-sess", "more than one nonce"),
            (b"nonce=\"n\",qop=\"auth-conf\",algorithm=md5-sess", "the server does not offer qop=auth"),
            (b"nonce=\"n\",qop=\"auth-int,auth-conf\",algorithm=md5-sess", "the server does not offer qop=auth"),
            (b"nonce=\"n\",qop=\"authx\",algorithm=md5-sess", "the server does not offer qop=auth"),
            (b"nonce=\"n\",algorithm=md5", "algorithm is not md5-sess"),
            (b"nonce=\"n\"", "no algorithm"),
            (b"nonce=\"n\",algorithm=md5-sess,algorithm=md5-sess", "more than one algorithm"),
            (b"nonce=\"n\",algorithm=md5-sess,charset=iso-8859-1", "charset is not utf-8"),
            (b"nonce=\"n,algorithm=md5-sess", "unterminated quoted string"),
            (b"nonce=\"n\" qop=\"auth\",algorithm=md5-sess", "expected ',' between directives"),
            (b"nonce", "expected '=' after a directive name"),
            (
                b"realm=\"r\xff\",nonce=\"n\",algorithm=md5-sess,charset=utf-8",
                "charset=utf-8 but the challenge is not UTF-8",
            ),
        ] {
            assert_eq!(bad(challenge), reason, "{:?}", String::from_utf8_lossy(challenge));
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        // A fixed xorshift stream: reproducible, covers all byte values and the syntax bytes.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"=\",\\ \tnonce realm qop auth algorithm md5-sess charset utf-8 \x00\xff\xc3";
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..(state % 80) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let byte = (state >> 24) as u8;
                input.push(if byte & 1 == 0 { alphabet[usize::from(byte >> 1) % alphabet.len()] } else { byte });
            }
            let _ = first_step(&credentials("u", "p"), "h", "c", &input);
            let _ = verify_server(&input, &Secret::from_text("x"));
        }
    }

    #[test]
    fn a_huge_challenge_is_refused_unparsed() {
        let mut huge = b"nonce=\"n\",algorithm=md5-sess,realm=\"".to_vec();
        huge.resize(1024 * 1024, b'a');
        huge.push(b'"');
        let started = std::time::Instant::now();
        assert_eq!(bad(&huge), "challenge longer than 64 KiB");
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn without_charset_credentials_beyond_latin1_are_refused() {
        let result = first_step(&credentials("ж", "p"), "h", "c", b"nonce=\"n\",algorithm=md5-sess");
        assert_eq!(
            result.err(),
            Some(Error::BadChallenge("credentials are not Latin-1 and the server does not accept UTF-8".into()))
        );
        let result = first_step(&credentials("u", "ж"), "h", "c", b"nonce=\"n\",algorithm=md5-sess");
        assert!(matches!(result, Err(Error::BadChallenge(_))));
    }

    #[test]
    fn with_charset_utf8_non_ascii_credentials_are_sent_and_hashed_as_utf8() {
        for (username, password) in [("jörg", "pässwörd"), ("jörg", "пароль")] {
            let line = response_line(&credentials(username, password), CYRUS);
            assert!(line.contains(&format!("username=\"{username}\"")));
            let utf8 = compute(&HashInput {
                username: username.as_bytes(),
                realm: b"localhost",
                password: password.as_bytes(),
                nonce: b"5Tg0qX+NyPrSVl4Y5yO3v2MqfZ3uF0yqb1tHq2B2yAc=",
                cnonce: b"OA6MHXh6VqTrRk",
                digest_uri: b"smtp/mail.example.org",
            });
            assert!(line.contains(&format!(",response={},", utf8.response)), "{line}");
        }
    }

    #[test]
    fn without_charset_credentials_are_sent_as_latin1() {
        let challenge = b"realm=\"r\xe9alm\",nonce=\"n\",algorithm=md5-sess";
        let step = first_step(&credentials("jörg", "pä"), "h", "c", challenge).unwrap();
        let line = step.response.expose();
        assert!(line.starts_with(b"username=\"j\xf6rg\",realm=\"r\xe9alm\",nonce=\"n\","));
        let digests = compute(&HashInput {
            username: b"j\xf6rg",
            realm: b"r\xe9alm",
            password: b"p\xe4",
            nonce: b"n",
            cnonce: b"c",
            digest_uri: b"smtp/h",
        });
        let expected = format!(",response={},qop=auth", digests.response);
        assert!(line.ends_with(expected.as_bytes()));
    }

    #[test]
    fn rspauth_is_verified() {
        let step = first_step(&credentials("alice", "s3cret"), "h", "c", CYRUS).unwrap();
        let good = [b"rspauth=".as_slice(), step.expected_rspauth.expose()].concat();
        assert_eq!(verify_server(&good, &step.expected_rspauth), Ok(()));
        let upper = good.to_ascii_uppercase();
        assert_eq!(verify_server(&upper, &step.expected_rspauth), Ok(()));
        let quoted = [b"rspauth=\"".as_slice(), step.expected_rspauth.expose(), b"\""].concat();
        assert_eq!(verify_server(&quoted, &step.expected_rspauth), Ok(()));
    }

    #[test]
    fn a_wrong_or_missing_rspauth_is_not_verified() {
        let step = first_step(&credentials("alice", "s3cret"), "h", "c", CYRUS).unwrap();
        let mut wrong = [b"rspauth=".as_slice(), step.expected_rspauth.expose()].concat();
        if let Some(last) = wrong.last_mut() {
            *last = if *last == b'0' { b'1' } else { b'0' };
        }
        let extra = [b"rspauth=".as_slice(), step.expected_rspauth.expose(), b",x=y"].concat();
        let huge = vec![b'a'; 1024 * 1024];
        for challenge in [&wrong[..], b"", b"rspauth=", b"rspauth=\"unterminated", b"\xff", &extra, &huge] {
            assert_eq!(verify_server(challenge, &step.expected_rspauth), Err(Error::ServerNotVerified));
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
