//! Timeouts: which wait uses which field of `Timeouts`, the end-of-data wait starting once
//! the message is written, tcllib's standard values and the cap a -timeout puts on each.

use super::*;

#[test]
fn each_wait_uses_its_own_timeout() {
    let params = Case { queue: true, ..params() };
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
    let session = one_message_session(params()).unwrap();
    assert_eq!(session.step(), Step::Greeting);
    assert_eq!(session.timeout(), secs(2));
    assert_eq!(session.write_timeout(), secs(8));
    assert_eq!(session.capabilities(), &Capabilities::default());
}

#[test]
fn end_of_data_wait_starts_after_message_sent() {
    let mut session = one_message_session(to(&["c@d"])).unwrap();
    assert!(matches!(session.handle_reply(reply(220, "hi")), Next::Send(c) if matches!(c[..], [Command::Ehlo(_)])));
    assert!(matches!(session.handle_reply(reply(250, "hi")), Next::Send(c) if matches!(c[..], [Command::Mail { .. }])));
    assert!(matches!(session.handle_reply(reply(250, "ok")), Next::Send(c) if matches!(c[..], [Command::Rcpt(..)])));
    assert_eq!(session.handle_reply(reply(250, "ok")), Next::Send(vec![Command::Data]));
    assert_eq!(session.handle_reply(reply(354, "go")), Next::SendMessage(Form::AsIs));
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
