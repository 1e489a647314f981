//! Delivery status notifications (RFC 3461): what the sender asks the servers to report
//! (NOTIFY), how much of the message a bounce returns (RET), the sender's own reference
//! for the transaction (ENVID) and each recipient's original address (ORCPT), as the MAIL
//! and RCPT parameters that carry them when the server offers DSN.

use std::fmt::Write as _;

/// When to notify the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// Never, not even on failure.
    Never,
    /// On any of these events.
    On { success: bool, failure: bool, delay: bool },
}

/// What a bounce carries of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Headers,
}

/// The DSN request of one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    pub notify: Option<Notify>,
    pub ret: Option<Ret>,
    /// The envelope identifier, as given (xtext-encoded on the wire).
    pub envid: Option<String>,
    /// Send `ORCPT=rfc822;<address>` with each recipient.
    pub orcpt: bool,
}

impl Dsn {
    /// The MAIL parameters: `RET=FULL|HDRS`, `ENVID=<xtext>`.
    pub fn mail_parameters(&self) -> Vec<String> {
        let mut parameters = Vec::new();
        match self.ret {
            Some(Ret::Full) => parameters.push("RET=FULL".to_string()),
            Some(Ret::Headers) => parameters.push("RET=HDRS".to_string()),
            None => {}
        }
        if let Some(envid) = &self.envid {
            parameters.push(format!("ENVID={}", xtext(envid)));
        }
        parameters
    }

    /// The RCPT parameters for `address`: `NOTIFY=...`, and `ORCPT=rfc822;<xtext>` for an
    /// ASCII address (RFC 3461's address type; a UTF-8 one needs RFC 6533's, not sent).
    pub fn rcpt_parameters(&self, address: &str) -> Vec<String> {
        let mut parameters = Vec::new();
        match self.notify {
            Some(Notify::Never) => parameters.push("NOTIFY=NEVER".to_string()),
            Some(Notify::On { success, failure, delay }) => {
                let events: Vec<&str> = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                    .into_iter()
                    .filter_map(|(on, name)| on.then_some(name))
                    .collect();
                if !events.is_empty() {
                    parameters.push(format!("NOTIFY={}", events.join(",")));
                }
            }
            None => {}
        }
        if self.orcpt && address.is_ascii() {
            parameters.push(format!("ORCPT=rfc822;{}", xtext(address)));
        }
        parameters
    }
}

/// RFC 3461 §4's xtext: every byte outside `!`..`~`, and `+` and `=`, as `+HH`.
pub fn xtext(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b'!'..=b'~').contains(&byte) && byte != b'+' && byte != b'=' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "+{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_encodes_plus_equals_and_everything_outside_printable_ascii() {
        assert_eq!(xtext("abc-123@x.y"), "abc-123@x.y");
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("é"), "+C3+A9");
        assert_eq!(xtext("\t~!"), "+09~!");
    }

    #[test]
    fn mail_parameters_carry_ret_and_envid() {
        let dsn = Dsn { ret: Some(Ret::Headers), envid: Some("QQ 314159".into()), ..Dsn::default() };
        assert_eq!(dsn.mail_parameters(), ["RET=HDRS", "ENVID=QQ+20314159"]);
        assert!(Dsn::default().mail_parameters().is_empty());
    }

    #[test]
    fn rcpt_parameters_carry_notify_and_orcpt() {
        let on = Notify::On { success: true, failure: true, delay: false };
        let dsn = Dsn { notify: Some(on), orcpt: true, ..Dsn::default() };
        assert_eq!(dsn.rcpt_parameters("a+b@x.y"), ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;a+2Bb@x.y"]);
        let never = Dsn { notify: Some(Notify::Never), orcpt: true, ..Dsn::default() };
        assert_eq!(never.rcpt_parameters("ü@x.y"), ["NOTIFY=NEVER"], "no ORCPT for a UTF-8 address");
    }
}
