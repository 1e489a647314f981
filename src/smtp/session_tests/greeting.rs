//! The opening of a connection: the greeting, EHLO and the fall back to HELO, and which
//! failures there make the server unusable (so the next one is tried).

use super::*;

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
    let params = Case { queue: true, recipients: vec!["c@d".into()], ..params() };
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
