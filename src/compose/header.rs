//! Header fields in ASCII, as `smtp::mail` writes them and as a token's are rewritten
//! for a message without SMTPUTF8: values that are not ASCII as RFC 2047 encoded words
//! (in address fields only the display names, RFC 2047 §5; an address whose local part
//! is ASCII with its domain's IDNA A-label), parameters of Content-Type and
//! Content-Disposition as RFC 2231 extended values; folded at white space before 78
//! characters where a word allows it, never over 998.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::Error;

/// Where a line is folded when a word allows it (RFC 5322 §2.1.1's "SHOULD").
const FOLD_AT: usize = 78;
/// The longest line allowed (RFC 5322 §2.1.1's "MUST").
const MAX_LINE: usize = 998;
/// The most UTF-8 bytes in one encoded word: `=?UTF-8?B?` + 52 base64 characters + `?=`
/// is 64, within RFC 2047's 75, and leaves room for a field name on the first line.
const WORD_BYTES: usize = 39;

/// One mailbox: an address and an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    /// Parses `addr@example.org`, `<addr@example.org>`, `Name <addr@example.org>` or
    /// `"Quoted, Name" <addr@example.org>`: the shapes people write in a Tcl list.
    pub fn parse(text: &str, option: &str) -> Result<Mailbox, Error> {
        check_text(option, text)?;
        let text = text.trim();
        let bad = || Error::Address { option: option.to_string(), value: text.to_string() };
        let (name, address) = match text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) {
            Some((name, address)) => (display_name(name.trim()).ok_or_else(bad)?, address.trim()),
            None => (None, text),
        };
        let plausible = address.contains('@')
            && !address.starts_with('@')
            && !address.ends_with('@')
            && !address.chars().any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c));
        if !plausible {
            return Err(bad());
        }
        Ok(Mailbox { name, address: address.to_string() })
    }

    /// The mailbox as a header field writes it: display name (quoted or encoded as
    /// needed) and `<address>`, or the bare address.
    fn words(&self) -> Vec<String> {
        let address = crate::smtp::ascii_address(&self.address).unwrap_or_else(|| self.address.clone());
        let Some(name) = &self.name else { return vec![address] };
        let mut words = phrase(name);
        words.push(format!("<{address}>"));
        words
    }
}

/// The display name of `Name <addr>`: a quoted string with its escapes undone, else the
/// text as it is; `None` inside the `Some` when there is none, `None` for a quoted
/// string that ends early (`"a" "b"` is two).
fn display_name(name: &str) -> Option<Option<String>> {
    if name.is_empty() {
        return Some(None);
    }
    let Some(inner) = name.strip_prefix('"').and_then(|n| n.strip_suffix('"')).filter(|_| name.len() >= 2) else {
        return Some(Some(name.to_string()));
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(Some(name.to_string())),
            c => out.push(c),
        }
    }
    Some((!out.is_empty()).then_some(out))
}

/// A display name as the words of a phrase: atoms as they are, a quoted string when it
/// holds specials or white space other than single spaces, encoded words when it is
/// not ASCII or looks like one.
fn phrase(name: &str) -> Vec<String> {
    if !name.is_ascii() || name.contains("=?") {
        return encoded_words(name);
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~ ".contains(c);
    let single_spaces = !name.starts_with(' ') && !name.ends_with(' ') && !name.contains("  ");
    if name.chars().all(atext) && single_spaces {
        return name.split(' ').map(str::to_string).collect();
    }
    vec![quoted(name)]
}

/// `text` as a quoted string (RFC 5322 §3.2.4).
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `text` as RFC 2047 encoded words (UTF-8, base64), each whole characters.
fn encoded_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + WORD_BYTES).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let piece = text.get(start..end).unwrap_or_default();
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(piece)));
        start = end;
    }
    words
}

/// A header field `name: value` with its CRLF, `value` unstructured text: kept as it is
/// when ASCII (folded at its spaces), otherwise, or when it holds what looks like an
/// encoded word or a word too long to fold, encoded words (RFC 2047 §5).
pub fn unstructured(name: &str, value: &str) -> Result<Vec<u8>, Error> {
    check_text(name, value)?;
    let plain =
        value.is_ascii() && !value.contains("=?") && value.split(' ').all(|w| w.len() + name.len() + 2 < MAX_LINE);
    let words: Vec<String> = if plain { value.split(' ').map(str::to_string).collect() } else { encoded_words(value) };
    fold(name, &words)
}

/// A header field listing `mailboxes`, comma-separated.
pub fn addresses(name: &str, mailboxes: &[Mailbox]) -> Result<Vec<u8>, Error> {
    let mut words = Vec::new();
    for (i, mailbox) in mailboxes.iter().enumerate() {
        check_text(name, &mailbox.address)?;
        if let Some(display) = &mailbox.name {
            check_text(name, display)?;
        }
        let mut these = mailbox.words();
        if i + 1 < mailboxes.len() {
            if let Some(last) = these.last_mut() {
                last.push(',');
            }
        }
        words.extend(these);
    }
    fold(name, &words)
}

/// Fields whose value is a list of mailboxes: display names are encoded, addresses not.
const ADDRESS_FIELDS: &[&str] =
    &["from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-to", "resent-cc"];

/// Fields whose value is a word and parameters.
const PARAMETER_FIELDS: &[&str] = &["content-type", "content-disposition"];

/// A field given by the caller (`-headers`, a token's): ASCII values as they are (folded
/// at their spaces), others encoded: display names alone in address fields, parameter
/// values in Content-Type and Content-Disposition, the whole value in the rest.
pub fn field(name: &str, value: &str) -> Result<Vec<u8>, Error> {
    check_text(name, value)?;
    if value.is_ascii() {
        return raw(name, value);
    }
    let is = |set: &[&str]| set.iter().any(|f| f.eq_ignore_ascii_case(name));
    if is(ADDRESS_FIELDS) {
        let mailboxes =
            split_address_list(value).into_iter().map(|m| Mailbox::parse(m, name)).collect::<Result<Vec<_>, _>>()?;
        return addresses(name, &mailboxes);
    }
    if is(PARAMETER_FIELDS) {
        if let Some(words) = parameter_words(value) {
            return parameters(name, words.first, &words.parameters);
        }
    }
    unstructured(name, value)
}

/// A Content-Type or Content-Disposition value split for [`parameters`]: its first
/// word, and each parameter as [`parameter`] writes it (an RFC 2231 extended one as it
/// is). `None` when the first word or a name is not ASCII: nothing that can be encoded.
struct ParameterWords<'a> {
    first: &'a str,
    parameters: Vec<String>,
}

fn parameter_words(value: &str) -> Option<ParameterWords<'_>> {
    let (first, split) = crate::spool::parameters::split(value.as_bytes());
    let first = std::str::from_utf8(first).ok().filter(|f| f.is_ascii())?;
    let mut parameters = Vec::new();
    for (name, value) in split {
        let name = std::str::from_utf8(name).ok().filter(|n| n.is_ascii())?;
        let value = String::from_utf8(value).ok()?;
        if name.ends_with('*') {
            parameters.push(format!("{name}={value}"));
        } else {
            parameters.extend(parameter(name, &value));
        }
    }
    Some(ParameterWords { first, parameters })
}

/// Splits an address list at the commas outside quoted strings.
fn split_address_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(value.get(start..i).unwrap_or_default());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(value.get(start..).unwrap_or_default());
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// A field `name: value; p1; p2…` (Content-Type, Content-Disposition), a parameter on
/// each fold where the line would grow too long.
pub fn parameters(name: &str, value: &str, parameters: &[String]) -> Result<Vec<u8>, Error> {
    let mut words = vec![value.to_string()];
    words.extend(parameters.iter().cloned());
    let last = words.len() - 1;
    for word in words.iter_mut().take(last) {
        word.push(';');
    }
    for word in &words {
        check_text(name, word)?;
    }
    fold(name, &words)
}

/// A header field written as given (a structured value this package made: Date,
/// Message-ID, Content-Type...), folded at its spaces.
pub fn raw(name: &str, value: &str) -> Result<Vec<u8>, Error> {
    check_text(name, value)?;
    let words: Vec<String> = value.split(' ').map(str::to_string).collect();
    fold(name, &words)
}

/// `name: words...` with CRLF, the words separated by single spaces (an empty word makes
/// two spaces in a row, as in the value it came from). A line is broken before a word
/// that would pass [`FOLD_AT`], never before an empty one (a fold must hold more than
/// white space); a line that still passes [`MAX_LINE`] cannot be sent.
fn fold(name: &str, words: &[String]) -> Result<Vec<u8>, Error> {
    let mut out = format!("{name}:");
    let mut line_len = out.len();
    for word in words {
        if !word.is_empty() && line_len + 1 + word.len() > FOLD_AT && line_len > name.len() + 1 {
            out.push_str("\r\n");
            line_len = 0;
        }
        out.push(' ');
        out.push_str(word);
        line_len += 1 + word.len();
        if line_len > MAX_LINE {
            return Err(Error::LineTooLong(name.to_string()));
        }
    }
    out.push_str("\r\n");
    Ok(out.into_bytes())
}

/// Header text may not hold CR, LF or NUL (they would end the field early).
pub fn check_text(name: &str, value: &str) -> Result<(), Error> {
    if crate::message::has_line_break_or_nul(value) || crate::message::has_line_break_or_nul(name) {
        return Err(Error::LineBreak { field: name.to_string(), value: value.to_string() });
    }
    Ok(())
}

/// The parameter `param=value` (a file name, say) as words: a quoted string when ASCII,
/// RFC 2231's `param*=UTF-8''…` percent-encoding otherwise, split into `param*0*=`,
/// `param*1*=`, … pieces that keep lines short.
pub fn parameter(param: &str, value: &str) -> Vec<String> {
    if value.is_ascii() {
        return vec![format!("{param}={}", quoted(value))];
    }
    // Each byte as itself (RFC 2231 attribute-char) or %XX; pieces of at most 50
    // characters (a line with its `filename*0*=UTF-8''` stays under 78), never splitting
    // an escape.
    let mut pieces: Vec<String> = vec![String::new()];
    for b in value.bytes() {
        let unit = if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            (b as char).to_string()
        } else {
            format!("%{b:02X}")
        };
        if pieces.last().is_some_and(|p| p.len() + unit.len() > 50) {
            pieces.push(String::new());
        }
        if let Some(piece) = pieces.last_mut() {
            piece.push_str(&unit);
        }
    }
    if let [only] = pieces.as_slice() {
        return vec![format!("{param}*=UTF-8''{only}")];
    }
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| if i == 0 { format!("{param}*0*=UTF-8''{piece}") } else { format!("{param}*{i}*={piece}") })
        .collect()
}
