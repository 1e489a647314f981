//! The transmitted header block: mime's rendering of the token, edited without touching
//! the token (design improvements 1 and 10).
//!
//! - `-header` fields replace fields of the same name (tcllib appends a duplicate);
//! - implied fields (From, Sender, Date, Message-ID) are added only when absent;
//! - Bcc and Dcc are removed, whatever their source;
//! - a field RFC 5322/2045 allow once appears once (mime writes Content-Transfer-Encoding
//!   twice for leaf parts).
//!
//! New fields go where tcllib's would: after the token's own fields, before the
//! Content-Type/Content-Transfer-Encoding fields mime writes last.

use super::{block, Envelope, Error, HeaderOption};

/// Fields a message has at most once (RFC 5322 §3.6, RFC 2045). Resent- fields are
/// absent on purpose: a message resent twice legitimately has two Resent- blocks.
const ONCE_ONLY: &[&str] = &[
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
];

/// Fields holding an address list: several `-header` values join into one field.
const ADDRESS_LISTS: &[&str] =
    &["from", "reply-to", "to", "cc", "bcc", "resent-from", "resent-to", "resent-cc", "resent-bcc"];

/// Fields never transmitted: they name hidden recipients.
const HIDDEN: &[&str] = &["bcc", "dcc", "resent-bcc", "resent-dcc"];

/// The edits to apply to the rendered message's header block.
#[derive(Debug, Clone)]
pub struct HeaderPlan {
    /// `-header` fields (hidden ones already dropped), in order of first appearance.
    set: Vec<HeaderOption>,
    /// Fields added only when the message lacks them, in order.
    defaults: Vec<(String, String)>,
    /// The names of the fields the token and its parts have: with `set`,
    /// `defaults` and what mime writes itself, the only fields a header block may hold.
    token_fields: Vec<String>,
    /// How to write a field whose value is not ASCII (`name`, unfolded value) as RFC 2047
    /// encoded words, for a message that will not go with SMTPUTF8 (RFC 6532 allows UTF-8
    /// headers only with it); `None`: such fields go as they are.
    encode: Option<Encoder>,
}

/// Writes field `name: value` (with its CRLF) in ASCII, or `None` when it cannot.
pub type Encoder = fn(&str, &str) -> Option<Vec<u8>>;

/// Fields mime writes into a header block without them being among the token's fields.
const MIME_WRITES: &[&str] = &["content-type", "content-transfer-encoding", "mime-version"];

impl HeaderPlan {
    /// The plan for `-header` options `headers` and `envelope`, with the Date and
    /// Message-ID values to use when the message has none, for a token whose header
    /// fields (of all its parts) are `token_fields`.
    pub fn new(
        headers: &[HeaderOption],
        envelope: &Envelope,
        date: &str,
        message_id: &str,
        token_fields: &[(String, String)],
    ) -> HeaderPlan {
        let set = headers.iter().filter(|h| !is_in(&h.name, HIDDEN)).cloned().collect();
        let mut defaults = envelope.implied.clone();
        defaults.push((envelope.field("Date"), date.to_string()));
        defaults.push((envelope.field("Message-ID"), message_id.to_string()));
        let token_fields = token_fields.iter().map(|(name, _)| name.clone()).collect();
        HeaderPlan { set, defaults, token_fields, encode: None }
    }

    /// The same plan, with the fields whose values are not ASCII written by `encode`.
    pub fn encoding_with(self, encode: Encoder) -> HeaderPlan {
        HeaderPlan { encode: Some(encode), ..self }
    }

    /// Whether a field named `name` may appear in a transmitted header block.
    fn declares(&self, name: &str) -> bool {
        is_in(name, MIME_WRITES)
            || self.token_fields.iter().any(|n| n.eq_ignore_ascii_case(name))
            || self.set.iter().any(|h| h.name.eq_ignore_ascii_case(name))
            || self.defaults.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The header block of a MIME part (`part` names it: `part 1.2`) as it is to be
    /// transmitted: mime's artefacts repaired, then checked like the message's own, and
    /// its fields that are not ASCII encoded as the message's are. `None` when it goes as
    /// it is.
    pub fn part_header(&self, part: &str, header: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let repaired = block::repair(header);
        let block = repaired.as_deref().unwrap_or(header);
        block::check(block, part, |name| self.declares(name))?;
        let Some(encode) = self.encode.filter(|_| !block.is_ascii()) else { return Ok(repaired) };
        let (mut fields, _) = split(block);
        encode_fields(&mut fields, encode);
        let out = header_block(&fields, block.len() + 64)?;
        block::check(&out, part, |name| self.declares(name))?;
        Ok(Some(out))
    }
}

/// A header block inside a forwarded message (a message/rfc822 part of the token) as it
/// is to be transmitted: mime's rendering artefacts repaired (a forwarded message made
/// with mime has them too), nothing else: it is the forwarded message's, neither checked
/// against the token's fields nor encoded. `None` when it goes as it is.
pub fn forwarded_header(header: &[u8]) -> Option<Vec<u8>> {
    block::repair(header)
}

/// One header field: its name and its exact bytes (continuation lines and CRLF included).
#[derive(Debug, Clone)]
struct Field {
    name: String,
    bytes: Vec<u8>,
}

impl Field {
    fn new(name: &str, value: &str) -> Field {
        Field { name: name.to_string(), bytes: format!("{name}: {value}\r\n").into_bytes() }
    }

    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value: what follows the colon, unfolded (each line break before white space
    /// removed), without the final line break.
    fn value(&self) -> Vec<u8> {
        let colon = self.bytes.iter().position(|&b| b == b':');
        let after = colon.and_then(|i| self.bytes.get(i + 1..)).unwrap_or_default();
        let mut value = Vec::with_capacity(after.len());
        for line in after.split(|&b| b == b'\n') {
            value.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        }
        value
    }
}

fn is_in(name: &str, set: &[&str]) -> bool {
    set.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Applies `plan` to the header block of `message` and returns the message to transmit.
/// Both mime's header block (repaired) and the result are checked as they would go on
/// the wire ([`block::check`]): the edits must not hide a field that mime wrote from
/// broken header text (a Bcc line, which the edits drop) nor add one.
pub fn rewrite(message: &[u8], plan: &HeaderPlan) -> Result<Vec<u8>, Error> {
    let repaired = block::repair(message);
    let message = repaired.as_deref().unwrap_or(message);
    block::check(message, "the message", |name| plan.declares(name))?;
    let (mut fields, body) = split(message);
    fields.retain(|f| !is_in(&f.name, HIDDEN));

    for option in &plan.set {
        let new = fields_for(option)?;
        let replaces = !option.name.to_ascii_lowercase().starts_with("resent-");
        match fields.iter().position(|f| f.is(&option.name)).filter(|_| replaces) {
            Some(at) => {
                fields.retain(|f| !f.is(&option.name));
                let at = at.min(fields.len());
                fields.splice(at..at, new);
            }
            None => {
                let at = insertion_point(&fields);
                fields.splice(at..at, new);
            }
        }
    }
    for (name, value) in &plan.defaults {
        if !fields.iter().any(|f| f.is(name)) {
            let at = insertion_point(&fields);
            fields.insert(at, Field::new(name, value));
        }
    }
    // Keep the first of each once-only field (mime's second Content-Transfer-Encoding).
    let mut seen: Vec<String> = Vec::new();
    fields.retain(|f| {
        let lower = f.name.to_ascii_lowercase();
        if !is_in(&lower, ONCE_ONLY) {
            return true;
        }
        if seen.contains(&lower) {
            return false;
        }
        seen.push(lower);
        true
    });

    if let Some(encode) = plan.encode {
        encode_fields(&mut fields, encode);
    }
    let mut out = header_block(&fields, message.len() + 256)?;
    block::check(&out, "the message", |name| plan.declares(name))?;
    out.extend_from_slice(body);
    Ok(out)
}

/// `fields`, each folded where too long, and the empty line that ends a header block.
fn header_block(fields: &[Field], capacity: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(capacity);
    for f in fields {
        fold(f, &mut out)?;
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Rewrites the fields that are not ASCII with `encode`, where it can.
fn encode_fields(fields: &mut [Field], encode: Encoder) {
    for f in fields.iter_mut().filter(|f| !f.bytes.is_ascii()) {
        let value = f.value();
        if let Some(bytes) = std::str::from_utf8(&value).ok().and_then(|v| encode(&f.name, v.trim())) {
            f.bytes = bytes;
        }
    }
}

/// The longest line a message may have, without its CRLF (RFC 5322 §2.1.1).
const MAX_LINE: usize = 998;

/// Appends field `f` to `out`, each of its lines longer than [`MAX_LINE`] folded: broken
/// before the last space or tab that keeps the line short enough (unfolding gives the
/// value back). A line without such a place cannot be sent.
fn fold(f: &Field, out: &mut Vec<u8>) -> Result<(), Error> {
    for line in f.bytes.split_inclusive(|&b| b == b'\n') {
        let mut rest = line.strip_suffix(b"\r\n").unwrap_or(line);
        while rest.len() > MAX_LINE {
            // Never at the very start: a line must not be only white space.
            let at = rest
                .get(..=MAX_LINE)
                .and_then(|head| head.iter().skip(1).rposition(|&b| b == b' ' || b == b'\t'))
                .map(|i| i + 1)
                .ok_or_else(|| Error::LineTooLong(f.name.clone()))?;
            let (head, tail) = rest.split_at(at);
            out.extend_from_slice(head);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        out.extend_from_slice(rest);
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// The fields one `-header` key produces.
fn fields_for(option: &HeaderOption) -> Result<Vec<Field>, Error> {
    let name = option.name.as_str();
    if option.values.len() > 1 && is_in(name, ADDRESS_LISTS) {
        return Ok(vec![Field::new(name, &option.values.join(", "))]);
    }
    if option.values.len() > 1 && is_in(name, ONCE_ONLY) {
        return Err(Error::DuplicateField(name.to_string()));
    }
    Ok(option.values.iter().map(|v| Field::new(name, v)).collect())
}

/// Where new fields go: before the Content-Type/Content-Transfer-Encoding fields that mime
/// renders after the token's own, or at the end.
fn insertion_point(fields: &[Field]) -> usize {
    fields.iter().position(|f| f.is("content-type") || f.is("content-transfer-encoding")).unwrap_or(fields.len())
}

/// Splits a message into its header fields and its body (after the empty line).
/// Accepts CRLF or bare LF line ends; a line starting with a space or tab continues the
/// field before it.
fn split(message: &[u8]) -> (Vec<Field>, &[u8]) {
    let mut fields: Vec<Field> = Vec::new();
    let mut rest = message;
    loop {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => rest.split_at(i + 1),
            None => (rest, &[][..]),
        };
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            return (fields, next);
        }
        let mut bytes = content.to_vec();
        bytes.extend_from_slice(b"\r\n");
        match (content.first(), fields.last_mut()) {
            (Some(b' ' | b'\t'), Some(last)) => last.bytes.extend_from_slice(&bytes),
            _ => {
                let name_end = content.iter().position(|&b| b == b':').unwrap_or(0);
                let name = String::from_utf8_lossy(content.get(..name_end).unwrap_or_default()).trim().to_string();
                fields.push(Field { name, bytes });
            }
        }
        if next.is_empty() {
            return (fields, next);
        }
        rest = next;
    }
}

/// Checks a `-header` name: printable ASCII without `:` (RFC 5322 ftext).
pub fn check_field_name(name: &str) -> Result<(), Error> {
    if super::has_line_break_or_nul(name) {
        return Err(Error::LineBreak { what: "a -header name".into(), value: name.into() });
    }
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(Error::FieldName(name.into()));
    }
    Ok(())
}

/// Checks a header value of the mime token. mime keeps folded values with their line
/// breaks, so a break followed by a space or tab is a fold; any other CR, LF or NUL
/// would start a new field.
pub fn check_message_field(name: &str, value: &str) -> Result<(), Error> {
    let bytes = value.as_bytes();
    let folded_at = |i: usize| matches!(bytes.get(i + 1), Some(b' ' | b'\t'));
    let bad = bytes.iter().enumerate().any(|(i, &b)| match b {
        0 => true,
        b'\n' => !folded_at(i),
        b'\r' => bytes.get(i + 1) != Some(&b'\n') || !folded_at(i + 1),
        _ => false,
    });
    if super::has_line_break_or_nul(name) {
        return Err(Error::LineBreak { what: "a header name of the mime token".into(), value: name.into() });
    }
    if bad {
        return Err(Error::LineBreak { what: format!("header {name} of the mime token"), value: value.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIME: &[u8] = b"MIME-Version: 1.0\r\nSubject: Original\r\nContent-ID: <1@vm>\r\n\
        Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain;\r\n              \
        charset=\"utf-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbody\r\n";

    fn plan(set: &[(&str, &[&str])], defaults: &[(&str, &str)]) -> HeaderPlan {
        HeaderPlan {
            set: set
                .iter()
                .map(|(n, v)| HeaderOption { name: n.to_string(), values: v.iter().map(|s| s.to_string()).collect() })
                .collect(),
            defaults: defaults.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            token_fields: ["subject", "content-id", "x-token", "date", "from", "to", "bcc", "dcc", "a", "b"]
                .map(String::from)
                .to_vec(),
            encode: None,
        }
    }

    #[test]
    fn values_that_are_not_ascii_become_encoded_words_when_asked() {
        let message = "Subject: Gr\u{fc}\u{df}e\r\n aus M\u{fc}nchen\r\nFrom: J\u{fc}rgen <j@example.org>\r\nX-Token: plain\r\n\r\nbody \u{e9}\r\n";
        let encode: Encoder = |name, value| crate::compose::field(name, value).ok();
        let out = text(rewrite(message.as_bytes(), &plan(&[], &[]).encoding_with(encode)).unwrap());
        assert!(out.contains("Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?="), "{out}");
        assert!(out.contains("<j@example.org>") && out.contains("From: =?UTF-8?"), "{out}");
        assert!(out.contains("X-Token: plain\r\n"), "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.is_ascii(), "{head}");
        assert_eq!(body, "body \u{e9}\r\n", "the body is not touched");
        // Without the encoder the values go as they are.
        let raw = text(rewrite(message.as_bytes(), &plan(&[], &[])).unwrap());
        assert!(raw.contains("Subject: Gr\u{fc}\u{df}e\r\n aus M\u{fc}nchen\r\n"), "{raw}");
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn part_headers_that_are_not_ascii_are_encoded_when_asked() {
        let block =
            "Content-Type: application/pdf;\n name=\"r\u{e9}sum\u{e9}.pdf\"\nX-Token: Gr\u{fc}\u{df}e\nA: 1\n\n";
        let encode: Encoder = |name, value| crate::compose::field(name, value).ok();
        let out = plan(&[], &[]).encoding_with(encode).part_header("part 1", block.as_bytes()).unwrap().unwrap();
        assert_eq!(
            text(out),
            "Content-Type: application/pdf; name*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n\
             X-Token: =?UTF-8?B?R3LDvMOfZQ==?=\r\nA: 1\r\n\r\n"
        );
        assert_eq!(plan(&[], &[]).part_header("part 1", block.as_bytes()).unwrap(), None);
        assert_eq!(plan(&[], &[]).encoding_with(encode).part_header("part 1", b"A: 1\n\n").unwrap(), None);
    }

    #[test]
    fn new_fields_go_before_mimes_content_fields_and_cte_appears_once() {
        let out = text(rewrite(MIME, &plan(&[("X-Tag", &["a"])], &[("From", "a@b"), ("Date", "D")])).unwrap());
        assert_eq!(
            out,
            "MIME-Version: 1.0\r\nSubject: Original\r\nContent-ID: <1@vm>\r\nX-Tag: a\r\nFrom: a@b\r\nDate: D\r\n\
             Content-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain;\r\n              \
             charset=\"utf-8\"\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn long_lines_are_folded_at_white_space_and_unfold_to_the_value() {
        let value = ["word"; 600].join(" ");
        let out = text(rewrite(b"\r\nbody", &plan(&[("X-Long", &[value.as_str()])], &[])).unwrap());
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "body");
        assert!(head.split("\r\n").all(|l| l.len() <= MAX_LINE && !l.trim().is_empty()), "{head}");
        assert!(head.split("\r\n").count() > 1);
        assert_eq!(head.replace("\r\n", ""), format!("X-Long: {value}"));
        // A line of exactly 998 characters stays as it is.
        let exact = "x".repeat(MAX_LINE - "X: ".len());
        let out = text(rewrite(b"\r\n", &plan(&[("X", &[exact.as_str()])], &[])).unwrap());
        assert_eq!(out, format!("X: {exact}\r\n\r\n"));
    }

    #[test]
    fn a_long_line_without_white_space_is_refused() {
        let value = "x".repeat(2000);
        let err = rewrite(b"\r\n", &plan(&[("Subject", &[value.as_str()])], &[])).unwrap_err();
        assert_eq!(err, Error::LineTooLong("Subject".into()));
        // Also from the token's own header block.
        let token = format!("X-Token: {value}\r\n\r\nbody");
        assert_eq!(rewrite(token.as_bytes(), &plan(&[], &[])).unwrap_err(), Error::LineTooLong("X-Token".into()));
    }

    #[test]
    fn header_option_replaces_the_tokens_field_in_place() {
        let out = text(rewrite(MIME, &plan(&[("subject", &["Override"])], &[])).unwrap());
        assert!(out.starts_with("MIME-Version: 1.0\r\nsubject: Override\r\nContent-ID"), "{out}");
        assert!(!out.contains("Original"));
    }

    #[test]
    fn defaults_do_not_override_existing_fields() {
        let msg = b"Date: old\r\nFrom: me@x\r\n\r\nb";
        let out = text(rewrite(msg, &plan(&[], &[("From", "other@y"), ("Date", "new")])).unwrap());
        assert_eq!(out, "Date: old\r\nFrom: me@x\r\n\r\nb");
    }

    #[test]
    fn bcc_and_dcc_are_never_transmitted() {
        let msg = b"Bcc: hidden@x\r\nDcc: d@x\r\nTo: a@x\r\n\r\nb";
        let out = text(rewrite(msg, &plan(&[], &[])).unwrap());
        assert_eq!(out, "To: a@x\r\n\r\nb");
    }

    #[test]
    fn repeated_address_fields_join_and_other_once_only_fields_are_refused() {
        let out = text(rewrite(b"\r\nb", &plan(&[("To", &["a@x", "b@x"])], &[])).unwrap());
        assert_eq!(out, "To: a@x, b@x\r\n\r\nb");
        let err = rewrite(b"\r\nb", &plan(&[("Subject", &["a", "b"])], &[])).unwrap_err();
        assert_eq!(err, Error::DuplicateField("Subject".into()));
        let out = text(rewrite(b"\r\nb", &plan(&[("Comments", &["a", "b"])], &[])).unwrap());
        assert_eq!(out, "Comments: a\r\nComments: b\r\n\r\nb");
    }

    #[test]
    fn body_bytes_pass_through_untouched() {
        let msg = b"A: 1\r\n\r\nline\rbare\n.dot\r\n\r\n";
        let out = rewrite(msg, &plan(&[], &[])).unwrap();
        assert_eq!(out, msg);
    }

    #[test]
    fn field_names_are_checked() {
        assert!(check_field_name("X-Ok").is_ok());
        assert!(matches!(check_field_name("Bad Name"), Err(Error::FieldName(_))));
        assert!(matches!(check_field_name("a:b"), Err(Error::FieldName(_))));
        assert!(matches!(check_field_name("X\r\nInjected"), Err(Error::LineBreak { .. })));
    }

    #[test]
    fn token_values_may_fold_but_not_break_lines() {
        assert!(check_message_field("Subject", "long\n  folded").is_ok());
        assert!(check_message_field("Subject", "long\r\n\tfolded").is_ok());
        assert!(check_message_field("Subject", "Hi\nX-Injected: yes").is_err());
        assert!(check_message_field("Subject", "Hi\r").is_err());
        assert!(check_message_field("Subject", "a\0b").is_err());
    }
}
