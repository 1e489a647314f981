//! `Session::new`: the parameters it refuses (CR, LF or NUL that could inject commands,
//! a bad client name, no recipients) and the null sender it accepts.

use super::*;

fn refused(params: Case) -> bool {
    matches!(one_message_session(params), Err(InvalidParams(_)))
}

#[test]
fn new_refuses_cr_lf_or_nul_in_the_client_name() {
    for bad in ["client\r\nMAIL FROM:<x@y>", "client\r", "client\n", "cli\0ent"] {
        assert!(refused(Case { client: bad.into(), ..params() }), "{bad:?}");
    }
}

#[test]
fn new_refuses_a_client_name_with_a_space_or_empty() {
    assert!(refused(Case { client: "client example".into(), ..params() }));
    assert!(refused(Case { client: String::new(), ..params() }));
}

#[test]
fn new_refuses_cr_lf_or_nul_in_the_sender() {
    for bad in ["a@b>\r\nRCPT TO:<evil@x", "a@b\r", "a@b\n", "a\0@b"] {
        assert!(refused(Case { sender: bad.into(), ..params() }), "{bad:?}");
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
    assert_eq!(one_message_session(to(&[])).unwrap_err(), InvalidParams("no recipients".into()));
}

#[test]
fn new_accepts_the_null_sender() {
    assert!(one_message_session(Case { sender: String::new(), ..params() }).is_ok());
}
