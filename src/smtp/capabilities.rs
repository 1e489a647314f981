//! The service extensions a server announces in its EHLO reply
//! (RFC 5321 §4.1.1.1).

use super::reply::Reply;

/// What the server announced in its EHLO reply (empty after HELO).
///
/// Kept as an ordered list rather than a map: replies are short, and the
/// order is needed to list AUTH mechanisms in the server's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Each announced keyword, upper-cased, with its parameters as sent.
    entries: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// From a 250 EHLO reply: every line after the first (the first is the
    /// greeting text) is "KEYWORD params...".
    ///
    /// A reply that is not a success announces nothing, so it gives empty
    /// capabilities, the same as a server that only speaks HELO.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        if !reply.is_success() {
            return Capabilities::default();
        }
        let entries = reply.lines.iter().skip(1).filter_map(|line| parse_line(line)).collect();
        Capabilities { entries }
    }

    /// The keywords announced, upper-cased, in the server's order.
    pub fn keywords(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(keyword, _)| keyword.as_str())
    }

    /// Whether `keyword` was announced (ASCII case-insensitive, as keywords
    /// are per RFC 5321 §2.4). Also true for "AUTH" when only the old
    /// "AUTH=..." form was seen.
    pub fn has(&self, keyword: &str) -> bool {
        self.find(keyword).is_some()
    }

    /// `Some(limit)` when SIZE was announced with a positive number; `None`
    /// when SIZE was not announced, announced without a number, with 0
    /// (RFC 1870: no fixed limit), or with garbage. Callers use it to refuse
    /// an oversized message before sending it.
    pub fn size_limit(&self) -> Option<u64> {
        let param = self.find("SIZE")?.first()?;
        // RFC 1870 allows digits only; `parse` alone would also take "+5".
        if !param.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        param.parse().ok().filter(|&limit| limit > 0)
    }

    /// The SASL mechanisms from every "AUTH a b c" and old-style "AUTH=a b"
    /// line, upper-cased, duplicates removed, in order of first appearance.
    ///
    /// Both forms are merged because some servers announce different lists
    /// in each, and a mechanism named in either is offered.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut mechanisms: Vec<String> = Vec::new();
        let announced = self.entries.iter().filter(|(keyword, _)| keyword == "AUTH").flat_map(|(_, params)| params);
        for mechanism in announced {
            let mechanism = mechanism.to_ascii_uppercase();
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        mechanisms
    }

    /// The parameters of the first line announcing `keyword`, if any.
    fn find(&self, keyword: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(announced, _)| announced.eq_ignore_ascii_case(keyword))
            .map(|(_, params)| params.as_slice())
    }
}

/// Splits one EHLO line into its upper-cased keyword and its parameters.
/// Returns `None` for an empty or whitespace-only line, which carries nothing.
fn parse_line(line: &str) -> Option<(String, Vec<String>)> {
    let mut words = line.split_ascii_whitespace();
    let first = words.next()?;
    let rest = words.map(str::to_owned);

    // Servers that predate RFC 2554 wrote "AUTH=LOGIN PLAIN"; treat it as
    // AUTH with the part after '=' as the first parameter. `get` returns
    // None rather than panicking if byte 5 is not a character boundary.
    let old_auth = first.get(..5).filter(|prefix| prefix.eq_ignore_ascii_case("AUTH=")).and(first.get(5..));
    match old_auth {
        Some(after_eq) => {
            let params = Some(after_eq).filter(|p| !p.is_empty()).map(str::to_owned).into_iter().chain(rest).collect();
            Some(("AUTH".to_owned(), params))
        }
        None => Some((first.to_ascii_uppercase(), rest.collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::super::reply::{parse_reply, Status};
    use super::*;

    fn ehlo(lines: &[&str]) -> Capabilities {
        let reply = Reply::with_lines(250, lines.iter().map(|s| s.to_string()).collect());
        Capabilities::from_ehlo(&reply)
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn postfix_ehlo() {
        let caps = ehlo(&[
            "localhost",
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ]);
        for keyword in [
            "PIPELINING",
            "SIZE",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
            "starttls",
        ] {
            assert!(caps.has(keyword), "{keyword}");
        }
        // The greeting line is not a keyword.
        assert!(!caps.has("localhost"));
        assert!(!caps.has("BINARYMIME"));
        assert_eq!(caps.size_limit(), Some(10_240_000));
        assert_eq!(
            caps.auth_mechanisms(),
            strings(&["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"])
        );
    }

    #[test]
    fn lower_case_keywords_are_recognised() {
        let caps = ehlo(&["mx.example.org", "starttls", "size 1000", "auth plain"]);
        assert!(caps.has("STARTTLS"));
        assert!(caps.has("StartTLS"));
        assert_eq!(caps.size_limit(), Some(1000));
        assert_eq!(caps.auth_mechanisms(), strings(&["PLAIN"]));
    }

    #[test]
    fn old_auth_form_alone_counts_as_auth() {
        let caps = ehlo(&["mx", "AUTH=LOGIN PLAIN"]);
        assert!(caps.has("AUTH"));
        assert_eq!(caps.auth_mechanisms(), strings(&["LOGIN", "PLAIN"]));

        let lower = ehlo(&["mx", "auth=login"]);
        assert!(lower.has("auth"));
        assert_eq!(lower.auth_mechanisms(), strings(&["LOGIN"]));

        let bare = ehlo(&["mx", "AUTH="]);
        assert!(bare.has("AUTH"));
        assert!(bare.auth_mechanisms().is_empty());
    }

    #[test]
    fn both_auth_forms_are_merged_without_duplicates() {
        let caps = ehlo(&["mx", "AUTH LOGIN PLAIN", "AUTH=LOGIN cram-md5", "AUTH plain"]);
        assert_eq!(caps.auth_mechanisms(), strings(&["LOGIN", "PLAIN", "CRAM-MD5"]));
    }

    #[test]
    fn auth_prefix_without_equals_is_another_keyword() {
        let caps = ehlo(&["mx", "AUTHX PLAIN"]);
        assert!(!caps.has("AUTH"));
        assert!(caps.auth_mechanisms().is_empty());
    }

    #[test]
    fn size_without_a_usable_limit() {
        let cases: &[(&str, &[&str])] = &[
            ("not announced", &["mx", "PIPELINING"]),
            ("no number", &["mx", "SIZE"]),
            ("zero means no limit", &["mx", "SIZE 0"]),
            ("garbage", &["mx", "SIZE lots"]),
            ("signed", &["mx", "SIZE +5"]),
            ("negative", &["mx", "SIZE -5"]),
            ("overflow", &["mx", "SIZE 99999999999999999999999"]),
        ];
        for (name, lines) in cases {
            assert_eq!(ehlo(lines).size_limit(), None, "{name}");
        }
        assert!(ehlo(&["mx", "SIZE"]).has("SIZE"));
    }

    #[test]
    fn single_line_ehlo_announces_nothing() {
        let caps = ehlo(&["mx.example.org Hello"]);
        assert_eq!(caps, Capabilities::default());
        assert!(!caps.has("mx.example.org"));
    }

    #[test]
    fn failed_ehlo_announces_nothing() {
        let reply = Reply::with_lines(502, strings(&["not implemented", "STARTTLS"]));
        assert_eq!(Capabilities::from_ehlo(&reply), Capabilities::default());
    }

    #[test]
    fn empty_and_whitespace_lines_are_ignored() {
        // smtp-sink ends its EHLO reply with "250 ", i.e. an empty last line.
        let caps = ehlo(&["localhost", "PIPELINING", "  \t ", ""]);
        assert!(caps.has("PIPELINING"));
        assert!(!caps.has(""));
        assert_eq!(caps, ehlo(&["localhost", "PIPELINING"]));
    }

    #[test]
    fn from_a_parsed_reply() {
        let wire = b"250-localhost\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 \r\n";
        let Ok(Status::Complete((reply, _))) = parse_reply(wire) else {
            panic!("reply should parse");
        };
        let caps = Capabilities::from_ehlo(&reply);
        assert!(caps.has("pipelining"));
        assert_eq!(caps.size_limit(), Some(10_240_000));
    }
}
