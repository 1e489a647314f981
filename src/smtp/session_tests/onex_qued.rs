//! ONEX and QUED (with -queue and XQUE), sent between EHLO and MAIL when announced; a
//! refusal of either is ignored.

use super::*;

/// The commands between EHLO and MAIL, for a one-recipient delivery.
fn between_ehlo_and_mail(params: Case, script_after_ehlo_reply: &[Scripted]) -> Vec<String> {
    let params = Case { recipients: vec!["c@d".into()], ..params };
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
    let params = Case { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE"]), ok()]), strings(&["QUED"]));
}

#[test]
fn qued_refusal_is_ignored() {
    let params = Case { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE"]), r(502, "no")]), strings(&["QUED"]));
}

#[test]
fn qued_is_not_sent_without_queue() {
    assert_eq!(between_ehlo_and_mail(params(), &[ehlo(&["XQUE"])]), Vec::<String>::new());
}

#[test]
fn qued_is_not_sent_when_xque_is_not_announced() {
    let params = Case { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["PIPELINING"])]), Vec::<String>::new());
}

#[test]
fn onex_then_qued_come_between_ehlo_and_mail() {
    let params = Case { queue: true, ..params() };
    assert_eq!(between_ehlo_and_mail(params, &[ehlo(&["XQUE", "ONEX"]), ok(), ok()]), strings(&["ONEX", "QUED"]));
}
