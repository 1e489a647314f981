//! Dialogue tests for the session engine: each test scripts the server's side of a whole
//! connection, runs the engine against it with a tiny in-memory driver, and pins every
//! command sent and the outcome (tcllib smtp 1.5.1 §4.3–4.6, §5.1–5.6, §7, and the
//! deliberate deviations in `shared/design.md`).

use std::time::Duration;

use super::*;
use crate::secret::Secret;
use crate::smtp::ReplyError;

// ---------------------------------------------------------------------------------------
// The scripted server and the driver
// ---------------------------------------------------------------------------------------

/// One event on the server's side, consumed in order by the driver.
#[derive(Debug, Clone)]
enum Scripted {
    /// A complete reply to the last command (or the greeting).
    Reply(Reply),
    /// No reply could be read: timeout, closed connection, socket error, garbage.
    ReadFails(FailureKind),
    /// Writing the last command, or the message, failed.
    WriteFails(FailureKind),
    /// How the TLS handshake the engine asked for went.
    Handshake(Shake),
    /// The policy's answer to the issue the engine asked about; the issue is checked.
    Policy(TlsIssue, PolicyAnswer),
}

/// A scripted TLS handshake result.
#[derive(Debug, Clone)]
enum Shake {
    Verified,
    NotVerified(&'static str),
    Fails(&'static str),
}

/// A one-line reply.
fn r(code: u16, text: &str) -> Scripted {
    Scripted::Reply(Reply::new(code, text))
}

/// A multi-line reply.
fn multi(code: u16, lines: &[&str]) -> Scripted {
    Scripted::Reply(Reply { code, lines: lines.iter().map(|s| s.to_string()).collect() })
}

/// A 250 EHLO reply announcing `keywords` (after the usual greeting line).
fn ehlo(keywords: &[&str]) -> Scripted {
    let mut lines = vec!["mx.example.org greets client.example"];
    lines.extend_from_slice(keywords);
    multi(250, &lines)
}

fn greeting() -> Scripted {
    r(220, "mx.example.org ESMTP ready")
}

fn ok() -> Scripted {
    r(250, "OK")
}

fn go_ahead() -> Scripted {
    r(354, "End data with <CR><LF>.<CR><LF>")
}

fn queued() -> Scripted {
    r(250, "2.0.0 Ok: queued as 4F2A1")
}

fn bye() -> Scripted {
    r(221, "2.0.0 Bye")
}

fn read_fails(kind: FailureKind) -> Scripted {
    Scripted::ReadFails(kind)
}

fn write_fails(kind: FailureKind) -> Scripted {
    Scripted::WriteFails(kind)
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, text)
}

fn refusal(address: &str, code: u16, text: &str) -> Refusal {
    Refusal { address: address.into(), reply: reply(code, text) }
}

fn failed(step: Step, kind: FailureKind) -> Outcome {
    Outcome::Failed(Failure { step, kind })
}

fn unusable(step: Step, kind: FailureKind) -> Outcome {
    Outcome::Unusable(Failure { step, kind })
}

fn delivered(refused: Vec<Refusal>) -> Outcome {
    Outcome::Delivered { refused }
}

fn not_sent(refused: Vec<Refusal>) -> Outcome {
    Outcome::NotSent { refused }
}

/// What a dialogue looked like from the client's side.
#[derive(Debug)]
struct Transcript {
    /// Commands written, in their Display form, and "<message>" for the DATA section.
    sent: Vec<String>,
    /// The same grouped by write: each flight (a `Send` or a `SendMessage`) in one entry.
    flights: Vec<Vec<String>>,
    /// What the engine said it was waiting for (`step()`, `timeout()`) at each wait: before
    /// each reply is read, and while the message is written.
    waits: Vec<(Step, Duration)>,
    outcome: Outcome,
}

/// Runs one connection against `script` and returns the whole transcript. Panics when the
/// engine waits for more events than scripted, ends with script entries left over, or
/// never ends.
fn drive(params: Params, script: &[Scripted]) -> Transcript {
    let mut session = Session::new(params).expect("test params are valid");
    let mut events = script.iter();
    let mut sent: Vec<String> = Vec::new();
    let mut flights: Vec<Vec<String>> = Vec::new();
    let mut waits = Vec::new();

    // The driver reads the greeting first.
    let mut next = feed(&mut session, &mut events, &sent, &mut waits);
    // Every round consumes a script entry, so a longer dialogue means the engine is looping.
    let max_rounds = script.len() + 1;
    for _ in 0..max_rounds {
        next = match next {
            Next::Close(outcome) => {
                let unused: Vec<_> = events.collect();
                assert!(unused.is_empty(), "the engine closed with {outcome:?} but {unused:?} remain unused");
                return Transcript { sent, flights, waits, outcome };
            }
            Next::Send(commands) => {
                let first = commands.first().expect("a flight has a command");
                assert_eq!(session.step(), first.step(), "the engine waits for a step other than {first}'s");
                let flight: Vec<String> = commands.iter().map(Command::to_string).collect();
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                feed(&mut session, &mut events, &sent, &mut waits)
            }
            Next::Receive => feed(&mut session, &mut events, &sent, &mut waits),
            Next::StartTls => {
                sent.push("<handshake>".into());
                shake(&mut session, &mut events)
            }
            Next::AskPolicy(issue) => match events.next() {
                Some(Scripted::Policy(expected, answer)) => {
                    assert_eq!(&issue, expected, "the policy is asked about another issue");
                    sent.push(format!("<policy {}>", issue.code()));
                    session.policy_answer(answer.clone())
                }
                other => panic!("the engine asks the policy about {issue:?} but the script has {other:?}"),
            },
            Next::SendMessage(after) => {
                assert_eq!(session.step(), Step::Message, "no reply is due while the message is written");
                waits.push((session.step(), session.timeout()));
                let mut flight = vec!["<message>".to_string()];
                flight.extend(after.iter().map(Command::to_string));
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                if let Some(Scripted::WriteFails(kind)) = events.as_slice().first() {
                    events.next();
                    session.handle_failure(kind.clone())
                } else {
                    session.message_sent();
                    assert_eq!(session.step(), Step::EndOfData, "the end-of-data reply is next");
                    feed(&mut session, &mut events, &sent, &mut waits)
                }
            }
        };
    }
    panic!("no outcome after {max_rounds} rounds: livelock? sent {sent:?}");
}

/// Gives the engine the next scripted handshake result.
fn shake(session: &mut Session, events: &mut std::slice::Iter<'_, Scripted>) -> Next {
    assert_eq!(session.step(), Step::TlsHandshake);
    match events.next() {
        Some(Scripted::Handshake(Shake::Verified)) => session.tls_established(),
        Some(Scripted::Handshake(Shake::NotVerified(why))) => {
            session.tls_failed(TlsIssue::NotVerified(why.to_string()))
        }
        Some(Scripted::Handshake(Shake::Fails(why))) => session.tls_failed(TlsIssue::Handshake(why.to_string())),
        other => panic!("the engine runs a handshake but the script has {other:?}"),
    }
}

/// Gives the engine the next scripted event for what it awaits.
fn feed(
    session: &mut Session,
    events: &mut std::slice::Iter<'_, Scripted>,
    sent: &[String],
    waits: &mut Vec<(Step, Duration)>,
) -> Next {
    let step = session.step();
    waits.push((step, session.timeout()));
    let Some(event) = events.next() else {
        panic!("the engine waits for the reply at {step:?} but the script is used up; sent {sent:?}");
    };
    match event {
        Scripted::Reply(reply) => session.handle_reply(reply.clone()),
        Scripted::ReadFails(kind) => session.handle_failure(kind.clone()),
        Scripted::WriteFails(kind) => {
            assert!(!sent.is_empty(), "a write failed before anything was written");
            session.handle_failure(kind.clone())
        }
        other => panic!("the engine waits for a reply at {step:?} but the script has {other:?}"),
    }
}

/// The commands sent and the outcome of one scripted connection.
fn run(params: Params, script: &[Scripted]) -> (Vec<String>, Outcome) {
    let transcript = drive(params, script);
    (transcript.sent, transcript.outcome)
}

/// Distinct values, so a test can tell which field a wait used.
fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        greeting: Duration::from_secs(2),
        command: Duration::from_secs(3),
        mail: Duration::from_secs(4),
        rcpt: Duration::from_secs(5),
        end_of_data: Duration::from_secs(6),
        quit: Duration::from_secs(7),
        write: Duration::from_secs(8),
    }
}

/// From a@b to c@d and e@f, 350 bytes, no -queue, no -atleastone.
fn params() -> Params {
    Params {
        client: "client.example".into(),
        queue: false,
        starttls: false,
        auth: None,
        loopback: false,
        sender: "a@b".into(),
        recipients: vec!["c@d".into(), "e@f".into()],
        at_least_one: false,
        message_size: 350,
        eight_bit: false,
        timeouts: test_timeouts(),
    }
}

fn to(recipients: &[&str]) -> Params {
    Params { recipients: recipients.iter().map(|s| s.to_string()).collect(), ..params() }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------------------
// The whole dialogue
// ---------------------------------------------------------------------------------------

#[test]
fn plain_delivery_to_two_recipients() {
    let (sent, outcome) =
        run(params(), &[greeting(), ehlo(&["PIPELINING", "8BITMIME"]), ok(), ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(
        sent,
        strings(&[
            "EHLO client.example",
            "MAIL FROM:<a@b>",
            "RCPT TO:<c@d>",
            "RCPT TO:<e@f>",
            "DATA",
            "<message>",
            "QUIT"
        ])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn end_of_data_251_counts_as_delivered() {
    let (sent, outcome) = run(to(&["c@d"]), &[greeting(), ehlo(&[]), ok(), ok(), go_ahead(), r(251, "ok"), bye()]);
    assert_eq!(sent.last().map(String::as_str), Some("QUIT"));
    assert_eq!(outcome, delivered(vec![]));
}

// ---------------------------------------------------------------------------------------
// MAIL and SIZE
// ---------------------------------------------------------------------------------------

/// The MAIL command of a one-recipient delivery after `ehlo_reply`.
fn mail_command_after(params: Params, ehlo_reply: Scripted) -> String {
    let params = Params { recipients: vec!["c@d".into()], ..params };
    let (sent, outcome) = run(params, &[greeting(), ehlo_reply, ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(outcome, delivered(vec![]));
    assert_eq!(sent[0], "EHLO client.example");
    sent[1].clone()
}

#[test]
fn mail_declares_size_when_size_is_announced() {
    assert_eq!(mail_command_after(params(), ehlo(&["SIZE 10240000"])), "MAIL FROM:<a@b> SIZE=350");
}

#[test]
fn mail_declares_size_when_size_is_announced_in_lower_case() {
    assert_eq!(mail_command_after(params(), ehlo(&["size"])), "MAIL FROM:<a@b> SIZE=350");
}

#[test]
fn mail_declares_no_size_when_size_is_not_announced() {
    assert_eq!(mail_command_after(params(), ehlo(&["PIPELINING", "8BITMIME"])), "MAIL FROM:<a@b>");
}

#[test]
fn message_at_the_size_limit_is_sent() {
    assert_eq!(mail_command_after(params(), ehlo(&["SIZE 350"])), "MAIL FROM:<a@b> SIZE=350");
}

#[test]
fn message_over_the_size_limit_fails_before_mail_and_quits() {
    let (sent, outcome) = run(params(), &[greeting(), ehlo(&["SIZE 349"]), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "QUIT"]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::TooBig { size: 350, limit: 349 }));
}

#[test]
fn null_sender_is_sent_as_empty_path() {
    let params = Params { sender: String::new(), ..params() };
    assert_eq!(mail_command_after(params, ehlo(&[])), "MAIL FROM:<>");
}

#[test]
fn mail_refusal_fails_the_transaction_and_quits() {
    let (sent, outcome) = run(params(), &[greeting(), ehlo(&[]), r(553, "5.7.1 sender rejected"), bye()]);
    assert_eq!(sent, strings(&["EHLO client.example", "MAIL FROM:<a@b>", "QUIT"]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "5.7.1 sender rejected"))));
}

#[test]
fn mail_421_fails_without_quit() {
    let (sent, outcome) = run(params(), &[greeting(), ehlo(&[]), r(421, "closing")]);
    assert_eq!(sent, strings(&["EHLO client.example", "MAIL FROM:<a@b>"]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(421, "closing"))));
}

// ---------------------------------------------------------------------------------------
// Greeting
// ---------------------------------------------------------------------------------------

#[test]
fn greeting_other_than_220_makes_the_server_unusable_without_a_word() {
    for code in [421, 554, 250] {
        let (sent, outcome) = run(params(), &[r(code, "no service for you")]);
        assert_eq!(sent, Vec::<String>::new(), "{code}");
        assert_eq!(outcome, unusable(Step::Greeting, FailureKind::Reply(reply(code, "no service for you"))), "{code}");
    }
}

#[test]
fn missing_greeting_makes_the_server_unusable() {
    let kinds = [
        FailureKind::Timeout(secs(2)),
        FailureKind::Closed,
        FailureKind::Io("connection reset by peer".into()),
        FailureKind::Protocol(ReplyError::Malformed { line: "HTTP/1.1 400 Bad Request".into() }),
    ];
    for kind in kinds {
        let (sent, outcome) = run(params(), &[read_fails(kind.clone())]);
        assert_eq!(sent, Vec::<String>::new(), "{kind:?}");
        assert_eq!(outcome, unusable(Step::Greeting, kind));
    }
}

// ---------------------------------------------------------------------------------------
// EHLO and HELO
// ---------------------------------------------------------------------------------------

#[test]
fn ehlo_5xx_falls_back_to_helo() {
    let script =
        [greeting(), r(502, "5.5.2 EHLO not implemented"), ok(), ok(), ok(), ok(), go_ahead(), queued(), bye()];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(
        sent,
        strings(&[
            "EHLO client.example",
            "HELO client.example",
            "MAIL FROM:<a@b>",
            "RCPT TO:<c@d>",
            "RCPT TO:<e@f>",
            "DATA",
            "<message>",
            "QUIT"
        ])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn helo_session_uses_no_capabilities() {
    // The refused EHLO reply lists keywords; after HELO none of them may be used: no ONEX,
    // no SIZE= and no size check (350 > 100).
    let refused_ehlo = multi(500, &["unrecognized command", "SIZE 100", "ONEX", "XQUE"]);
    let params = Params { queue: true, recipients: vec!["c@d".into()], ..params() };
    let (sent, outcome) = run(params, &[greeting(), refused_ehlo, ok(), ok(), ok(), go_ahead(), queued(), bye()]);
    assert_eq!(
        sent,
        strings(&[
            "EHLO client.example",
            "HELO client.example",
            "MAIL FROM:<a@b>",
            "RCPT TO:<c@d>",
            "DATA",
            "<message>",
            "QUIT"
        ])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn ehlo_4xx_makes_the_server_unusable_without_helo() {
    for code in [421, 450] {
        let (sent, outcome) = run(params(), &[greeting(), r(code, "try later")]);
        assert_eq!(sent, strings(&["EHLO client.example"]), "{code}");
        assert_eq!(outcome, unusable(Step::Ehlo, FailureKind::Reply(reply(code, "try later"))), "{code}");
    }
}

#[test]
fn ehlo_timeout_makes_the_server_unusable_without_helo() {
    let (sent, outcome) = run(params(), &[greeting(), read_fails(FailureKind::Timeout(secs(3)))]);
    assert_eq!(sent, strings(&["EHLO client.example"]));
    assert_eq!(outcome, unusable(Step::Ehlo, FailureKind::Timeout(secs(3))));
}

#[test]
fn helo_5xx_makes_the_server_unusable() {
    let (sent, outcome) = run(params(), &[greeting(), r(500, "what?"), r(501, "bad name")]);
    assert_eq!(sent, strings(&["EHLO client.example", "HELO client.example"]));
    assert_eq!(outcome, unusable(Step::Helo, FailureKind::Reply(reply(501, "bad name"))));
}

// ---------------------------------------------------------------------------------------
// ONEX and QUED
// ---------------------------------------------------------------------------------------

/// The commands between EHLO and MAIL, for a one-recipient delivery.
fn between_ehlo_and_mail(params: Params, script_after_ehlo_reply: &[Scripted]) -> Vec<String> {
    let params = Params { recipients: vec!["c@d".into()], ..params };
    let mut script = vec![greeting()];
    script.extend_from_slice(script_after_ehlo_reply);
    script.extend([ok(), ok(), go_ahead(), queued(), bye()]);
    let (sent, outcome) = run(params, &script);
    assert_eq!(outcome, delivered(vec![]));
    assert_eq!(sent.first().map(String::as_str), Some("EHLO client.example"));
    let mail = sent.iter().position(|c| c.starts_with("MAIL ")).expect("MAIL was sent");
    assert_eq!(&sent[mail..], strings(&["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "<message>", "QUIT"]));
    sent[1..mail].to_vec()
}

#[test]
fn onex_is_sent_when_announced() {
    assert_eq!(between_ehlo_and_mail(params(), &[ehlo(&["ONEX"]), ok()]), strings(&["ONEX"]));
}

#[test]
fn onex_refusal_is_ignored() {
    assert_eq!(between_ehlo_and_mail(params(), &[ehlo(&["ONEX"]), r(500, "unknown")]), strings(&["ONEX"]));
}

#[test]
fn onex_is_not_sent_unless_announced() {
    assert_eq!(between_ehlo_and_mail(params(), &[ehlo(&["PIPELINING"])]), Vec::<String>::new());
}

#[test]
fn qued_is_sent_with_queue_when_xque_is_announced() {
    let params = Params { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE"]), ok()]), strings(&["QUED"]));
}

#[test]
fn qued_refusal_is_ignored() {
    let params = Params { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE"]), r(502, "no")]), strings(&["QUED"]));
}

#[test]
fn qued_is_not_sent_without_queue() {
    assert_eq!(between_ehlo_and_mail(params(), &[ehlo(&["XQUE"])]), Vec::<String>::new());
}

#[test]
fn qued_is_not_sent_when_xque_is_not_announced() {
    let params = Params { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["PIPELINING"])]), Vec::<String>::new());
}

#[test]
fn onex_then_qued_come_between_ehlo_and_mail() {
    let params = Params { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE", "ONEX"]), ok(), ok()]), strings(&["ONEX", "QUED"]));
}

// ---------------------------------------------------------------------------------------
// RCPT and the decision after it
// ---------------------------------------------------------------------------------------

#[test]
fn rcpt_250_and_251_are_accepted() {
    let (sent, outcome) =
        run(params(), &[greeting(), ehlo(&[]), ok(), ok(), r(251, "will forward"), go_ahead(), queued(), bye()]);
    assert_eq!(sent[4..], strings(&["DATA", "<message>", "QUIT"]));
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn rcpt_refusal_is_reported_not_fatal() {
    let params = to(&["x1@d", "x2@d", "x3@d", "x4@d"]);
    let script = [
        greeting(),
        ehlo(&[]),
        ok(),
        r(550, "5.1.1 no such user"),
        ok(),
        r(450, "4.2.0 greylisted"),
        r(252, "cannot verify"),
        ok(),
        bye(),
    ];
    let (sent, outcome) = run(params, &script);
    assert_eq!(
        sent,
        strings(&[
            "EHLO client.example",
            "MAIL FROM:<a@b>",
            "RCPT TO:<x1@d>",
            "RCPT TO:<x2@d>",
            "RCPT TO:<x3@d>",
            "RCPT TO:<x4@d>",
            "RSET",
            "QUIT"
        ])
    );
    assert_eq!(
        outcome,
        not_sent(vec![
            refusal("x1@d", 550, "5.1.1 no such user"),
            refusal("x3@d", 450, "4.2.0 greylisted"),
            refusal("x4@d", 252, "cannot verify"),
        ])
    );
}

#[test]
fn all_recipients_refused_resets_and_quits_without_sending() {
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), r(550, "no e"), ok(), bye()];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent[2..], strings(&["RCPT TO:<c@d>", "RCPT TO:<e@f>", "RSET", "QUIT"]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 550, "no e")]));
}

#[test]
fn some_recipients_refused_without_at_least_one_is_not_sent() {
    let script = [greeting(), ehlo(&[]), ok(), ok(), r(550, "no e"), ok(), bye()];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent[2..], strings(&["RCPT TO:<c@d>", "RCPT TO:<e@f>", "RSET", "QUIT"]));
    assert_eq!(outcome, not_sent(vec![refusal("e@f", 550, "no e")]));
}

#[test]
fn some_recipients_refused_with_at_least_one_is_delivered_to_the_others() {
    let params = Params { at_least_one: true, ..params() };
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), ok(), go_ahead(), queued(), bye()];
    let (sent, outcome) = run(params, &script);
    assert_eq!(sent[2..], strings(&["RCPT TO:<c@d>", "RCPT TO:<e@f>", "DATA", "<message>", "QUIT"]));
    assert_eq!(outcome, delivered(vec![refusal("c@d", 550, "no c")]));
}

#[test]
fn at_least_one_still_needs_an_accepted_recipient() {
    let params = Params { at_least_one: true, ..params() };
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), r(450, "later e"), ok(), bye()];
    let (sent, outcome) = run(params, &script);
    assert_eq!(sent[2..], strings(&["RCPT TO:<c@d>", "RCPT TO:<e@f>", "RSET", "QUIT"]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 450, "later e")]));
}

#[test]
fn rcpt_421_fails_without_further_commands() {
    let params = to(&["c@d", "e@f", "g@h"]);
    let (sent, outcome) = run(params, &[greeting(), ehlo(&[]), ok(), ok(), r(421, "shutting down")]);
    assert_eq!(sent, strings(&["EHLO client.example", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "RCPT TO:<e@f>"]));
    assert_eq!(outcome, failed(Step::Rcpt, FailureKind::Reply(reply(421, "shutting down"))));
}

#[test]
fn rset_failure_after_refusals_still_gives_not_sent() {
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), r(550, "no e"), read_fails(FailureKind::Closed)];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent.last().map(String::as_str), Some("RSET"));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 550, "no e")]));
}

#[test]
fn rset_refusal_after_refusals_still_quits_and_gives_not_sent() {
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), r(550, "no e"), r(502, "no RSET"), bye()];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent[4..], strings(&["RSET", "QUIT"]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 550, "no e")]));
}

// ---------------------------------------------------------------------------------------
// DATA, the message and the end of data
// ---------------------------------------------------------------------------------------

#[test]
fn data_refusal_fails_and_quits() {
    let (sent, outcome) =
        run(params(), &[greeting(), ehlo(&[]), ok(), ok(), ok(), r(554, "no valid recipients"), bye()]);
    assert_eq!(sent[4..], strings(&["DATA", "QUIT"]));
    assert_eq!(outcome, failed(Step::Data, FailureKind::Reply(reply(554, "no valid recipients"))));
}

#[test]
fn end_of_data_refusal_fails_and_quits() {
    let script = [greeting(), ehlo(&[]), ok(), ok(), ok(), go_ahead(), r(451, "4.3.0 try later"), bye()];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent[4..], strings(&["DATA", "<message>", "QUIT"]));
    assert_eq!(outcome, failed(Step::EndOfData, FailureKind::Reply(reply(451, "4.3.0 try later"))));
}

#[test]
fn end_of_data_timeout_fails_without_another_command() {
    let timeout = read_fails(FailureKind::Timeout(secs(6)));
    let (sent, outcome) = run(params(), &[greeting(), ehlo(&[]), ok(), ok(), ok(), go_ahead(), timeout]);
    assert_eq!(sent[4..], strings(&["DATA", "<message>"]));
    assert_eq!(outcome, failed(Step::EndOfData, FailureKind::Timeout(secs(6))));
}

#[test]
fn message_write_failure_fails_at_message() {
    let broken = write_fails(FailureKind::Io("Broken pipe".into()));
    let (sent, outcome) = run(params(), &[greeting(), ehlo(&[]), ok(), ok(), ok(), go_ahead(), broken]);
    assert_eq!(sent[4..], strings(&["DATA", "<message>"]));
    assert_eq!(outcome, failed(Step::Message, FailureKind::Io("Broken pipe".into())));
}

// ---------------------------------------------------------------------------------------
// QUIT
// ---------------------------------------------------------------------------------------

#[test]
fn missing_or_odd_quit_reply_keeps_delivered() {
    let goodbyes = [
        read_fails(FailureKind::Timeout(secs(7))),
        read_fails(FailureKind::Closed),
        write_fails(FailureKind::Io("Broken pipe".into())),
        r(500, "what?"),
    ];
    for goodbye in goodbyes {
        let script = [greeting(), ehlo(&[]), ok(), ok(), ok(), go_ahead(), queued(), goodbye.clone()];
        let (sent, outcome) = run(params(), &script);
        assert_eq!(sent.last().map(String::as_str), Some("QUIT"), "{goodbye:?}");
        assert_eq!(outcome, delivered(vec![]), "{goodbye:?}");
    }
}

#[test]
fn missing_quit_reply_keeps_the_failure() {
    let script = [greeting(), ehlo(&[]), r(553, "no"), read_fails(FailureKind::Closed)];
    let (sent, outcome) = run(params(), &script);
    assert_eq!(sent, strings(&["EHLO client.example", "MAIL FROM:<a@b>", "QUIT"]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "no"))));
}

// ---------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------

#[test]
fn each_wait_uses_its_own_timeout() {
    let params = Params { queue: true, ..params() };
    let script = [greeting(), ehlo(&["ONEX", "XQUE"]), ok(), ok(), ok(), ok(), ok(), go_ahead(), queued(), bye()];
    let transcript = drive(params, &script);
    assert_eq!(transcript.outcome, delivered(vec![]));
    assert_eq!(
        transcript.waits,
        vec![
            (Step::Greeting, secs(2)),
            (Step::Ehlo, secs(3)),
            (Step::Onex, secs(3)),
            (Step::Qued, secs(3)),
            (Step::Mail, secs(4)),
            (Step::Rcpt, secs(5)),
            (Step::Rcpt, secs(5)),
            (Step::Data, secs(3)),
            (Step::Message, secs(8)),
            (Step::EndOfData, secs(6)),
            (Step::Quit, secs(7)),
        ]
    );
}

#[test]
fn helo_and_rset_wait_the_command_timeout() {
    let script = [greeting(), r(500, "no EHLO"), ok(), ok(), r(550, "no c"), r(550, "no e"), ok(), bye()];
    let transcript = drive(params(), &script);
    assert_eq!(transcript.outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 550, "no e")]));
    assert_eq!(
        transcript.waits,
        vec![
            (Step::Greeting, secs(2)),
            (Step::Ehlo, secs(3)),
            (Step::Helo, secs(3)),
            (Step::Mail, secs(4)),
            (Step::Rcpt, secs(5)),
            (Step::Rcpt, secs(5)),
            (Step::Rset, secs(3)),
            (Step::Quit, secs(7)),
        ]
    );
}

#[test]
fn new_session_awaits_the_greeting() {
    let session = Session::new(params()).unwrap();
    assert_eq!(session.step(), Step::Greeting);
    assert_eq!(session.timeout(), secs(2));
    assert_eq!(session.write_timeout(), secs(8));
    assert_eq!(session.capabilities(), &Capabilities::default());
}

#[test]
fn end_of_data_wait_starts_after_message_sent() {
    let mut session = Session::new(to(&["c@d"])).unwrap();
    assert!(matches!(session.handle_reply(reply(220, "hi")), Next::Send(c) if matches!(c[..], [Command::Ehlo(_)])));
    assert!(matches!(session.handle_reply(reply(250, "hi")), Next::Send(c) if matches!(c[..], [Command::Mail { .. }])));
    assert!(matches!(session.handle_reply(reply(250, "ok")), Next::Send(c) if matches!(c[..], [Command::Rcpt(_)])));
    assert_eq!(session.handle_reply(reply(250, "ok")), Next::Send(vec![Command::Data]));
    assert_eq!(session.handle_reply(reply(354, "go")), Next::SendMessage(vec![]));
    assert_eq!((session.step(), session.timeout()), (Step::Message, secs(8)));
    session.message_sent();
    assert_eq!((session.step(), session.timeout()), (Step::EndOfData, secs(6)));
}

#[test]
fn standard_timeouts_follow_tcllib() {
    let t = Timeouts::standard(secs(120));
    assert_eq!(
        t,
        Timeouts {
            connect: secs(60),
            greeting: secs(600),
            command: secs(300),
            mail: secs(600),
            rcpt: secs(600),
            end_of_data: secs(120),
            quit: secs(10),
            write: secs(300),
        }
    );
}

#[test]
fn capped_timeouts_cap_every_field() {
    let capped = Timeouts::standard(secs(120)).capped(secs(30));
    assert_eq!(
        capped,
        Timeouts {
            connect: secs(30),
            greeting: secs(30),
            command: secs(30),
            mail: secs(30),
            rcpt: secs(30),
            end_of_data: secs(30),
            quit: secs(10),
            write: secs(30),
        }
    );
    // A cap above every wait changes nothing.
    assert_eq!(test_timeouts().capped(secs(600)), test_timeouts());
    // Each field is capped on its own.
    let big = Timeouts {
        connect: secs(101),
        greeting: secs(102),
        command: secs(103),
        mail: secs(104),
        rcpt: secs(105),
        end_of_data: secs(106),
        quit: secs(107),
        write: secs(108),
    };
    let one = secs(1);
    assert_eq!(
        big.capped(one),
        Timeouts {
            connect: one,
            greeting: one,
            command: one,
            mail: one,
            rcpt: one,
            end_of_data: one,
            quit: one,
            write: one
        }
    );
}

// ---------------------------------------------------------------------------------------
// Session::new
// ---------------------------------------------------------------------------------------

fn refused(params: Params) -> bool {
    matches!(Session::new(params), Err(InvalidParams(_)))
}

#[test]
fn new_refuses_cr_lf_or_nul_in_the_client_name() {
    for bad in ["client\r\nMAIL FROM:<x@y>", "client\r", "client\n", "cli\0ent"] {
        assert!(refused(Params { client: bad.into(), ..params() }), "{bad:?}");
    }
}

#[test]
fn new_refuses_a_client_name_with_a_space_or_empty() {
    assert!(refused(Params { client: "client example".into(), ..params() }));
    assert!(refused(Params { client: String::new(), ..params() }));
}

#[test]
fn new_refuses_cr_lf_or_nul_in_the_sender() {
    for bad in ["a@b>\r\nRCPT TO:<evil@x", "a@b\r", "a@b\n", "a\0@b"] {
        assert!(refused(Params { sender: bad.into(), ..params() }), "{bad:?}");
    }
}

#[test]
fn new_refuses_cr_lf_or_nul_in_any_recipient() {
    for bad in ["e@f>\r\nDATA", "e@f\r", "e@f\n", "e\0@f"] {
        assert!(refused(to(&["c@d", bad])), "{bad:?}");
    }
}

#[test]
fn new_refuses_an_empty_recipient_list() {
    assert_eq!(Session::new(to(&[])).unwrap_err(), InvalidParams("no recipients".into()));
}

#[test]
fn new_accepts_the_null_sender() {
    assert!(Session::new(Params { sender: String::new(), ..params() }).is_ok());
}

// ---------------------------------------------------------------------------------------
// The driver's own guards
// ---------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "the script is used up")]
fn driver_fails_a_test_whose_script_is_too_short() {
    run(params(), &[greeting(), ehlo(&[])]);
}

#[test]
#[should_panic(expected = "remain unused")]
fn driver_fails_a_test_whose_script_has_entries_left_over() {
    run(params(), &[r(554, "go away"), ok()]);
}

// ---------------------------------------------------------------------------------------
// STARTTLS and the TLS policy
// ---------------------------------------------------------------------------------------

fn tls_params() -> Params {
    Params { starttls: true, recipients: vec!["c@d".into()], ..params() }
}

fn secure(why: &str) -> PolicyAnswer {
    PolicyAnswer::Secure { why: why.into() }
}

const DELIVERY: [&str; 5] = ["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "<message>", "QUIT"];

fn delivery_script() -> Vec<Scripted> {
    vec![ok(), ok(), go_ahead(), queued(), bye()]
}

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
    assert_eq!(outcome, Outcome::RetryWithoutTls);
}

#[test]
fn implicit_tls_handshake_comes_before_the_greeting() {
    let mut session = Session::new(tls_params()).unwrap();
    assert_eq!(session.step(), Step::Greeting);
    assert_eq!(session.tls_established(), Next::Receive);
    assert!(session.is_tls());
    // With TLS from the start, STARTTLS is never attempted.
    assert_eq!(session.handle_reply(greeting_reply()), Next::Send(vec![Command::Ehlo("client.example".into())]));
    let next = session.handle_reply(Reply { code: 250, lines: vec!["mx".into(), "STARTTLS".into()] });
    let mail = Command::Mail { from: "a@b".into(), size: None, eight_bit: false, smtputf8: false };
    assert_eq!(next, Next::Send(vec![mail]));
}

#[test]
fn implicit_tls_unverified_and_insecure_still_reads_the_greeting() {
    let mut session = Session::new(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    assert_eq!(session.tls_failed(issue.clone()), Next::AskPolicy(issue));
    assert_eq!(session.policy_answer(PolicyAnswer::Insecure), Next::Receive);
    assert_eq!(session.step(), Step::Greeting);
}

#[test]
fn implicit_tls_unverified_and_secure_quits_after_the_greeting() {
    let mut session = Session::new(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    let answer = secure("no -tlspolicy allows it");
    assert_eq!(session.tls_failed(issue.clone()), Next::AskPolicy(issue.clone()));
    assert_eq!(session.policy_answer(answer.clone()), Next::Receive);
    // The wait for a greeting only there to be answered with QUIT is QUIT's short one.
    assert_eq!((session.step(), session.timeout()), (Step::Quit, secs(7)));
    assert_eq!(session.handle_reply(greeting_reply()), Next::Send(vec![Command::Quit]));
    let failure = Failure { step: Step::TlsHandshake, kind: FailureKind::TlsRefused { issue, answer } };
    assert_eq!(session.handle_reply(reply(221, "bye")), Next::Close(Outcome::Unusable(failure)));
}

#[test]
fn implicit_tls_unverified_and_secure_without_greeting_closes() {
    let mut session = Session::new(tls_params()).unwrap();
    let issue = TlsIssue::NotVerified("certificate has expired".into());
    let answer = secure("no -tlspolicy allows it");
    session.tls_failed(issue.clone());
    assert_eq!(session.policy_answer(answer.clone()), Next::Receive);
    let failure = Failure { step: Step::TlsHandshake, kind: FailureKind::TlsRefused { issue, answer } };
    let timeout = FailureKind::Timeout(Duration::from_secs(10));
    assert_eq!(session.handle_failure(timeout), Next::Close(Outcome::Unusable(failure)));
}

fn greeting_reply() -> Reply {
    reply(220, "mx.example.org ESMTP ready")
}

#[test]
fn without_starttls_a_starttls_offer_is_ignored() {
    let mut script = vec![greeting(), ehlo(&["STARTTLS"])];
    script.extend(delivery_script());
    let (sent, _) = run(params_one_rcpt(), &script);
    assert_eq!(sent[1], "MAIL FROM:<a@b>");
}

fn params_one_rcpt() -> Params {
    Params { recipients: vec!["c@d".into()], ..params() }
}

// ---------------------------------------------------------------------------------------
// AUTH
// ---------------------------------------------------------------------------------------

fn auth_params(loopback: bool) -> Params {
    Params {
        auth: Some(AuthParams {
            username: "alice".into(),
            password: Secret::from_text("s3cret"),
            host: "mx.example.org".into(),
            cnonce: "0123456789abcdef".into(),
        }),
        loopback,
        ..params_one_rcpt()
    }
}

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
    let mut session = Session::new(auth_params(true)).unwrap();
    session.handle_reply(greeting_reply());
    session.handle_reply(Reply { code: 250, lines: vec!["mx".into(), "AUTH PLAIN".into()] });
    let Next::Send(flight) = session.handle_reply(reply(334, "")) else { panic!("no response") };
    let [response] = &flight[..] else { panic!("SASL responses are not pipelined: {flight:?}") };
    let mut wire = Vec::new();
    response.encode(&mut wire);
    assert_eq!(wire, format!("{PLAIN_RESPONSE}\r\n").as_bytes());
}

#[test]
fn mechanisms_are_tried_strongest_first_and_a_refusal_moves_on() {
    // LOGIN is stronger than PLAIN in the package's order; the old AUTH= form counts too.
    let mut script =
        vec![greeting(), ehlo(&["AUTH=PLAIN LOGIN"]), r(535, "5.7.8 LOGIN refused"), r(334, ""), r(235, "2.7.0 ok")];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..4], ["AUTH LOGIN".to_string(), "AUTH PLAIN".into(), hidden()]);
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
    let mut session = Session::new(auth_params(true)).unwrap();
    session.handle_reply(greeting_reply());
    let next = session.handle_reply(Reply { code: 250, lines: vec!["mx".into(), "SIZE".into()] });
    assert!(matches!(next, Next::Send(c) if matches!(c[..], [Command::Mail { .. }])));
    assert!(session.take_notes().iter().any(|n| n.contains("offers no AUTH")));
}

#[test]
fn only_unknown_mechanisms_offered_is_an_error() {
    let script = vec![greeting(), ehlo(&["AUTH SCRAM-SHA-256 GSSAPI"]), bye()];
    let (_, outcome) = run(auth_params(true), &script);
    let kind = FailureKind::AuthUnsupported { offered: vec!["SCRAM-SHA-256".into(), "GSSAPI".into()] };
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
    let params = Params { starttls: true, ..auth_params(false) };
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
        ehlo(&["AUTH LOGIN PLAIN"]),
        r(334, "not base64 at all!"),
        r(501, "5.7.0 cancelled"),
        r(334, ""),
        r(235, "ok"),
    ];
    script.extend(delivery_script());
    let (sent, outcome) = run(auth_params(true), &script);
    assert_eq!(&sent[1..5], ["AUTH LOGIN".to_string(), "*".into(), "AUTH PLAIN".into(), hidden()]);
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
// PIPELINING, 8BITMIME and SMTPUTF8: in their own file, with this driver
// ---------------------------------------------------------------------------------------

#[path = "pipelining_tests.rs"]
mod pipelining;
