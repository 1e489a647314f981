//! STARTTLS, implicit TLS and the TLS policy: every question to -tlspolicy and what each
//! answer leads to.

use super::*;

fn tls_params() -> Case {
    Case { starttls: true, recipients: vec!["c@d".into()], ..params() }
}

const DELIVERY: [&str; 5] = ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "<message>", "QUIT"];

#[test]
fn starttls_upgrades_and_forgets_what_was_announced_before() {
    let mut script =
        vec![greeting(), ehlo(&["STARTTLS", "SIZE 10"]), r(220, "go ahead"), Scripted::Handshake(Shake::Verified)];
    // After TLS the server announces no SIZE: the pre-TLS "SIZE 10" (which the 350-byte
    // message exceeds) must be forgotten.
    script.push(ehlo(&["8BITMIME"]));
    script.extend(delivery_script());
    let (sent, outcome) = run(tls_params(), &script);
    let mut expected = vec!["EHLO client.example", "STARTTLS", "<handshake>", "EHLO client.example"];
    expected.extend(DELIVERY);
    assert_eq!(sent, expected);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn starttls_is_not_sent_again_after_tls() {
    let mut script =
        vec![greeting(), ehlo(&["STARTTLS"]), r(220, "go"), Scripted::Handshake(Shake::Verified), ehlo(&["STARTTLS"])];
    script.extend(delivery_script());
    let (sent, _) = run(tls_params(), &script);
    assert_eq!(sent.iter().filter(|c| *c == "STARTTLS").count(), 1);
}

#[test]
fn starttls_refused_asks_the_policy_with_the_servers_reply() {
    let refusal = reply(454, "4.7.0 TLS not available");
    let mut script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        Scripted::Reply(refusal.clone()),
        Scripted::Policy(TlsIssue::Refused(refusal), PolicyAnswer::Insecure),
    ];
    script.extend(delivery_script());
    let (sent, outcome) = run(tls_params(), &script);
    assert_eq!(&sent[..3], ["EHLO client.example", "STARTTLS", "<policy 454>"]);
    assert_eq!(&sent[3..], DELIVERY);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn starttls_refused_and_policy_secure_makes_the_server_unusable() {
    let refusal = reply(454, "4.7.0 TLS not available");
    let script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        Scripted::Reply(refusal.clone()),
        Scripted::Policy(TlsIssue::Refused(refusal.clone()), secure("policy said so")),
    ];
    let (sent, outcome) = run(tls_params(), &script);
    assert_eq!(sent, ["EHLO client.example", "STARTTLS", "<policy 454>"]);
    let kind = FailureKind::TlsRefused { issue: TlsIssue::Refused(refusal), answer: secure("policy said so") };
    assert_eq!(outcome, unusable(Step::StartTls, kind));
}

#[test]
fn starttls_not_offered_asks_the_policy_with_530() {
    let mut script = vec![greeting(), ehlo(&["SIZE"]), Scripted::Policy(TlsIssue::NotOffered, PolicyAnswer::Insecure)];
    script.extend(delivery_script());
    let (sent, outcome) = run(tls_params(), &script);
    assert_eq!(sent[1], "<policy 530>");
    assert_eq!(TlsIssue::NotOffered.code(), 530);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn unverified_certificate_with_policy_insecure_goes_on_encrypted() {
    let issue = TlsIssue::NotVerified("self-signed certificate".into());
    let mut script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        r(220, "go"),
        Scripted::Handshake(Shake::NotVerified("self-signed certificate")),
        Scripted::Policy(issue.clone(), PolicyAnswer::Insecure),
        ehlo(&[]),
    ];
    script.extend(delivery_script());
    let (sent, outcome) = run(tls_params(), &script);
    assert_eq!(&sent[..5], ["EHLO client.example", "STARTTLS", "<handshake>", "<policy 454>", "EHLO client.example"]);
    assert_eq!(issue.diagnostic(), "certificate verify failed: self-signed certificate");
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn unverified_certificate_with_policy_secure_sends_only_quit() {
    let issue = TlsIssue::NotVerified("Hostname mismatch".into());
    let script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        r(220, "go"),
        Scripted::Handshake(Shake::NotVerified("Hostname mismatch")),
        Scripted::Policy(issue.clone(), secure("no -tlspolicy allows it")),
        bye(),
    ];
    let transcript = drive(tls_params(), &script);
    assert_eq!(transcript.sent, ["EHLO client.example", "STARTTLS", "<handshake>", "<policy 454>", "QUIT"]);
    // QUIT's reply gets QUIT's short wait.
    assert_eq!(transcript.waits.last(), Some(&(Step::Quit, secs(7))));
    let kind = FailureKind::TlsRefused { issue, answer: secure("no -tlspolicy allows it") };
    assert_eq!(transcript.outcome, unusable(Step::TlsHandshake, kind));
}

#[test]
fn failed_handshake_with_policy_secure_closes_without_quit() {
    let issue = TlsIssue::Handshake("wrong version number".into());
    let script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        r(220, "go"),
        Scripted::Handshake(Shake::Fails("wrong version number")),
        Scripted::Policy(issue.clone(), secure("no -tlspolicy allows it")),
    ];
    let (sent, outcome) = run(tls_params(), &script);
    assert_eq!(sent, ["EHLO client.example", "STARTTLS", "<handshake>", "<policy 454>"]);
    let kind = FailureKind::TlsRefused { issue, answer: secure("no -tlspolicy allows it") };
    assert_eq!(outcome, unusable(Step::TlsHandshake, kind));
}

#[test]
fn failed_handshake_with_policy_insecure_asks_for_a_plaintext_reconnect() {
    let issue = TlsIssue::Handshake("wrong version number".into());
    let script = vec![
        greeting(),
        ehlo(&["STARTTLS"]),
        r(220, "go"),
        Scripted::Handshake(Shake::Fails("wrong version number")),
        Scripted::Policy(issue, PolicyAnswer::Insecure),
    ];
    let (_, outcome) = run(tls_params(), &script);
    assert_eq!(outcome, Conclusion::RetryWithoutTls);
}

#[test]
fn implicit_tls_handshake_comes_before_the_greeting() {
    let mut session = one_message_session(tls_params()).unwrap();
    assert_eq!(session.step(), Step::Greeting);
    assert_eq!(session.tls_established(), Next::Receive);
    assert!(session.is_tls());
    // With TLS from the start, STARTTLS is never attempted.
    assert_eq!(session.handle_reply(greeting_reply()), Next::Send(vec![Command::Ehlo("client.example".into())]));
    let next = session.handle_reply(Reply::with_lines(250, vec!["mx".into(), "STARTTLS".into()]));
    let mail =
        Command::Mail { from: "a@b".into(), size: None, eight_bit: false, smtputf8: false, parameters: Vec::new() };
    assert_eq!(next, Next::Send(vec![mail]));
}

#[test]
fn implicit_tls_unverified_and_insecure_still_reads_the_greeting() {
    let mut session = one_message_session(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    assert_eq!(session.tls_failed(issue.clone()), Next::AskPolicy(issue));
    assert_eq!(session.policy_answer(Some(PolicyAnswer::Insecure)), Next::Receive);
    assert_eq!(session.step(), Step::Greeting);
}

#[test]
fn implicit_tls_unverified_and_secure_quits_after_the_greeting() {
    let mut session = one_message_session(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    let answer = secure("no -tlspolicy allows it");
    assert_eq!(session.tls_failed(issue.clone()), Next::AskPolicy(issue.clone()));
    assert_eq!(session.policy_answer(Some(answer.clone())), Next::Receive);
    // The wait for a greeting only there to be answered with QUIT is QUIT's short one.
    assert_eq!((session.step(), session.timeout()), (Step::Quit, secs(7)));
    assert_eq!(session.handle_reply(greeting_reply()), Next::Send(vec![Command::Quit]));
    let failure = Failure { step: Step::TlsHandshake, kind: FailureKind::TlsRefused { issue, answer } };
    assert_eq!(session.handle_reply(reply(221, "bye")), Next::Close(End::Unusable(failure)));
}

#[test]
fn implicit_tls_unverified_and_secure_without_greeting_closes() {
    let mut session = one_message_session(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    let answer = secure("no -tlspolicy allows it");
    session.tls_failed(issue.clone());
    assert_eq!(session.policy_answer(Some(answer.clone())), Next::Receive);
    let failure = Failure { step: Step::TlsHandshake, kind: FailureKind::TlsRefused { issue, answer } };
    let timeout = FailureKind::Timeout(Duration::from_secs(10));
    assert_eq!(session.handle_failure(timeout), Next::Close(End::Unusable(failure)));
}

#[test]
fn without_starttls_a_starttls_offer_is_ignored() {
    let mut script = vec![greeting(), ehlo(&["STARTTLS"])];
    script.extend(delivery_script());
    let (sent, _) = run(params_one_rcpt(), &script);
    assert_eq!(sent[1], "MAIL FROM:<a@b>");
}
