//! The envelope (reverse-path and recipients) and the header fields it implies, following
//! tcllib smtp 1.5.1 (reference §3) with the design's improvements: Dcc and Bcc are never
//! transmitted, Bcc recipients share the one transaction, a message with no recipient at
//! all is an error, and the default From is a qualified address.

use super::Error;

/// One `-header` key with all its values, in order. The first spelling of the key is kept,
/// keys are compared case-insensitively, and keys keep the order of first appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOption {
    pub name: String,
    pub values: Vec<String>,
}

/// One mailbox as mime's address parser returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// `local@domain`, with route, comments and display name removed.
    pub address: String,
    /// Why it did not parse, or empty.
    pub error: String,
}

/// Parses an RFC 822 address list (tcllib's `mime::parseaddress`, through the bridge).
pub trait AddressParser {
    fn parse(&mut self, text: &str) -> Result<Vec<Mailbox>, String>;
}

/// What the options say about the envelope.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub headers: &'a [HeaderOption],
    /// `-originator`: `None` when not given, `Some("")` for the null reverse-path.
    pub originator: Option<&'a str>,
    /// `-recipients`; empty when not given.
    pub recipients: &'a str,
    /// The default originator: the user running the script.
    pub user: &'a str,
}

/// The envelope and the header fields it implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse-path; empty for `MAIL FROM:<>`.
    pub sender: String,
    /// Every recipient in order: primary ones, then Bcc ones.
    pub recipients: Vec<String>,
    /// Resent- mode: some `-header` key starts with `Resent-` (reference §3.1).
    pub resent: bool,
    /// From and Sender fields to add unless the message already has them.
    pub implied: Vec<(String, String)>,
}

impl Envelope {
    /// A field name in this envelope's mode: `To` or `Resent-To`.
    pub fn field(&self, base: &str) -> String {
        field(self.resent, base)
    }
}

fn field(resent: bool, base: &str) -> String {
    if resent {
        format!("Resent-{base}")
    } else {
        base.to_string()
    }
}

/// Computes the envelope from the options (never from the message's own headers, as in
/// tcllib).
pub fn envelope(input: &Input<'_>, parser: &mut dyn AddressParser) -> Result<Envelope, Error> {
    let resent = input.headers.iter().any(|h| h.name.to_ascii_lowercase().starts_with("resent-"));
    let name = |base: &str| field(resent, base);
    let find = |base: &str| {
        let wanted = name(base);
        input.headers.iter().find(|h| h.name.eq_ignore_ascii_case(&wanted))
    };
    let joined = |base: &str| find(base).map(|h| h.values.join(","));

    let mut implied = Vec::new();
    let sender = match input.originator {
        Some("") => String::new(),
        originator => {
            let from = joined("From");
            let (text, who, defaulted) = match (originator, &from) {
                (Some(o), _) => (o.to_string(), "-originator".to_string(), false),
                (None, Some(f)) => (f.clone(), name("From"), false),
                (None, None) => (input.user.to_string(), "-originator".to_string(), true),
            };
            let sender = single_mailbox(parser, &text, &who)?;
            match &from {
                // tcllib writes the bare user name here; a qualified address is valid mail.
                None => implied.push((name("From"), if defaulted { sender.clone() } else { text.clone() })),
                // tcllib's rule (reference §3.2): when From names someone other than the
                // originator, a Sender field carries From's first address.
                Some(from) if find("Sender").is_none() && *from != text => {
                    let first = parse(parser, from, &name("From"))?.into_iter().next();
                    if let Some(first) = first.filter(|f| *f != sender) {
                        implied.push((name("Sender"), first));
                    }
                }
                Some(_) => {}
            }
            sender
        }
    };

    let mut recipients = if !input.recipients.is_empty() {
        parse(parser, input.recipients, "-recipients")?
    } else {
        let Some(to) = joined("To") else { return Err(Error::NeedTo { resent }) };
        let mut text = to;
        let mut who = vec![name("To")];
        for base in ["cc", "Dcc"] {
            if let Some(more) = joined(base) {
                text.push(',');
                text.push_str(&more);
                who.push(name(base));
            }
        }
        parse(parser, &text, &who.join("/"))?
    };
    if let Some(bcc) = joined("Bcc") {
        recipients.extend(parse(parser, &bcc, &name("Bcc"))?);
    }
    if recipients.is_empty() {
        let who = if input.recipients.is_empty() { name("To") } else { "-recipients".into() };
        return Err(Error::NoRecipients { who });
    }
    Ok(Envelope { sender, recipients, resent, implied })
}

/// The addresses of an address list, or the first parse error.
fn parse(parser: &mut dyn AddressParser, text: &str, who: &str) -> Result<Vec<String>, Error> {
    let mailboxes = parser.parse(text).map_err(Error::Parser)?;
    let mut addresses = Vec::with_capacity(mailboxes.len());
    for m in mailboxes {
        // An empty group ("undisclosed-recipients:;") parses as one entry without an
        // address; it names nobody, and `RCPT TO:<>` is never a valid recipient.
        if m.address.is_empty() && m.error.is_empty() {
            continue;
        }
        if !m.error.is_empty() {
            return Err(Error::Address { who: who.into(), detail: m.error });
        }
        if super::has_line_break_or_nul(&m.address) {
            return Err(Error::LineBreak { what: format!("an address in {who}"), value: m.address });
        }
        addresses.push(m.address);
    }
    Ok(addresses)
}

/// The one address of an originator.
fn single_mailbox(parser: &mut dyn AddressParser, text: &str, who: &str) -> Result<String, Error> {
    let mut addresses = parse(parser, text, who)?;
    match addresses.len() {
        1 => Ok(addresses.remove(0)),
        0 => Err(Error::Address { who: who.into(), detail: format!("invalid address {text:?}") }),
        _ => Err(Error::TooManyMailboxes { who: who.into(), value: text.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for mime's parser: comma-separated, `bad` anywhere is an error, an
    /// unqualified name gets `@vm`, `Name <a@b>` yields `a@b`.
    struct FakeParser;

    impl AddressParser for FakeParser {
        fn parse(&mut self, text: &str) -> Result<Vec<Mailbox>, String> {
            Ok(text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let s = s.rsplit('<').next().unwrap_or(s).trim_end_matches('>');
                    let address = if s.contains('@') { s.to_string() } else { format!("{s}@vm") };
                    let error = if s.contains("bad") { "expecting sub-domain".to_string() } else { String::new() };
                    Mailbox { address, error }
                })
                .collect())
        }
    }

    fn h(name: &str, values: &[&str]) -> HeaderOption {
        HeaderOption { name: name.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    fn run(headers: &[HeaderOption], originator: Option<&str>, recipients: &str) -> Result<Envelope, Error> {
        envelope(&Input { headers, originator, recipients, user: "root" }, &mut FakeParser)
    }

    #[test]
    fn originator_and_recipients_options_make_the_envelope() {
        let e = run(&[], Some("alice@example.org"), "bob@example.net, carol@example.net").unwrap();
        assert_eq!(e.sender, "alice@example.org");
        assert_eq!(e.recipients, ["bob@example.net", "carol@example.net"]);
        assert_eq!(e.implied, [("From".to_string(), "alice@example.org".to_string())]);
    }

    #[test]
    fn empty_originator_is_the_null_sender_without_from() {
        let e = run(&[], Some(""), "bob@example.net").unwrap();
        assert_eq!(e.sender, "");
        assert!(e.implied.is_empty());
    }

    #[test]
    fn default_originator_is_the_qualified_user() {
        let e = run(&[], None, "bob@example.net").unwrap();
        assert_eq!(e.sender, "root@vm");
        assert_eq!(e.implied, [("From".to_string(), "root@vm".to_string())]);
    }

    #[test]
    fn from_header_is_the_originator_when_none_given() {
        let e = run(&[h("From", &["Alice <alice@example.org>"])], None, "bob@example.net").unwrap();
        assert_eq!(e.sender, "alice@example.org");
        assert!(e.implied.is_empty());
    }

    #[test]
    fn sender_field_carries_from_when_originator_differs() {
        let e = run(&[h("From", &["Alice <alice@example.org>"])], Some("bounce@example.org"), "b@x").unwrap();
        assert_eq!(e.sender, "bounce@example.org");
        assert_eq!(e.implied, [("Sender".to_string(), "alice@example.org".to_string())]);
    }

    #[test]
    fn several_originator_mailboxes_are_refused() {
        let err = run(&[], Some("a@b, c@d"), "x@y").unwrap_err();
        assert_eq!(err.to_string(), "too many mailboxes in -originator: a@b, c@d");
    }

    #[test]
    fn to_cc_dcc_and_bcc_all_become_recipients_in_order() {
        let headers = [h("To", &["a@x"]), h("cc", &["b@x"]), h("Dcc", &["c@x"]), h("Bcc", &["d@x", "e@x"])];
        let e = run(&headers, Some("s@x"), "").unwrap();
        assert_eq!(e.recipients, ["a@x", "b@x", "c@x", "d@x", "e@x"]);
    }

    #[test]
    fn recipients_option_overrides_to_but_bcc_still_counts() {
        let e = run(&[h("To", &["a@x"]), h("Bcc", &["d@x"])], Some("s@x"), "r@x").unwrap();
        assert_eq!(e.recipients, ["r@x", "d@x"]);
    }

    #[test]
    fn missing_to_is_tcllibs_error() {
        assert_eq!(run(&[], Some("s@x"), "").unwrap_err().to_string(), "need -header \"To ...\"");
        let resent = [h("Resent-Subject", &["hi"])];
        assert_eq!(run(&resent, Some("s@x"), "").unwrap_err().to_string(), "need -header \"Resent-To ...\"");
    }

    #[test]
    fn parse_errors_name_the_fields_involved() {
        let err = run(&[h("To", &["a@x"]), h("cc", &["bad@"])], Some("s@x"), "").unwrap_err();
        assert_eq!(err.to_string(), "error in To/cc: expecting sub-domain");
        let err = run(&[h("Resent-To", &["a@x"]), h("Resent-cc", &["bad@"])], Some("s@x"), "").unwrap_err();
        assert_eq!(err.to_string(), "error in Resent-To/Resent-cc: expecting sub-domain");
    }

    #[test]
    fn resent_mode_uses_resent_fields_only() {
        let e = run(&[h("Resent-To", &["a@x"]), h("To", &["ignored@x"])], Some("s@x"), "").unwrap();
        assert!(e.resent);
        assert_eq!(e.recipients, ["a@x"]);
        assert_eq!(e.implied, [("Resent-From".to_string(), "s@x".to_string())]);
    }

    #[test]
    fn no_address_at_all_is_an_error_not_a_silent_no_op() {
        let err = run(&[h("To", &[""])], Some("s@x"), "").unwrap_err();
        assert!(matches!(err, Error::NoRecipients { .. }));
    }

    #[test]
    fn an_empty_group_names_no_recipient() {
        struct Group;
        impl AddressParser for Group {
            fn parse(&mut self, text: &str) -> Result<Vec<Mailbox>, String> {
                let address = if text.ends_with(":;") { String::new() } else { text.to_string() };
                Ok(vec![Mailbox { address, error: String::new() }])
            }
        }
        let headers = [h("To", &["undisclosed-recipients:;"]), h("Bcc", &["hidden@x"])];
        let input = Input { headers: &headers, originator: Some("s@x"), recipients: "", user: "u" };
        assert_eq!(envelope(&input, &mut Group).unwrap().recipients, ["hidden@x"]);
        let input = Input { headers: &headers[..1], ..input };
        assert!(matches!(envelope(&input, &mut Group), Err(Error::NoRecipients { .. })));
    }

    #[test]
    fn an_address_with_a_line_break_is_refused() {
        struct Raw;
        impl AddressParser for Raw {
            fn parse(&mut self, text: &str) -> Result<Vec<Mailbox>, String> {
                Ok(vec![Mailbox { address: text.into(), error: String::new() }])
            }
        }
        let input = Input { headers: &[], originator: Some("s@x"), recipients: "\"b\r\nRSET\"@y", user: "u" };
        assert!(matches!(envelope(&input, &mut Raw), Err(Error::LineBreak { .. })));
    }
}
