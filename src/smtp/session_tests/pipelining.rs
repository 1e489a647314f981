//! PIPELINING (RFC 2920): which commands share a flight and how a flight's replies are
//! read. A flight is what the driver was asked to write at once; the replies are scripted
//! in order, as a pipelining server sends them.

use super::*;

fn pipelining() -> Scripted {
    ehlo(&["PIPELINING", "8BITMIME", "SIZE 10240000"])
}

fn flights(items: &[&[&str]]) -> Vec<Vec<String>> {
    items.iter().map(|flight| strings(flight)).collect()
}

/// The flights and outcome of one scripted connection.
fn run_flights(params: Case, script: &[Scripted]) -> (Vec<Vec<String>>, Conclusion) {
    let transcript = drive(params, script);
    (transcript.flights, transcript.outcome)
}

const MAIL: &str = "MAIL FROM:<a@b> SIZE=350";

#[test]
fn one_recipient_sends_mail_rcpt_and_data_in_one_flight_and_quit_after_the_dot() {
    let script = [greeting(), pipelining(), ok(), ok(), go_ahead(), queued(), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(
        flights_sent,
        flights(&[&["EHLO client.example"], &[MAIL, "RCPT TO:<c@d>", "DATA"], &["<message>", "QUIT"]])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn several_recipients_without_at_least_one_keep_data_until_every_rcpt_is_answered() {
    let script = [greeting(), pipelining(), ok(), ok(), ok(), go_ahead(), queued(), bye()];
    let (flights_sent, outcome) = run_flights(params(), &script);
    assert_eq!(
        flights_sent,
        flights(&[
            &["EHLO client.example"],
            &[MAIL, "RCPT TO:<c@d>", "RCPT TO:<e@f>"],
            &["DATA"],
            &["<message>", "QUIT"]
        ])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn a_refused_recipient_without_at_least_one_resets_and_quits_in_one_flight() {
    let script = [greeting(), pipelining(), ok(), ok(), r(550, "no e"), ok(), bye()];
    let (flights_sent, outcome) = run_flights(params(), &script);
    assert_eq!(flights_sent[2..], flights(&[&["RSET", "QUIT"]]));
    assert_eq!(outcome, not_sent(vec![refusal("e@f", 550, "no e")]));
}

#[test]
fn with_at_least_one_data_goes_in_the_flight_and_mixed_results_are_reported() {
    let params = Case { at_least_one: true, ..to(&["c@d", "e@f", "g@h"]) };
    let script = [greeting(), pipelining(), ok(), r(550, "no c"), ok(), r(450, "later g"), go_ahead(), queued(), bye()];
    let (flights_sent, outcome) = run_flights(params, &script);
    assert_eq!(
        flights_sent[1..],
        flights(&[&[MAIL, "RCPT TO:<c@d>", "RCPT TO:<e@f>", "RCPT TO:<g@h>", "DATA"], &["<message>", "QUIT"]])
    );
    assert_eq!(outcome, delivered(vec![refusal("c@d", 550, "no c"), refusal("g@h", 450, "later g")]));
}

#[test]
fn data_354_after_every_recipient_was_refused_is_ended_with_a_lone_dot() {
    // RFC 2920 §3.1: the client must check DATA's reply too; a 354 is ended with ".".
    let params = Case { at_least_one: true, ..params() };
    let script = [
        greeting(),
        pipelining(),
        ok(),
        r(550, "no c"),
        r(550, "no e"),
        go_ahead(),
        r(554, "5.5.1 no valid recipients"),
        bye(),
    ];
    let (flights_sent, outcome) = run_flights(params, &script);
    assert_eq!(flights_sent[2..], flights(&[&[".", "QUIT"]]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c"), refusal("e@f", 550, "no e")]));
}

#[test]
fn data_354_after_the_only_recipient_was_refused_sends_no_message() {
    let script = [greeting(), pipelining(), ok(), r(550, "no c"), go_ahead(), ok(), bye()];
    let (transcript, outcome) = run(to(&["c@d"]), &script);
    assert!(!transcript.contains(&"<message>".to_string()), "{transcript:?}");
    assert_eq!(transcript[4..], strings(&[".", "QUIT"]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c")]));
}

#[test]
fn data_refused_after_every_recipient_was_refused_resets_and_quits() {
    let script = [greeting(), pipelining(), ok(), r(550, "no c"), r(554, "no valid recipients"), ok(), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(flights_sent[2..], flights(&[&["RSET", "QUIT"]]));
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c")]));
}

#[test]
fn data_refused_after_accepted_recipients_fails_at_data() {
    let script = [greeting(), pipelining(), ok(), ok(), r(451, "4.3.0 try later"), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(flights_sent[2..], flights(&[&["QUIT"]]));
    assert_eq!(outcome, failed(Step::Data, FailureKind::Reply(reply(451, "4.3.0 try later"))));
}

#[test]
fn mail_refusal_reads_the_rest_of_the_flight_then_quits() {
    let script = [greeting(), pipelining(), r(553, "5.7.1 sender rejected"), r(503, "need MAIL"), r(503, "no"), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(flights_sent[2..], flights(&[&["QUIT"]]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "5.7.1 sender rejected"))));
}

#[test]
fn mail_refusal_then_data_354_ends_the_data_with_a_lone_dot() {
    let script = [greeting(), pipelining(), r(553, "no sender"), r(250, "odd but ok"), go_ahead(), ok(), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(flights_sent[2..], flights(&[&[".", "QUIT"]]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "no sender"))));
}

#[test]
fn mail_refusal_with_several_recipients_quits_after_their_replies() {
    let script = [greeting(), pipelining(), r(553, "no sender"), r(503, "need MAIL"), r(503, "need MAIL"), bye()];
    let (flights_sent, outcome) = run_flights(params(), &script);
    assert_eq!(flights_sent[2..], flights(&[&["QUIT"]]));
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "no sender"))));
}

#[test]
fn a_reply_missing_after_a_mail_refusal_keeps_the_mail_refusal() {
    let script = [greeting(), pipelining(), r(553, "no sender"), read_fails(FailureKind::Closed)];
    let (_, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(553, "no sender"))));
}

#[test]
fn no_reply_to_a_pipelined_data_after_every_refusal_still_reports_the_refusals() {
    let script = [greeting(), pipelining(), ok(), r(550, "no c"), read_fails(FailureKind::Timeout(secs(3)))];
    let (_, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(outcome, not_sent(vec![refusal("c@d", 550, "no c")]));
}

#[test]
fn mail_421_in_a_flight_closes_at_once() {
    let script = [greeting(), pipelining(), r(421, "closing")];
    let (flights_sent, outcome) = run_flights(params(), &script);
    assert_eq!(flights_sent.len(), 2);
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Reply(reply(421, "closing"))));
}

#[test]
fn rcpt_421_in_a_flight_closes_at_once() {
    let script = [greeting(), pipelining(), ok(), ok(), r(421, "shutting down")];
    let (flights_sent, outcome) = run_flights(params(), &script);
    assert_eq!(flights_sent.len(), 2);
    assert_eq!(outcome, failed(Step::Rcpt, FailureKind::Reply(reply(421, "shutting down"))));
}

#[test]
fn a_reply_missing_in_a_flight_fails_at_its_step() {
    let script = [greeting(), pipelining(), ok(), read_fails(FailureKind::Timeout(secs(5)))];
    let (_, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(outcome, failed(Step::Rcpt, FailureKind::Timeout(secs(5))));
}

#[test]
fn a_failed_flight_write_fails_at_mail() {
    let script = [greeting(), pipelining(), write_fails(FailureKind::Io("Broken pipe".into()))];
    let (_, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(outcome, failed(Step::Mail, FailureKind::Io("Broken pipe".into())));
}

#[test]
fn each_reply_of_a_flight_gets_its_own_wait() {
    let script = [greeting(), pipelining(), ok(), ok(), go_ahead(), queued(), bye()];
    let transcript = drive(to(&["c@d"]), &script);
    assert_eq!(
        transcript.waits,
        vec![
            (Step::Greeting, secs(2)),
            (Step::Ehlo, secs(3)),
            (Step::Mail, secs(4)),
            (Step::Rcpt, secs(5)),
            (Step::Data, secs(3)),
            (Step::Message, secs(8)),
            (Step::EndOfData, secs(6)),
            (Step::Quit, secs(7)),
        ]
    );
}

#[test]
fn end_of_data_refusal_with_quit_pipelined_reads_the_quit_reply() {
    let script = [greeting(), pipelining(), ok(), ok(), go_ahead(), r(554, "5.7.1 spam"), bye()];
    let (flights_sent, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(flights_sent.last(), Some(&strings(&["<message>", "QUIT"])));
    assert_eq!(outcome, failed(Step::EndOfData, FailureKind::Reply(reply(554, "5.7.1 spam"))));
}

#[test]
fn delivered_stays_delivered_when_the_pipelined_quit_gets_no_reply() {
    let script = [greeting(), pipelining(), ok(), ok(), go_ahead(), queued(), read_fails(FailureKind::Closed)];
    let (_, outcome) = run_flights(to(&["c@d"]), &script);
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn many_recipients_go_in_flights_of_a_hundred() {
    let names: Vec<String> = (0..150).map(|i| format!("r{i}@d")).collect();
    let params = Case { at_least_one: true, recipients: names, ..params() };
    let mut script = vec![greeting(), pipelining(), ok()];
    script.extend((0..150).map(|_| ok()));
    script.extend([go_ahead(), queued(), bye()]);
    let (flights_sent, outcome) = run_flights(params, &script);
    let sizes: Vec<usize> = flights_sent.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![1, 101, 51, 2]);
    assert_eq!(flights_sent[1].first().map(String::as_str), Some(MAIL));
    assert_eq!(flights_sent[2].first().map(String::as_str), Some("RCPT TO:<r100@d>"));
    assert_eq!(flights_sent[2].last().map(String::as_str), Some("DATA"));
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn nothing_is_pipelined_across_starttls_ehlo_or_auth() {
    let params = Case { starttls: true, ..auth_params(false) };
    let offer = ["PIPELINING", "STARTTLS", "AUTH PLAIN"];
    let script = [
        greeting(),
        ehlo(&offer),
        r(220, "go ahead"),
        Scripted::Handshake(Shake::Verified),
        ehlo(&["PIPELINING", "AUTH PLAIN"]),
        r(235, "ok"),
        ok(),
        ok(),
        go_ahead(),
        queued(),
        bye(),
    ];
    let (flights_sent, outcome) = run_flights(params, &script);
    assert_eq!(
        flights_sent,
        flights(&[
            &["EHLO client.example"],
            &["STARTTLS"],
            &["EHLO client.example"],
            &["AUTH PLAIN"],
            &["MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA"],
            &["<message>", "QUIT"],
        ])
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn without_pipelining_every_command_is_its_own_flight() {
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), r(550, "no e"), ok(), bye()];
    let (flights_sent, _) = run_flights(params(), &script);
    assert!(flights_sent.iter().all(|f| f.len() == 1), "{flights_sent:?}");
}
