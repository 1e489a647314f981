//! AUTH: the order mechanisms are tried in, the policy for passwords in clear, what is
//! sent on the wire and when a failed AUTH ends the attempt.

use super::*;

/// base64 of "\0alice\0s3cret", "alice", "s3cret".
const PLAIN_RESPONSE: &str = "AGFsaWNlAHMzY3JldA==";

fn hidden() -> String {
    "<credentials hidden>".to_string()
}

#[test]
fn auth_plain_on_loopback_needs_no_policy() {
    let mut script = vec![greeting(), ehlo(&["AUTH PLAIN"]), r(334, ""), r(235, "2.7.0 ok")];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(
        &sent[..4],
        ["EHLO client.example".to_string(), "AUTH PLAIN".into(), hidden(), "MAIL FROM:<a@b>".into()]
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn auth_response_on_the_wire_is_the_base64_credentials() {
    let mut session = one_message_session(auth_params(true)).unwrap();
    session.handle_reply(greeting_reply());
    session.handle_reply(Reply::with_lines(250, vec!["mx".into(), "AUTH PLAIN".into()]));
    let Next::Send(flight) = session.handle_reply(reply(334, "")) else { panic!("no response") };
    let [response] = &flight[..] else { panic!("SASL responses are not pipelined: {flight:?}") };
    let mut wire = Vec::new();
    response.encode(&mut wire);
    assert_eq!(wire, format!("{PLAIN_RESPONSE}\r\n").as_bytes());
}

#[test]
fn mechanisms_are_tried_in_order_of_preference_and_a_refusal_moves_on() {
    // PLAIN (standard) comes before LOGIN whatever the server's order; the old AUTH= form
    // counts too.
    let mut script =
        vec![greeting(), ehlo(&["AUTH=LOGIN PLAIN"]), r(535, "5.7.8 PLAIN refused"), r(334, ""), r(235, "2.7.0 ok")];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..4], ["AUTH PLAIN".to_string(), "AUTH LOGIN".into(), hidden()]);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn all_mechanisms_refused_fails_with_the_last_reply() {
    let script = vec![
        greeting(),
        ehlo(&["AUTH LOGIN PLAIN"]),
        r(504, "5.5.4 LOGIN not here"),
        r(334, ""),
        r(535, "5.7.8 bad credentials"),
        bye(),
    ];
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(sent.last().map(String::as_str), Some("QUIT"));
    let kind = FailureKind::AuthFailed { reply: Some(reply(535, "5.7.8 bad credentials")), detail: None };
    assert_eq!(outcome, failed(Step::Auth, kind));
}

#[test]
fn no_auth_offered_goes_on_unauthenticated_with_a_note() {
    let mut session = one_message_session(auth_params(true)).unwrap();
    session.handle_reply(greeting_reply());
    let next = session.handle_reply(Reply::with_lines(250, vec!["mx".into(), "SIZE".into()]));
    assert!(matches!(next, Next::Send(c) if matches!(c[..], [Command::Mail { .. }])));
    assert!(session.take_trace().iter().any(|n| n.contains("offers no AUTH")));
}

#[test]
fn only_unknown_mechanisms_offered_is_an_error() {
    let script = vec![greeting(), ehlo(&["AUTH GSSAPI NTLM"]), bye()];
    let (_, outcome) = run(auth_params(true), &script);
    let allowed = Mechanism::PASSWORD.map(Mechanism::name).to_vec();
    let kind = FailureKind::AuthUnsupported { offered: vec!["GSSAPI".into(), "NTLM".into()], allowed };
    assert_eq!(outcome, failed(Step::Auth, kind));
}

#[test]
fn cleartext_password_to_a_remote_plaintext_server_asks_the_policy_with_538() {
    let issue = TlsIssue::EncryptionRequired("PLAIN");
    let mut script = vec![
        greeting(),
        ehlo(&["AUTH PLAIN"]),
        Scripted::Policy(issue.clone(), PolicyAnswer::Insecure),
        r(334, ""),
        r(235, "ok"),
    ];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(false), &script);
    assert_eq!(&sent[1..4], ["<policy 538>".to_string(), "AUTH PLAIN".into(), hidden()]);
    assert_eq!(issue.code(), 538);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn cleartext_password_refused_by_policy_is_never_sent() {
    let issue = TlsIssue::EncryptionRequired("LOGIN");
    let script = vec![
        greeting(),
        ehlo(&["AUTH LOGIN"]),
        Scripted::Policy(issue.clone(), secure("no -tlspolicy allows it")),
        bye(),
    ];
    let (sent, outcome) = run(auth_params(false), &script);
    assert_eq!(sent, ["EHLO client.example", "<policy 538>", "QUIT"]);
    let kind = FailureKind::TlsRefused { issue, answer: secure("no -tlspolicy allows it") };
    assert_eq!(outcome, failed(Step::Auth, kind));
}

#[test]
fn auth_comes_after_starttls_and_needs_no_policy_over_tls() {
    let mut script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        r(220, "go"),
        Scripted::Handshake(Shake::Verified),
        ehlo(&["AUTH PLAIN"]),
    ];
    script.extend([r(334, ""), r(235, "ok")]);
    script.extend(delivery_script());
    let params = Case { starttls: true, ..auth_params(false) };
    let (sent, _) = run(params, &script);
    assert_eq!(
        &sent[..6],
        ["EHLO client.example", "STARTTLS", "<handshake>", "EHLO client.example", "AUTH PLAIN", "<credentials hidden>"]
    );
}

#[test]
fn a_challenge_that_is_not_base64_cancels_and_moves_on() {
    let mut script = vec![
        greeting(),
        ehlo(&["AUTH LOGIN CRAM-MD5"]),
        r(334, "not base64 at all!"),
        r(501, "5.7.0 cancelled"),
        r(334, ""),
        r(235, "ok"),
    ];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..5], ["AUTH CRAM-MD5".to_string(), "*".into(), "AUTH LOGIN".into(), hidden()]);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_temporary_auth_failure_ends_the_attempt() {
    let script = vec![greeting(), ehlo(&["AUTH PLAIN"]), r(454, "4.7.0 try later"), bye()];
    let (_, outcome) = run(auth_params(true), &script);
    assert_eq!(outcome, failed(Step::Auth, FailureKind::Reply(reply(454, "4.7.0 try later"))));
}

#[test]
fn auth_is_done_once_even_if_ehlo_is_repeated() {
    let mut script = vec![greeting(), ehlo(&["AUTH PLAIN", "ONEX"]), r(250, "onex ok"), r(334, ""), r(235, "ok")];
    script.extend(delivery_script());
    let (sent, _) = run(auth_params(true), &script);
    assert_eq!(sent.iter().filter(|c| c.starts_with("AUTH")).count(), 1);
    assert_eq!(&sent[1..3], ["ONEX", "AUTH PLAIN"]);
}

#[test]
fn digest_md5_success_without_the_servers_proof_is_refused() {
    // The server skips rspauth and says 235 at once: it never proved it knows the password.
    let challenge =
        "bm9uY2U9ImFiYyIscmVhbG09ImxvY2FsaG9zdCIscW9wPSJhdXRoIixjaGFyc2V0PXV0Zi04LGFsZ29yaXRobT1tZDUtc2Vzcw==";
    let script = vec![greeting(), ehlo(&["AUTH DIGEST-MD5"]), r(334, challenge), r(235, "ok"), bye()];
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..3], ["AUTH DIGEST-MD5".to_string(), hidden()]);
    assert_eq!(outcome, failed(Step::Auth, FailureKind::AuthServerNotVerified));
}

// ---------------------------------------------------------------------------------------
// Bearer tokens, SCRAM and -authmechanisms
// ---------------------------------------------------------------------------------------

fn with_token(token: Token) -> Case {
    let mut case = auth_params(true);
    if let Some(auth) = case.auth.as_mut() {
        auth.token = Some(token);
    }
    case
}

fn allowing(mechanisms: &[Mechanism]) -> Case {
    let mut case = auth_params(true);
    if let Some(auth) = case.auth.as_mut() {
        auth.mechanisms = mechanisms.to_vec();
    }
    case
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn with_a_token_only_the_bearer_mechanisms_are_tried_oauthbearer_first() {
    let mut script =
        vec![greeting(), ehlo(&["AUTH PLAIN SCRAM-SHA-256 XOAUTH2 OAUTHBEARER"]), r(334, ""), r(235, "ok")];
    script.extend(delivery_script());
    let (sent, outcome) = run(with_token(Token::Given(Secret::from_text("tok"))), &script);
    assert_eq!(&sent[1..3], ["AUTH OAUTHBEARER".to_string(), hidden()]);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_refused_token_fails_with_the_servers_json_status() {
    let json = b64(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
    let script = vec![
        greeting(),
        ehlo(&["AUTH OAUTHBEARER"]),
        r(334, ""),
        r(334, &json),
        r(535, "5.7.8 Username and Password not accepted"),
        bye(),
    ];
    let (sent, outcome) = run(with_token(Token::Given(Secret::from_text("tok"))), &script);
    assert_eq!(&sent[1..4], ["AUTH OAUTHBEARER".to_string(), hidden(), hidden()]);
    let detail = "AUTH OAUTHBEARER: the server refused the token: status 401, scope https://mail.google.com/";
    let kind = FailureKind::AuthFailed {
        reply: Some(reply(535, "5.7.8 Username and Password not accepted")),
        detail: Some(detail.into()),
    };
    assert_eq!(outcome, failed(Step::Auth, kind));
}

#[test]
fn a_token_command_is_asked_when_a_bearer_mechanism_starts() {
    let mut script =
        vec![greeting(), ehlo(&["AUTH XOAUTH2"]), Scripted::Token(Ok("fresh-token")), r(334, ""), r(235, "ok")];
    script.extend(delivery_script());
    let (sent, outcome) = run(with_token(Token::Ask), &script);
    assert_eq!(&sent[1..4], ["<token for alice>".to_string(), "AUTH XOAUTH2".into(), hidden()]);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_token_command_that_fails_fails_the_send() {
    let script = vec![greeting(), ehlo(&["AUTH XOAUTH2"]), Scripted::Token(Err("no refresh token")), bye()];
    let (sent, outcome) = run(with_token(Token::Ask), &script);
    assert_eq!(&sent[1..], ["<token for alice>".to_string(), "QUIT".into()]);
    let kind = FailureKind::AuthFailed { reply: None, detail: Some("-oauthcommand failed: no refresh token".into()) };
    assert_eq!(outcome, failed(Step::Auth, kind));
}

#[test]
fn authmechanisms_pins_the_mechanisms_and_their_order_and_the_trace_says_why() {
    let mut session = one_message_session(allowing(&[Mechanism::Login, Mechanism::CramMd5])).unwrap();
    session.handle_reply(greeting_reply());
    let ehlo_reply = Reply::with_lines(250, vec!["mx".into(), "AUTH SCRAM-SHA-256 CRAM-MD5 LOGIN GSSAPI".into()]);
    assert_eq!(session.handle_reply(ehlo_reply), Next::Send(vec![Command::Auth(Mechanism::Login)]));
    let trace = session.take_trace();
    assert_eq!(
        trace,
        ["    ... AUTH: the server offers SCRAM-SHA-256 CRAM-MD5 LOGIN GSSAPI; trying LOGIN, CRAM-MD5; \
          not trying SCRAM-SHA-256 (not in -authmechanisms), GSSAPI (not implemented) ..."]
    );
}

#[test]
fn a_scram_server_that_says_235_without_its_signature_is_not_trusted() {
    // The client-first and client-final go out; the server skips its final message.
    let server_first = b64("r=0123456789abcdef1SERVER,s=QSXCR+Q6sek8bf92,i=4096");
    let script =
        vec![greeting(), ehlo(&["AUTH SCRAM-SHA-256"]), r(334, ""), r(334, &server_first), r(235, "ok"), bye()];
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..4], ["AUTH SCRAM-SHA-256".to_string(), hidden(), hidden()]);
    assert_eq!(outcome, failed(Step::Auth, FailureKind::AuthServerNotVerified));
}

#[test]
fn scram_is_preferred_to_every_other_password_mechanism() {
    let script = vec![
        greeting(),
        ehlo(&["AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256"]),
        r(454, "later"),
        bye(),
    ];
    let (sent, _) = run(auth_params(true), &script);
    assert_eq!(sent[1], "AUTH SCRAM-SHA-256");
}

#[test]
fn each_exchange_has_a_nonce_of_its_own() {
    // SCRAM-SHA-256 refused, then SCRAM-SHA-1 on the same connection: two client-first
    // messages, two nonces (RFC 5802 §5.1).
    let mut session = one_message_session(auth_params(true)).unwrap();
    session.handle_reply(greeting_reply());
    session.handle_reply(Reply::with_lines(250, vec!["mx".into(), "AUTH SCRAM-SHA-1 SCRAM-SHA-256".into()]));
    let first_message = |session: &mut Session| {
        let Next::Send(c) = session.handle_reply(reply(334, "")) else { panic!("no response") };
        let mut wire = Vec::new();
        c[0].encode(&mut wire);
        String::from_utf8(wire).unwrap()
    };
    let one = first_message(&mut session);
    assert_eq!(session.handle_reply(reply(535, "no")), Next::Send(vec![Command::Auth(Mechanism::ScramSha1)]));
    let two = first_message(&mut session);
    assert_ne!(one, two);
}
