//! 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531): what MAIL declares, the message converted
//! to 7 bits for a server without 8BITMIME, and the failure before MAIL when the server
//! lacks what the message needs.

use super::*;

fn eight_bit() -> Case {
    Case { eight_bit: true, ..to(&["c@d"]) }
}

#[test]
fn an_8bit_message_declares_body_8bitmime_when_offered() {
    let (sent, outcome) = run(eight_bit(), &[greeting(), ehlo(&["8BITMIME"]), ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(sent[1], "MAIL FROM:<a@b> BODY=8BITMIME");
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn an_ascii_message_declares_no_body() {
    let (sent, _) = run(to(&["c@d"]), &[greeting(), ehlo(&["8BITMIME"]), ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(sent[1], "MAIL FROM:<a@b>");
}

#[test]
fn an_8bit_message_to_a_server_without_8bitmime_fails_before_mail_and_tries_the_next() {
    let (sent, outcome) = run(eight_bit(), &[greeting(), ehlo(&["PIPELINING", "SMTPUTF8"]), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "QUIT"]));
    assert_eq!(
        outcome,
        unusable(
            Step::Mail,
            FailureKind::ExtensionMissing(Extension::EightBitMime { unconvertible: "a test message".into() })
        )
    );
}

/// An 8-bit message whose 7-bit form has 400 bytes.
fn convertible() -> Case {
    let seven_bit = SevenBit { size: 400, parts: "part 1 as quoted-printable".into() };
    Case { seven_bit: Ok(seven_bit), ..eight_bit() }
}

#[test]
fn a_convertible_message_goes_converted_to_a_server_without_8bitmime() {
    let script = [greeting(), ehlo(&["SIZE 1000"]), ok(), ok(), go_ahead(), queued(), bye()];
    let (sent, outcome) = run(convertible(), &script);
    assert_eq!(
        sent[1..],
        strings(&["MAIL FROM:<a@b> SIZE=400", "RCPT TO:<c@d>", "DATA", "<message converted>", "QUIT"])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_convertible_message_goes_as_it_is_to_a_server_with_8bitmime() {
    let script = [greeting(), ehlo(&["SIZE 1000", "8BITMIME"]), ok(), ok(), go_ahead(), queued(), bye()];
    let (sent, _) = run(convertible(), &script);
    assert_eq!(sent[1], "MAIL FROM:<a@b> SIZE=350 BODY=8BITMIME");
    assert_eq!(sent[4], "<message>");
}

#[test]
fn the_size_limit_is_judged_on_the_converted_size() {
    let (sent, outcome) = run(convertible(), &[greeting(), ehlo(&["SIZE 399"]), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "QUIT"]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::TooBig { size: 400, limit: 399 }));
}

#[test]
fn the_trace_says_the_message_goes_converted() {
    let mut session = one_message_session(convertible()).expect("valid");
    assert!(matches!(session.receive(b"220 mx\r\n"), Some(Next::Send(_))));
    assert!(matches!(session.receive(b"250 mx\r\n"), Some(Next::Send(_))));
    let note = "the server does not offer 8BITMIME: sending the message converted to 7 bits \
                (part 1 as quoted-printable), 400 bytes";
    assert!(session.take_trace().iter().any(|line| line.contains(note)));
}

#[test]
fn an_8bit_message_after_helo_fails_before_mail() {
    let (sent, outcome) = run(eight_bit(), &[greeting(), r(502, "no EHLO"), ok(), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "HELO client.example", "QUIT"]));
    assert_eq!(
        outcome,
        unusable(
            Step::Mail,
            FailureKind::ExtensionMissing(Extension::EightBitMime { unconvertible: "a test message".into() })
        )
    );
}

#[test]
fn a_utf8_recipient_declares_smtputf8_and_is_sent_as_utf8() {
    let params = to(&["c@d", "jürgen@exämple.org"]);
    let script = [greeting(), ehlo(&["8BITMIME", "SMTPUTF8"]), ok(), ok(), ok(), go_ahead(), queued(), bye()];
    let (sent, outcome) = run(params, &script);
    assert_eq!(sent[1..4], strings(&["MAIL FROM:<a@b> SMTPUTF8", "RCPT TO:<c@d>", "RCPT TO:<jürgen@exämple.org>"]));
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_utf8_sender_with_an_8bit_message_declares_both() {
    let params = Case { sender: "andré@b".into(), ..eight_bit() };
    let script = [greeting(), ehlo(&["8BITMIME", "SMTPUTF8"]), ok(), ok(), go_ahead(), queued(), bye()];
    let (sent, _) = run(params, &script);
    assert_eq!(sent[1], "MAIL FROM:<andré@b> BODY=8BITMIME SMTPUTF8");
}

#[test]
fn a_utf8_address_to_a_server_without_smtputf8_fails_before_mail() {
    let params = to(&["c@d", "jürgen@d"]);
    let (sent, outcome) = run(params, &[greeting(), ehlo(&["8BITMIME", "PIPELINING"]), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "QUIT"]));
    let missing = Extension::SmtpUtf8 { address: "jürgen@d".into() };
    assert_eq!(outcome, unusable(Step::Mail, FailureKind::ExtensionMissing(missing)));
}

#[test]
fn a_domain_idna_refuses_fails_and_says_so() {
    let params = to(&["c@d", "x@-\u{fc}.example"]);
    let (_, outcome) = run(params, &[greeting(), ehlo(&["8BITMIME"]), bye()]);
    let missing = |address: &str| Failure {
        step: Step::Mail,
        kind: FailureKind::ExtensionMissing(Extension::SmtpUtf8 { address: address.into() }),
    };
    assert_eq!(outcome, unusable(Step::Mail, missing("x@-\u{fc}.example").kind));
    let domain = missing("x@-\u{fc}.example").to_string();
    assert!(domain.starts_with("the domain of x@-\u{fc}.example has no IDNA A-label"), "{domain}");
    let local = missing("j\u{fc}rgen@d").to_string();
    assert!(local.starts_with("the address j\u{fc}rgen@d is not ASCII"), "{local}");
}

#[test]
fn ascii_addresses_declare_no_smtputf8_even_when_offered() {
    let (sent, _) = run(to(&["c@d"]), &[greeting(), ehlo(&["SMTPUTF8"]), ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(sent[1], "MAIL FROM:<a@b>");
}

#[test]
fn a_domain_that_is_not_ascii_goes_as_its_a_label_to_a_server_without_smtputf8() {
    let params = Case { sender: "a@bücher.example".into(), ..to(&["c@exämple.org", "d@e"]) };
    let mut script = vec![greeting(), ehlo(&["8BITMIME"]), ok(), ok()];
    script.extend(delivery_script().into_iter().skip(1));
    let (sent, outcome) = run(params, &script);
    assert_eq!(&sent[1..4], ["MAIL FROM:<a@xn--bcher-kva.example>", "RCPT TO:<c@xn--exmple-cua.org>", "RCPT TO:<d@e>"]);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_refused_converted_address_is_reported_as_given() {
    let params = Case { at_least_one: true, ..to(&["c@exämple.org", "d@e"]) };
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no such domain"), ok(), go_ahead(), queued(), bye()];
    let (_, outcome) = run(params, &script);
    assert_eq!(outcome, delivered(vec![refusal("c@exämple.org", 550, "no such domain")]));
}

#[test]
fn with_smtputf8_a_domain_that_is_not_ascii_goes_as_given() {
    let mut script = vec![greeting(), ehlo(&["8BITMIME", "SMTPUTF8"])];
    script.extend(delivery_script());
    let (sent, _) = run(to(&["c@exämple.org"]), &script);
    assert_eq!(&sent[1..3], ["MAIL FROM:<a@b> SMTPUTF8", "RCPT TO:<c@exämple.org>"]);
}

#[test]
fn a_local_part_that_is_not_ascii_still_needs_smtputf8() {
    let script = [greeting(), ehlo(&["8BITMIME"]), bye()];
    let (_, outcome) = run(to(&["jörg@example.org"]), &script);
    let missing = Extension::SmtpUtf8 { address: "jörg@example.org".into() };
    assert_eq!(outcome, unusable(Step::Mail, FailureKind::ExtensionMissing(missing)));
}
