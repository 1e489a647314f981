//! One transaction, MAIL to QUIT: the whole dialogue, SIZE, the decision after the RCPTs
//! (-atleastone), refusals at each step and what is sent after them.

use super::*;

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
fn mail_command_after(params: Case, ehlo_reply: Scripted) -> String {
    let params = Case { recipients: vec!["c@d".into()], ..params };
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
    let params = Case { sender: String::new(), ..params() };
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
    let params = Case { at_least_one: true, ..params() };
    let script = [greeting(), ehlo(&[]), ok(), r(550, "no c"), ok(), go_ahead(), queued(), bye()];
    let (sent, outcome) = run(params, &script);
    assert_eq!(sent[2..], strings(&["RCPT TO:<c@d>", "RCPT TO:<e@f>", "DATA", "<message>", "QUIT"]));
    assert_eq!(outcome, delivered(vec![refusal("c@d", 550, "no c")]));
}

#[test]
fn at_least_one_still_needs_an_accepted_recipient() {
    let params = Case { at_least_one: true, ..params() };
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

#[test]
fn enhanced_status_codes_are_read_only_when_announced() {
    let refused = |ehlo_reply: Scripted| {
        let script =
            [greeting(), ehlo_reply, ok(), r(550, "5.1.1 <c@d>: no such user"), ok(), go_ahead(), queued(), bye()];
        let params = Case { at_least_one: true, ..params() };
        let (_, outcome) = run(params, &script);
        let Conclusion::Delivered { refused } = outcome else { panic!("{outcome:?}") };
        refused[0].reply.enhanced.map(|code| code.to_string())
    };
    assert_eq!(refused(ehlo(&["ENHANCEDSTATUSCODES"])), Some("5.1.1".to_string()));
    assert_eq!(refused(ehlo(&[])), None);
}

#[test]
fn a_refusal_with_an_enhanced_code_ends_its_errorcode_with_it() {
    let script = [greeting(), ehlo(&["ENHANCEDSTATUSCODES"]), r(553, "5.7.1 <a@b>: Sender address rejected"), bye()];
    let (_, outcome) = run(params(), &script);
    let Conclusion::Failed(failure) = outcome else { panic!("{outcome:?}") };
    assert_eq!(failure.code_words(), ["REPLY", "553", "MAIL", "5.7.1"]);
}

fn with_dsn() -> Case {
    let dsn = Dsn {
        notify: Some(Notify::On { success: true, failure: true, delay: false }),
        ret: Some(Ret::Headers),
        envid: Some("batch 7".into()),
        orcpt: true,
    };
    Case { dsn: Some(dsn), ..to(&["c@d"]) }
}

#[test]
fn dsn_parameters_go_with_mail_and_rcpt_when_the_server_offers_dsn() {
    let mut script = vec![greeting(), ehlo(&["DSN"])];
    script.extend(delivery_script());
    let (sent, outcome) = run(with_dsn(), &script);
    assert_eq!(
        &sent[1..3],
        ["MAIL FROM:<a@b> RET=HDRS ENVID=batch+207", "RCPT TO:<c@d> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;c@d"]
    );
    assert_eq!(outcome, delivered(vec![]));
}

#[test]
fn without_dsn_the_message_goes_without_the_parameters_and_the_trace_says_so() {
    let mut session = one_message_session(with_dsn()).unwrap();
    session.handle_reply(greeting_reply());
    let next = session.handle_reply(Reply::with_lines(250, vec!["mx".into(), "SIZE".into()]));
    let Next::Send(commands) = next else { panic!("{next:?}") };
    assert_eq!(commands[0].to_string(), "MAIL FROM:<a@b> SIZE=350");
    assert!(session.take_trace().iter().any(|l| l.contains("does not offer DSN")));
    let Next::Send(commands) = session.handle_reply(reply(250, "ok")) else { panic!("no RCPT") };
    assert_eq!(commands[0].to_string(), "RCPT TO:<c@d>");
}
