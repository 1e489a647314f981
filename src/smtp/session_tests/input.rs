//! The engine's rules for the bytes it receives: replies split anywhere, pipelined
//! replies in one read, bytes that no command asked for (left over before a command,
//! after STARTTLS's 220, during the message, while idle), and the defaults when no
//! `-tlspolicy` answers.

use super::*;

/// A session that has read the greeting and is about to send EHLO.
fn greeted(case: Case) -> Session {
    let mut session = one_message_session(case).expect("valid");
    let next = session.receive(b"220 mx ready\r\n");
    assert_eq!(next, Some(Next::Send(vec![Command::Ehlo("client.example".into())])));
    session
}

#[test]
fn a_reply_split_at_every_byte_is_read_once_whole() {
    let mut session = one_message_session(params()).expect("valid");
    let greeting = b"220-mx.example.org\r\n220 ESMTP ready\r\n";
    for (i, byte) in greeting.iter().enumerate() {
        let next = session.receive(std::slice::from_ref(byte));
        if i + 1 < greeting.len() {
            assert_eq!(next, None, "complete after {} bytes?", i + 1);
        } else {
            assert!(matches!(next, Some(Next::Send(_))), "{next:?}");
        }
    }
    assert_eq!(session.take_trace(), strings(&["<-- 220-mx.example.org", "<-- 220 ESMTP ready"]));
}

#[test]
fn pipelined_replies_in_one_read_are_taken_one_at_a_time() {
    let mut session = greeted(to(&["c@d"]));
    assert!(matches!(session.receive(b"250-mx\r\n250 PIPELINING\r\n"), Some(Next::Send(_))));
    // MAIL, RCPT and DATA went in one flight; their replies come in one read.
    assert_eq!(session.receive(b"250 ok\r\n250 ok\r\n354 go\r\n"), Some(Next::Receive));
    assert_eq!(session.receive(b""), Some(Next::Receive));
    assert_eq!(session.receive(b""), Some(Next::SendMessage(Form::AsIs)));
}

#[test]
fn bytes_left_over_when_a_command_is_due_end_the_connection() {
    let mut session = one_message_session(params()).expect("valid");
    let next = session.receive(b"220 ready\r\n250 early\r\n");
    let early = FailureKind::Protocol(ReplyError::Unrequested { line: "250 early".into() });
    assert_eq!(next, Some(Next::Close(End::Unusable(Failure { step: Step::Ehlo, kind: early }))));
}

#[test]
fn bytes_after_the_starttls_go_ahead_are_dropped() {
    let mut session = greeted(Case { starttls: true, ..to(&["c@d"]) });
    assert!(matches!(session.receive(b"250-mx\r\n250 STARTTLS\r\n"), Some(Next::Send(_))));
    assert_eq!(session.receive(b"220 go ahead\r\n250 injected\r\n"), Some(Next::StartTls));
    // Had the injected bytes stayed, EHLO after the handshake would fail as above.
    assert_eq!(session.tls_established(), Next::Send(vec![Command::Ehlo("client.example".into())]));
    assert!(matches!(session.receive(b"250 mx\r\n"), Some(Next::Send(_))));
}

#[test]
fn a_word_from_the_server_during_the_message_keeps_the_dot_back() {
    let mut session = greeted(to(&["c@d"]));
    for reply in [&b"250 mx\r\n"[..], b"250 ok\r\n", b"250 ok\r\n"] {
        assert!(matches!(session.receive(reply), Some(Next::Send(_))));
    }
    assert_eq!(session.receive(b"354 go\r\n"), Some(Next::SendMessage(Form::AsIs)));
    let next = session.finish_message(b"554 5.7.0 go away\r\n");
    let early = FailureKind::Protocol(ReplyError::Unrequested { line: "554 5.7.0 go away".into() });
    assert_eq!(next, Err(Next::Close(End::Lost(Failure { step: Step::Message, kind: early }))));
}

#[test]
fn a_421_while_idle_loses_the_connection_as_the_server_said() {
    let (params, _) = params().split();
    let mut session = Session::new(params).expect("valid");
    assert!(matches!(session.receive(b"220 ready\r\n"), Some(Next::Send(_))));
    assert_eq!(session.receive(b"250 mx\r\n"), Some(Next::Idle));
    let next = session.receive(b"421 4.4.2 idle too long\r\n");
    let closing = FailureKind::Reply(reply(421, "4.4.2 idle too long"));
    assert_eq!(next, Some(Next::Close(End::Lost(Failure { step: Step::Mail, kind: closing }))));
}

#[test]
fn anything_else_while_idle_loses_the_connection_too() {
    let (params, _) = params().split();
    let mut session = Session::new(params).expect("valid");
    assert!(matches!(session.receive(b"220 ready\r\n"), Some(Next::Send(_))));
    assert_eq!(session.receive(b"250 mx\r\n"), Some(Next::Idle));
    let next = session.receive(b"25");
    assert!(matches!(next, Some(Next::Close(End::Lost(_)))), "{next:?}");
}

#[test]
fn without_a_policy_a_server_without_starttls_is_used_in_plaintext() {
    let mut session = greeted(Case { starttls: true, ..to(&["c@d"]) });
    assert_eq!(session.receive(b"250 mx\r\n"), Some(Next::AskPolicy(TlsIssue::NotOffered)));
    session.take_trace();
    assert!(matches!(session.policy_answer(None), Next::Send(_)));
    assert_eq!(
        session.take_trace(),
        strings(&["    ... STARTTLS is not offered by the server: no -tlspolicy, continuing without TLS ..."])
    );
}

#[test]
fn without_a_policy_an_unverified_certificate_is_refused() {
    let mut session = greeted(Case { starttls: true, ..to(&["c@d"]) });
    assert!(matches!(session.receive(b"250-mx\r\n250 STARTTLS\r\n"), Some(Next::Send(_))));
    assert_eq!(session.receive(b"220 go\r\n"), Some(Next::StartTls));
    let issue = TlsIssue::NotVerified("self-signed certificate".into());
    assert_eq!(session.tls_failed(issue.clone()), Next::AskPolicy(issue));
    assert_eq!(session.policy_answer(None), Next::Send(vec![Command::Quit]));
}

#[test]
fn a_policy_answer_is_traced() {
    let mut session = greeted(Case { starttls: true, ..to(&["c@d"]) });
    assert_eq!(session.receive(b"250 mx\r\n"), Some(Next::AskPolicy(TlsIssue::NotOffered)));
    session.take_trace();
    session.policy_answer(Some(secure("plaintext is not allowed here")));
    let trace = session.take_trace();
    assert!(
        trace.iter().any(|l| l.contains("-tlspolicy on") && l.contains("secure (plaintext is not allowed here)")),
        "{trace:?}"
    );
}
