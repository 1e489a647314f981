//! Whole exchanges through the public API, as the SMTP engine drives them.

use super::*;

fn credentials() -> Credentials {
    Credentials { username: "alice".into(), password: Secret::from_text("s3cret") }
}

fn exchange(mechanism: Mechanism) -> Exchange {
    Exchange::new(mechanism, credentials(), "mail.example.org", "0123456789abcdef0123456789abcdef")
}

/// What the client sends for a 334 carrying `challenge_text`.
fn answer(exchange: &mut Exchange, challenge_text: &str) -> Result<String, Error> {
    let challenge = decode(challenge_text).unwrap();
    let response = exchange.respond(&challenge)?;
    Ok(String::from_utf8(encode(&response).expose().to_vec()).unwrap())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn all() -> impl Iterator<Item = Mechanism> {
    Mechanism::PASSWORD.into_iter().chain(Mechanism::BEARER)
}

#[test]
fn names_round_trip_case_insensitively() {
    for mechanism in all() {
        assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        assert_eq!(Mechanism::from_name(&mechanism.name().to_ascii_lowercase()), Some(mechanism));
    }
    assert_eq!(Mechanism::from_name("Cram-Md5"), Some(Mechanism::CramMd5));
    assert_eq!(Mechanism::from_name("SCRAM-SHA-256-PLUS"), None);
    assert_eq!(Mechanism::from_name("GSSAPI"), None);
    assert_eq!(Mechanism::from_name(""), None);
}

#[test]
fn the_default_orders_put_the_mechanisms_that_keep_the_secret_first() {
    assert_eq!(
        Mechanism::PASSWORD.map(Mechanism::name),
        ["SCRAM-SHA-256", "SCRAM-SHA-1", "DIGEST-MD5", "CRAM-MD5", "PLAIN", "LOGIN"]
    );
    assert_eq!(Mechanism::BEARER.map(Mechanism::name), ["OAUTHBEARER", "XOAUTH2"]);
}

#[test]
fn plain_login_and_the_bearer_mechanisms_send_the_secret_itself() {
    let senders: Vec<_> = all().filter(|m| m.sends_secret()).collect();
    assert_eq!(senders, [Mechanism::Plain, Mechanism::Login, Mechanism::OAuthBearer, Mechanism::XOAuth2]);
    let provers: Vec<_> = all().filter(|m| m.proves_server()).collect();
    assert_eq!(provers, [Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::DigestMd5]);
}

#[test]
fn plain_answers_once_then_refuses() {
    let mut plain = exchange(Mechanism::Plain);
    assert!(!plain.is_complete());
    assert_eq!(answer(&mut plain, "").unwrap(), "AGFsaWNlAHMzY3JldA==");
    assert!(plain.is_complete());
    assert_eq!(answer(&mut plain, ""), Err(Error::UnexpectedChallenge));
    assert!(!plain.is_complete());
}

#[test]
fn login_sends_user_then_password_whatever_the_prompts() {
    let mut login = exchange(Mechanism::Login);
    assert_eq!(answer(&mut login, &b64(b"User Name\0")).unwrap(), "YWxpY2U=");
    assert!(!login.is_complete());
    assert_eq!(answer(&mut login, "UGFzc3dvcmQ6").unwrap(), "czNjcmV0");
    assert!(login.is_complete());
    assert_eq!(answer(&mut login, "UGFzc3dvcmQ6"), Err(Error::UnexpectedChallenge));
}

#[test]
fn non_ascii_credentials_are_utf8_not_latin1() {
    let credentials = Credentials { username: "ä".into(), password: Secret::from_text("ä") };
    let mut login = Exchange::new(Mechanism::Login, credentials.clone(), "h", "c");
    assert_eq!(login.respond(b"").unwrap().expose(), &[0xC3, 0xA4]);
    assert_eq!(login.respond(b"").unwrap().expose(), &[0xC3, 0xA4]);
    let mut plain = Exchange::new(Mechanism::Plain, credentials, "h", "c");
    assert_eq!(encode(&plain.respond(b"").unwrap()).expose(), b"AMOkAMOk");
}

#[test]
fn cram_md5_rfc_2195_example_on_the_wire() {
    let credentials = Credentials { username: "tim".into(), password: Secret::from_text("tanstaaftanstaaf") };
    let mut cram = Exchange::new(Mechanism::CramMd5, credentials, "h", "c");
    let challenge = b64(b"<1896.697170952@postoffice.reston.mci.net>");
    assert_eq!(answer(&mut cram, &challenge).unwrap(), "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    assert!(cram.is_complete());
    assert_eq!(answer(&mut cram, &challenge), Err(Error::UnexpectedChallenge));
}

#[test]
fn digest_md5_full_exchange_with_a_cyrus_style_server() {
    let mut digest = exchange(Mechanism::DigestMd5);
    let challenge = br#"nonce="abc+/=",realm="localhost",qop="auth",charset=utf-8,algorithm=md5-sess"#;
    let response = digest.respond(challenge).unwrap();
    let line = String::from_utf8(response.expose().to_vec()).unwrap();
    assert!(line.starts_with(r#"charset=utf-8,username="alice",realm="localhost",nonce="abc+/=",nc=00000001,"#));
    assert!(line.contains(r#",cnonce="0123456789abcdef0123456789abcdef",digest-uri="smtp/mail.example.org","#));
    assert!(line.ends_with(",qop=auth"));
    assert!(!digest.is_complete());

    let rspauth = [b"rspauth=".as_slice(), digest.expected_rspauth.expose()].concat();
    assert!(digest.respond(&rspauth).unwrap().is_empty());
    assert!(digest.is_complete());
    assert_eq!(digest.respond(b""), Err(Error::UnexpectedChallenge));
}

#[test]
fn digest_md5_wrong_rspauth_is_server_not_verified() {
    let mut digest = exchange(Mechanism::DigestMd5);
    digest.respond(br#"nonce="n",qop="auth",charset=utf-8,algorithm=md5-sess"#).unwrap();
    let forged = b"rspauth=ea40f60335c427b5527b84dbabcdfffd";
    assert_eq!(digest.respond(forged), Err(Error::ServerNotVerified));
    assert!(!digest.is_complete());
    assert_eq!(digest.respond(b""), Err(Error::UnexpectedChallenge));
}

#[test]
fn digest_md5_bad_challenge_ends_the_exchange() {
    let mut digest = exchange(Mechanism::DigestMd5);
    assert!(matches!(digest.respond(b""), Err(Error::BadChallenge(_))));
    assert_eq!(digest.respond(b"nonce=\"n\",algorithm=md5-sess"), Err(Error::UnexpectedChallenge));
}

#[test]
fn error_reasons_never_contain_credentials() {
    let credentials = Credentials { username: "Usr-Жук".into(), password: Secret::from_text("Pw-Жук") };
    for challenge in [&b"nonce=\"n\",algorithm=md5-sess"[..], b"Usr-Pw-", b"nonce=\"Usr-Pw-\""] {
        let mut digest = Exchange::new(Mechanism::DigestMd5, credentials.clone(), "h", "c");
        let error = digest.respond(challenge).unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains("Usr-") && !text.contains("Pw-") && !text.contains("Жук"), "{text}");
    }
}

#[test]
fn debug_shows_no_credentials() {
    let mut digest = exchange(Mechanism::DigestMd5);
    digest.respond(br#"nonce="n",algorithm=md5-sess"#).unwrap();
    let text = format!("{digest:?}");
    assert!(!text.contains("alice") && !text.contains("s3cret"), "{text}");
    assert!(text.contains("DigestMd5"));
    assert_eq!(format!("{:?}", credentials()), r#"Credentials { username: "alice", password: *** }"#);
}

#[test]
fn errors_display() {
    assert_eq!(Error::BadChallenge("no nonce".into()).to_string(), "unusable challenge: no nonce");
    assert!(Error::ServerNotVerified.to_string().contains("rspauth"));
    assert!(Error::UnexpectedChallenge.to_string().contains("more SASL challenges"));
}

#[test]
fn decode_accepts_base64_and_rejects_the_rest() {
    assert_eq!(decode("VXNlcm5hbWU6"), Some(b"Username:".to_vec()));
    assert_eq!(decode(""), Some(Vec::new()));
    assert_eq!(decode("  YWxpY2U= \r\n"), Some(b"alice".to_vec()));
    assert_eq!(decode("YWxpY2U"), Some(b"alice".to_vec()));
    assert_eq!(decode("Username:"), None);
    assert_eq!(decode("YWxp Y2U="), None);
    assert_eq!(decode("Y"), None);
    assert_eq!(decode("YQ==YQ=="), None);
}

#[test]
fn encode_is_padded_standard_base64_on_one_line() {
    assert_eq!(encode(&Secret::from_text("\0alice\0s3cret")).expose(), b"AGFsaWNlAHMzY3JldA==");
    assert_eq!(encode(&Secret::new(vec![0xFB; 100])).expose().iter().filter(|&&b| b == b'\n').count(), 0);
    assert_eq!(encode(&Secret::new([0xFB, 0xFF])).expose(), b"+/8=");
    assert!(encode(&Secret::default()).is_empty());
}

// ---------------------------------------------------------------------------------------
// SCRAM: the RFC 5802 (SHA-1) and RFC 7677 (SHA-256) examples, then what must fail
// ---------------------------------------------------------------------------------------

/// Runs a SCRAM exchange for user "user" and password "pencil" with the client nonce and
/// server messages given (raw text); returns the client's two messages and how the
/// server-final message was taken.
fn scram(
    mechanism: Mechanism,
    cnonce: &str,
    server_first: &str,
    server_final: &str,
) -> (String, String, Result<Secret, Error>) {
    let credentials = Credentials { username: "user".into(), password: Secret::from_text("pencil") };
    let mut exchange = Exchange::new(mechanism, credentials, "mail.example.org", cnonce);
    let text = |s: Secret| String::from_utf8(s.expose().to_vec()).unwrap();
    let first = text(exchange.respond(b"").unwrap());
    let last = text(exchange.respond(server_first.as_bytes()).unwrap());
    let verdict = exchange.respond(server_final.as_bytes());
    (first, last, verdict)
}

const SHA1_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";
const SHA1_SERVER_FIRST: &str = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const SHA256_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SHA256_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

#[test]
fn scram_sha_1_matches_rfc_5802() {
    let (first, last, verdict) =
        scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    assert_eq!(first, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    assert_eq!(last, "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
    assert_eq!(verdict.unwrap(), Secret::default());
}

#[test]
fn scram_sha_256_matches_rfc_7677() {
    let (first, last, verdict) = scram(
        Mechanism::ScramSha256,
        SHA256_NONCE,
        SHA256_SERVER_FIRST,
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
    );
    assert_eq!(first, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    assert_eq!(
        last,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(verdict.unwrap(), Secret::default());
}

#[test]
fn scram_is_complete_only_after_the_server_signature_is_verified() {
    let credentials = Credentials { username: "user".into(), password: Secret::from_text("pencil") };
    let mut exchange = Exchange::new(Mechanism::ScramSha256, credentials, "h", SHA256_NONCE);
    exchange.respond(b"").unwrap();
    exchange.respond(SHA256_SERVER_FIRST.as_bytes()).unwrap();
    assert!(!exchange.is_complete(), "a 235 now would come from a server that proved nothing");
    exchange.respond(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
    assert!(exchange.is_complete());
}

#[test]
fn scram_refuses_a_wrong_server_signature() {
    let tampered = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=";
    let (_, _, verdict) = scram(Mechanism::ScramSha256, SHA256_NONCE, SHA256_SERVER_FIRST, tampered);
    assert_eq!(verdict, Err(Error::ServerNotVerified));
    let (_, _, verdict) = scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=");
    assert_eq!(verdict, Err(Error::ServerNotVerified));
}

#[test]
fn scram_reports_the_servers_error() {
    let (_, _, verdict) = scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "e=invalid-proof");
    assert_eq!(verdict, Err(Error::BadChallenge("the server refused the proof: invalid-proof".into())));
}

/// The error for a server-first message, after a normal client-first.
fn server_first_error(cnonce: &str, server_first: &str) -> Error {
    let credentials = Credentials { username: "user".into(), password: Secret::from_text("pencil") };
    let mut exchange = Exchange::new(Mechanism::ScramSha256, credentials, "h", cnonce);
    exchange.respond(b"").unwrap();
    exchange.respond(server_first.as_bytes()).unwrap_err()
}

#[test]
fn scram_refuses_weak_or_malformed_server_first_messages() {
    let cases = [
        // Fewer than 4096 iterations (RFC 7677 §4), or absurdly many.
        ("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=4095", "iteration count 4095"),
        ("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=4000000000", "iteration count 4000000000"),
        // A nonce that does not extend the client's, or is the client's alone.
        ("abc", "r=xyzdef,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),
        ("abc", "r=abc,s=QSXCR+Q6sek8bf92,i=4096", "nonce"),
        // Attributes missing, out of order, not decodable, or a mandatory extension.
        ("abc", "s=QSXCR+Q6sek8bf92,r=abcdef,i=4096", "lacks r="),
        ("abc", "r=abcdef,i=4096", "lacks s="),
        ("abc", "r=abcdef,s=!!!,i=4096", "salt"),
        ("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=many", "iteration count is not a number"),
        ("abc", "m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096", "extension"),
    ];
    for (cnonce, server_first, expected) in cases {
        let error = server_first_error(cnonce, server_first);
        assert!(
            matches!(&error, Error::BadChallenge(reason) if reason.contains(expected)),
            "{server_first}: {error:?}"
        );
    }
}

#[test]
fn scram_prepares_and_escapes_the_user_name() {
    // SASLprep maps the non-breaking space to a space; "=" and "," are escaped.
    let credentials = Credentials { username: "a=b,c\u{a0}d".into(), password: Secret::from_text("p") };
    let mut exchange = Exchange::new(Mechanism::ScramSha1, credentials, "h", "nonce");
    let first = exchange.respond(b"").unwrap();
    assert_eq!(first.expose(), b"n,,n=a=3Db=2Cc d,r=nonce");
}

#[test]
fn scram_refuses_a_user_name_saslprep_prohibits() {
    let credentials = Credentials { username: "bad\u{7}".into(), password: Secret::from_text("p") };
    let mut exchange = Exchange::new(Mechanism::ScramSha256, credentials, "h", "nonce");
    assert!(matches!(exchange.respond(b""), Err(Error::Credentials(_))));
}

// ---------------------------------------------------------------------------------------
// The bearer token mechanisms
// ---------------------------------------------------------------------------------------

fn bearer(mechanism: Mechanism, token: &str) -> Exchange {
    let credentials = Credentials { username: "user@example.com".into(), password: Secret::from_text(token) };
    Exchange::new(mechanism, credentials, "h", "n")
}

#[test]
fn oauthbearer_sends_the_rfc_7628_initial_response() {
    let mut exchange = bearer(Mechanism::OAuthBearer, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    let response = exchange.respond(b"").unwrap();
    assert_eq!(
        response.expose(),
        b"n,a=user@example.com,\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
    );
    assert!(exchange.is_complete());
}

#[test]
fn xoauth2_sends_googles_initial_response() {
    let mut exchange = bearer(Mechanism::XOAuth2, "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
    let response = exchange.respond(b"").unwrap();
    assert_eq!(
        response.expose(),
        b"user=user@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01"
    );
}

#[test]
fn a_refused_token_is_acknowledged_as_each_mechanism_requires_and_its_status_kept() {
    let error = br#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
    let mut oauthbearer = bearer(Mechanism::OAuthBearer, "tok");
    oauthbearer.respond(b"").unwrap();
    assert_eq!(oauthbearer.respond(error).unwrap().expose(), b"\x01");
    assert_eq!(oauthbearer.refusal(), Some("the server refused the token: status 401, scope https://mail.google.com/"));
    assert!(!oauthbearer.is_complete());
    let mut xoauth2 = bearer(Mechanism::XOAuth2, "tok");
    xoauth2.respond(b"").unwrap();
    assert_eq!(xoauth2.respond(b"{\"status\":\"invalid_token\"}").unwrap().expose(), b"");
    assert_eq!(xoauth2.refusal(), Some("the server refused the token: status invalid_token"));
    let mut garbled = bearer(Mechanism::XOAuth2, "tok");
    garbled.respond(b"").unwrap();
    garbled.respond(b"not json").unwrap();
    assert_eq!(garbled.refusal(), Some("the server refused the token (no details)"));
}

#[test]
fn a_token_that_could_break_the_message_is_refused() {
    for token in ["", "a\u{1}b", "two words", "a\r\nb"] {
        let mut exchange = bearer(Mechanism::OAuthBearer, token);
        assert!(matches!(exchange.respond(b""), Err(Error::Credentials(_))), "{token:?}");
    }
}

#[test]
fn no_exchange_shows_its_secrets_in_debug_output() {
    let mut exchange = bearer(Mechanism::XOAuth2, "secret-token-123");
    exchange.respond(b"").unwrap();
    assert!(!format!("{exchange:?}").contains("secret-token-123"));
    let credentials = Credentials { username: "user".into(), password: Secret::from_text("pencil") };
    let mut scram = Exchange::new(Mechanism::ScramSha256, credentials, "h", SHA256_NONCE);
    scram.respond(b"").unwrap();
    scram.respond(SHA256_SERVER_FIRST.as_bytes()).unwrap();
    assert!(!format!("{scram:?}").contains("pencil"));
}

#[test]
fn scram_follows_the_grammar_of_the_server_messages() {
    // The iteration count is a posit-number: no sign, no leading zero.
    let plus = server_first_error("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=+4096");
    assert!(matches!(plus, Error::BadChallenge(r) if r.contains("not a number")));
    let zero = server_first_error("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=04096");
    assert!(matches!(zero, Error::BadChallenge(r) if r.contains("not a number")));
    // After i= only extensions (a letter, "=", a value).
    let junk = server_first_error("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=4096,junk");
    assert!(matches!(junk, Error::BadChallenge(r) if r.contains("no extension")));
    let trailing = server_first_error("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=4096,");
    assert!(matches!(trailing, Error::BadChallenge(_)));
    // An extension is ignored.
    let (_, _, verdict) = scram(
        Mechanism::ScramSha1,
        SHA1_NONCE,
        &format!("{SHA1_SERVER_FIRST},x=ext"),
        "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
    );
    assert_eq!(verdict, Err(Error::ServerNotVerified), "an extension changes the signed message");
    // The server-final: the signature, then only extensions.
    let (_, _, verdict) = scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,");
    assert_eq!(verdict, Err(Error::ServerNotVerified));
    let (_, _, verdict) =
        scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,y=z");
    assert_eq!(verdict.unwrap(), Secret::default());
}

#[test]
fn scram_refuses_a_user_name_that_saslprep_empties() {
    let credentials = Credentials { username: "\u{ad}".into(), password: Secret::from_text("p") };
    let mut exchange = Exchange::new(Mechanism::ScramSha256, credentials, "h", "nonce");
    assert!(matches!(exchange.respond(b""), Err(Error::Credentials(_))));
}

#[test]
fn scram_ignores_any_extension_with_a_value_and_refuses_an_empty_one() {
    // RFC 5802 §7: value = 1*value-char, any UTF-8 but NUL and ",".
    let (_, _, verdict) =
        scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,y=été et = plus");
    assert_eq!(verdict.unwrap(), Secret::default());
    let (_, _, verdict) =
        scram(Mechanism::ScramSha1, SHA1_NONCE, SHA1_SERVER_FIRST, "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=");
    assert_eq!(verdict, Err(Error::ServerNotVerified));
    let empty = server_first_error("abc", "r=abcdef,s=QSXCR+Q6sek8bf92,i=4096,x=");
    assert!(matches!(empty, Error::BadChallenge(r) if r.contains("no extension")));
}
