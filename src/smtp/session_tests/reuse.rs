//! Many transactions over one connection (sessions): RSET only after a transaction left
//! half done, the next transaction pipelined after the end of data, the outcome of each
//! in order, idleness between them, what a lost connection leaves unfinished, and an end
//! that stays the same however often it is asked for.

use super::*;

fn envelope(sender: &str, recipients: &[&str]) -> Envelope {
    Envelope {
        sender: sender.into(),
        recipients: strings(recipients),
        at_least_one: false,
        message_size: 350,
        eight_bit: false,
        seven_bit: Err("a test message".into()),
        dsn: None,
    }
}

/// What a connection carrying several transactions did.
#[derive(Debug)]
struct Run {
    flights: Vec<Vec<String>>,
    /// Each finished transaction's outcome, in the order reported.
    outcomes: Vec<Outcome>,
    end: End,
}

/// Runs a connection against `script`: `upfront` are submitted before the greeting;
/// each time the session is idle the next of `later` is submitted ("<idle>" in the
/// flights), or QUIT is asked for once none is left. Panics as `drive` does.
fn drive_many(upfront: &[Envelope], later: &[Envelope], script: &[Scripted]) -> Run {
    let (params, _) = params().split();
    let mut session = Session::new(params).expect("valid params");
    for e in upfront {
        session.submit(e.clone()).expect("valid envelope");
    }
    let mut later = later.iter();
    let mut events = script.iter();
    let (mut sent, mut flights, mut waits, mut outcomes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut next = feed(&mut session, &mut events, &sent, &mut waits);
    for _ in 0..script.len() * 2 + 4 {
        next = match next {
            Next::Close(end) => {
                let unused: Vec<_> = events.collect();
                assert!(unused.is_empty(), "closed with {end:?} but {unused:?} remain unused");
                return Run { flights, outcomes, end };
            }
            Next::Finished(outcome) => {
                outcomes.push(outcome);
                session.resume()
            }
            Next::Idle => {
                flights.push(vec!["<idle>".to_string()]);
                match later.next() {
                    Some(e) => session.submit(e.clone()).expect("valid envelope"),
                    None => session.quit(),
                }
                session.resume()
            }
            Next::Send(commands) => {
                let flight: Vec<String> = commands.iter().map(Command::to_string).collect();
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                feed(&mut session, &mut events, &sent, &mut waits)
            }
            Next::Receive => feed(&mut session, &mut events, &sent, &mut waits),
            Next::SendMessage(form) => {
                let mut flight = vec![message_written(form)];
                flight.extend(session.finish_message(&[]).expect("nothing arrived").iter().map(Command::to_string));
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                session.message_sent();
                feed(&mut session, &mut events, &sent, &mut waits)
            }
            other => panic!("unexpected {other:?}"),
        };
    }
    panic!("livelock? flights {flights:?}");
}

fn fl(items: &[&[&str]]) -> Vec<Vec<String>> {
    items.iter().map(|flight| strings(flight)).collect()
}

fn one() -> Envelope {
    envelope("a@b", &["c@d"])
}

fn two() -> Envelope {
    envelope("x@y", &["z@w"])
}

fn delivered_ok() -> Outcome {
    Outcome::Delivered { refused: vec![] }
}

#[test]
fn two_transactions_follow_each_other_without_rset() {
    let script = [greeting(), ehlo(&[]), ok(), ok(), go_ahead(), queued(), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(
        run.flights,
        fl(&[
            &["EHLO client.example"],
            &["MAIL FROM:<a@b>"],
            &["RCPT TO:<c@d>"],
            &["DATA"],
            &["<message>"],
            &["MAIL FROM:<x@y>"],
            &["RCPT TO:<z@w>"],
            &["DATA"],
            &["<message>"],
            &["<idle>"],
            &["QUIT"],
        ])
    );
    assert_eq!(run.outcomes, vec![delivered_ok(), delivered_ok()]);
    assert_eq!(run.end, End::Quit);
}

#[test]
fn with_pipelining_the_next_transaction_goes_with_the_end_of_data() {
    let pipelining = ehlo(&["PIPELINING"]);
    let script = [greeting(), pipelining, ok(), ok(), go_ahead(), queued(), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(
        run.flights,
        fl(&[
            &["EHLO client.example"],
            &["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"],
            &["<message>", "MAIL FROM:<x@y>", "RCPT TO:<z@w>", "DATA"],
            &["<message>"],
            &["<idle>"],
            &["QUIT"],
        ])
    );
    assert_eq!(run.outcomes, vec![delivered_ok(), delivered_ok()]);
}

#[test]
fn a_connection_waits_idle_for_the_next_transaction() {
    let script = [greeting(), ehlo(&["PIPELINING"]), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[], &[one()], &script);
    assert_eq!(
        run.flights,
        fl(&[
            &["EHLO client.example"],
            &["<idle>"],
            &["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"],
            &["<message>"],
            &["<idle>"],
            &["QUIT"],
        ])
    );
    assert_eq!(run.outcomes, vec![delivered_ok()]);
}

#[test]
fn refused_recipients_leave_a_transaction_that_rset_ends_before_the_next() {
    let script = [
        greeting(),
        ehlo(&[]),
        ok(),
        r(550, "5.1.1 no such user"),
        ok(), // RSET
        ok(),
        ok(),
        go_ahead(),
        queued(),
        bye(),
    ];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(run.flights[1..4], fl(&[&["MAIL FROM:<a@b>"], &["RCPT TO:<c@d>"], &["RSET"]]));
    assert_eq!(run.flights[4], strings(&["MAIL FROM:<x@y>"]));
    let refused = vec![refusal("c@d", 550, "5.1.1 no such user")];
    assert_eq!(run.outcomes, vec![Outcome::NotSent { refused }, delivered_ok()]);
}

#[test]
fn a_refused_mail_needs_no_rset() {
    let script = [greeting(), ehlo(&[]), r(553, "5.7.1 sender refused"), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(run.flights[1..3], fl(&[&["MAIL FROM:<a@b>"], &["MAIL FROM:<x@y>"]]));
    assert_eq!(
        run.outcomes[0],
        Outcome::Failed(Failure { step: Step::Mail, kind: FailureKind::Reply(reply(553, "5.7.1 sender refused")) })
    );
    assert_eq!(run.outcomes[1], delivered_ok());
}

#[test]
fn a_refused_data_is_reset_before_the_next_transaction() {
    let script = [greeting(), ehlo(&[]), ok(), ok(), r(554, "no"), ok(), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(run.flights[3..6], fl(&[&["DATA"], &["RSET"], &["MAIL FROM:<x@y>"]]));
    assert_eq!(
        run.outcomes[0],
        Outcome::Failed(Failure { step: Step::Data, kind: FailureKind::Reply(reply(554, "no")) })
    );
}

#[test]
fn a_refused_message_leaves_the_connection_usable() {
    let script =
        [greeting(), ehlo(&[]), ok(), ok(), go_ahead(), r(554, "5.7.1 spam"), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(run.flights[5], strings(&["MAIL FROM:<x@y>"]), "no RSET after a complete transaction");
    let refused = Failure { step: Step::EndOfData, kind: FailureKind::Reply(reply(554, "5.7.1 spam")) };
    assert_eq!(run.outcomes, vec![Outcome::Failed(refused), delivered_ok()]);
    assert_eq!(run.end, End::Quit);
}

#[test]
fn a_421_to_mail_loses_the_connection_and_leaves_the_transaction_unfinished() {
    let script = [greeting(), ehlo(&[]), r(421, "4.4.2 idle too long")];
    let run = drive_many(&[one()], &[], &script);
    assert!(run.outcomes.is_empty(), "nothing was written of the message: it may go elsewhere");
    assert_eq!(
        run.end,
        End::Lost(Failure { step: Step::Mail, kind: FailureKind::Reply(reply(421, "4.4.2 idle too long")) })
    );
}

#[test]
fn a_connection_lost_after_the_dot_finishes_that_message_as_unknown_and_not_the_pipelined_next() {
    let script = [greeting(), ehlo(&["PIPELINING"]), ok(), ok(), go_ahead(), read_fails(FailureKind::Closed)];
    let run = drive_many(&[one(), two()], &[], &script);
    assert_eq!(run.flights[2], strings(&["<message>", "MAIL FROM:<x@y>", "RCPT TO:<z@w>", "DATA"]));
    let lost = Failure { step: Step::EndOfData, kind: FailureKind::Closed };
    assert_eq!(run.outcomes, vec![Outcome::Failed(lost.clone())]);
    assert_eq!(run.end, End::Lost(lost));
}

#[test]
fn the_end_is_the_same_however_often_it_is_asked_for() {
    let (params, _) = params().split();
    let mut session = Session::new(params).expect("valid");
    let end = session.handle_reply(reply(554, "no service"));
    let unusable = End::Unusable(Failure { step: Step::Greeting, kind: FailureKind::Reply(reply(554, "no service")) });
    assert_eq!(end, Next::Close(unusable.clone()));
    assert_eq!(session.resume(), Next::Close(unusable.clone()));
    assert_eq!(session.handle_reply(reply(250, "late")), Next::Close(unusable.clone()));
    assert_eq!(session.handle_failure(FailureKind::Closed), Next::Close(unusable));
}

#[test]
fn onex_is_not_sent_on_a_connection_that_may_carry_more() {
    let script = [greeting(), ehlo(&["ONEX"]), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[], &[one()], &script);
    assert!(!run.flights.iter().flatten().any(|c| c == "ONEX"), "ONEX would forbid a second transaction");
}

#[test]
fn a_message_this_server_cannot_take_is_reported_and_the_next_goes() {
    let eight_bit = Envelope { eight_bit: true, ..one() };
    let script = [greeting(), ehlo(&["PIPELINING"]), ok(), ok(), go_ahead(), queued(), bye()];
    let run = drive_many(&[eight_bit, two()], &[], &script);
    let missing = Failure {
        step: Step::Mail,
        kind: FailureKind::ExtensionMissing(Extension::EightBitMime { unconvertible: "a test message".into() }),
    };
    assert_eq!(run.outcomes, vec![Outcome::Unusable(missing), delivered_ok()]);
    assert_eq!(run.flights[1], strings(&["MAIL FROM:<x@y>", "RCPT TO:<z@w>", "DATA"]));
}

#[test]
fn each_transaction_has_its_own_form() {
    let seven_bit = SevenBit { size: 500, parts: "the message as quoted-printable".into() };
    let converted = Envelope { eight_bit: true, seven_bit: Ok(seven_bit), ..one() };
    let script = [
        greeting(),
        ehlo(&["PIPELINING", "SIZE 1000"]),
        ok(),
        ok(),
        go_ahead(),
        queued(),
        ok(),
        ok(),
        go_ahead(),
        queued(),
        bye(),
    ];
    let run = drive_many(&[converted, two()], &[], &script);
    assert_eq!(run.outcomes, vec![delivered_ok(), delivered_ok()]);
    assert_eq!(run.flights[1], strings(&["MAIL FROM:<a@b> SIZE=500", "RCPT TO:<c@d>", "DATA"]));
    assert_eq!(run.flights[2], strings(&["<message converted>", "MAIL FROM:<x@y> SIZE=350", "RCPT TO:<z@w>", "DATA"]));
    assert_eq!(run.flights[3][0], "<message>");
}

#[test]
fn a_reply_while_idle_loses_the_connection() {
    let (params, _) = params().split();
    let mut session = Session::new(params).expect("valid");
    assert!(matches!(session.handle_reply(greeting_reply()), Next::Send(_)));
    assert_eq!(session.handle_reply(reply(250, "ok")), Next::Idle);
    let next = session.handle_reply(reply(421, "4.4.2 bye"));
    assert!(matches!(next, Next::Close(End::Lost(Failure { step: Step::Mail, .. }))), "{next:?}");
}
