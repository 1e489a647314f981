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

#[test]
fn names_round_trip_case_insensitively() {
    for mechanism in Mechanism::STRONGEST_FIRST {
        assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        assert_eq!(Mechanism::from_name(&mechanism.name().to_ascii_lowercase()), Some(mechanism));
    }
    assert_eq!(Mechanism::from_name("Cram-Md5"), Some(Mechanism::CramMd5));
    assert_eq!(Mechanism::from_name("SCRAM-SHA-256"), None);
    assert_eq!(Mechanism::from_name(""), None);
    assert_eq!(Mechanism::STRONGEST_FIRST.map(Mechanism::name), ["DIGEST-MD5", "CRAM-MD5", "LOGIN", "PLAIN"]);
}

#[test]
fn only_plain_and_login_send_the_password() {
    let senders: Vec<_> = Mechanism::STRONGEST_FIRST.into_iter().filter(|m| m.sends_password()).collect();
    assert_eq!(senders, [Mechanism::Login, Mechanism::Plain]);
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
    assert_eq!(Error::BadChallenge("no nonce".into()).to_string(), "unusable DIGEST-MD5 challenge: no nonce");
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
