//! Parsing of SMTP server replies (RFC 5321 §4.2).
//!
//! The parser is incremental in the style of `httparse`: it looks at whatever
//! bytes have arrived so far and either returns a complete reply together with
//! the number of bytes it used, says that more bytes are needed
//! ([`Status::Partial`]), or reports that the bytes can never become a valid
//! reply ([`ReplyError`]). It keeps no state between calls, so the caller
//! simply appends new bytes to its buffer and calls [`parse_reply`] again.

use std::fmt;

/// The longest line accepted, in bytes, excluding the line ending.
///
/// RFC 5321 §4.5.3.1.5 only promises 512 bytes per reply line, but real
/// servers send longer ones (long EHLO keyword lists, verbose errors), so the
/// cap is generous. It exists so that a broken or hostile server cannot make
/// the client buffer an endless line.
pub const MAX_LINE: usize = 65536;

/// The most lines accepted in one reply.
///
/// Like [`MAX_LINE`], this bounds the memory a misbehaving server can make the
/// client spend on a single reply that never ends.
pub const MAX_LINES: usize = 1000;

/// How many characters of an offending line are kept in
/// [`ReplyError::Malformed`] and [`ReplyError::Unrequested`]: enough to recognise it, short
/// enough that an error message stays readable.
const EXCERPT_CHARS: usize = 200;

/// One complete SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code of the first line (e.g. 250).
    pub code: u16,
    /// Text of each line after the code and its separator, without CR/LF,
    /// trailing whitespace trimmed; `lines[0]` is the first line's text (may be
    /// empty). Never an empty vec.
    pub lines: Vec<String>,
    /// The enhanced status code (RFC 3463) that starts the text, e.g. `5.1.1`: set by the
    /// session when the server announced ENHANCEDSTATUSCODES (RFC 2034), see
    /// [`Reply::enhanced_code`].
    pub enhanced: Option<EnhancedCode>,
}

/// An enhanced status code (RFC 3463): `class.subject.detail`, e.g. `5.1.1` (no such
/// user), `5.7.1` (refused by policy), `4.2.2` (mailbox full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Reply {
    /// A one-line reply, for tests and for replies the client synthesizes
    /// itself (e.g. to report a failure in the same shape as a server reply).
    pub fn new(code: u16, text: &str) -> Reply {
        Reply { code, lines: vec![text.to_owned()], enhanced: None }
    }

    /// A reply of `code` with these lines (none enhanced).
    pub fn with_lines(code: u16, lines: Vec<String>) -> Reply {
        Reply { code, lines, enhanced: None }
    }

    /// The enhanced status code at the start of the first line's text: `class.subject.detail`
    /// (RFC 3463 §2: class 2, 4 or 5, the reply code's own first digit; subject and detail
    /// of one to three digits), followed by a space or nothing.
    pub fn enhanced_code(&self) -> Option<EnhancedCode> {
        let text = self.text();
        let code = text.split(' ').next()?;
        let mut parts = code.split('.');
        let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
        let number = |s: &str| {
            ((1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
        };
        let class = match class {
            "2" | "4" | "5" => class.parse::<u8>().ok().filter(|c| u16::from(*c) == self.code / 100)?,
            _ => return None,
        };
        let code = EnhancedCode { class, subject: number(subject)?, detail: number(detail)? };
        parts.next().is_none().then_some(code)
    }

    /// The first line's text; tcllib calls it the diagnostic and shows it in
    /// error messages.
    pub fn text(&self) -> &str {
        // `lines` is never empty for replies built by this module, but the
        // field is public, so fall back to "" rather than panic.
        self.lines.first().map_or("", String::as_str)
    }

    /// Whether the command succeeded (2xx), so the session can go on.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Whether the server wants more input before it can answer (3xx, e.g.
    /// 354 after DATA or 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// Whether the failure is temporary (4xx), so trying again later may work.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// Whether the failure is permanent (5xx), so repeating the same command
    /// is pointless.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }
}

/// Shows the first line as the server sent it ("550 5.1.1 unknown user", or
/// just "250" when the text is empty), which is what users expect to see in
/// error messages.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.text();
        if text.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} {}", self.code, text)
        }
    }
}

/// The outcome of a parse that did not fail. Kept apart from errors because
/// "not enough bytes yet" is the normal state of a network read, not a fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole item was parsed.
    Complete(T),
    /// The bytes so far are a valid beginning; read more and parse again.
    Partial,
}

/// Why bytes from the server are not a valid reply. The connection cannot be
/// trusted after this: there is no way to find where the next reply starts.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line (before its LF) is longer than [`MAX_LINE`] bytes. Reported as
    /// soon as that many bytes are buffered, without waiting for the LF.
    LineTooLong,
    /// The reply has more than [`MAX_LINES`] lines.
    TooManyLines,
    /// A line does not start with a valid reply code, or its code differs
    /// from the first line's.
    Malformed {
        /// The offending line without its line ending, decoded as lossy
        /// UTF-8 and cut to 200 characters, to show in the error message.
        line: String,
    },
    /// The server sent something before the client's command (or before the end of the
    /// message): no reply was due, so it answers nothing the client asked.
    Unrequested {
        /// The first line of what arrived, as in `Malformed`.
        line: String,
    },
}

impl ReplyError {
    /// The error for `bytes` that arrived when no reply was due.
    pub fn unrequested(bytes: &[u8]) -> ReplyError {
        let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        ReplyError::Unrequested { line: excerpt(first) }
    }
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::LineTooLong => write!(f, "reply line longer than {MAX_LINE} bytes"),
            ReplyError::TooManyLines => write!(f, "reply has more than {MAX_LINES} lines"),
            // Debug formatting quotes the line and escapes control
            // characters, so a hostile server cannot inject line breaks or
            // terminal escapes into the message.
            ReplyError::Malformed { line } => write!(f, "malformed reply line: {line:?}"),
            ReplyError::Unrequested { line } => write!(f, "the server sent {line:?} when no reply was due"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// Parses one reply from the start of `buf`. Returns the reply and the number
/// of bytes it used, [`Status::Partial`] when more bytes are needed, or an
/// error.
///
/// Bytes after the reply are not looked at, so a buffer holding several
/// pipelined replies is parsed by calling this again on the rest.
///
/// # Errors
///
/// [`ReplyError`] when the bytes can never become a valid reply: a line
/// without a valid code, a continuation line with another code, a line longer
/// than [`MAX_LINE`] or a reply longer than [`MAX_LINES`] lines. A line's
/// code is judged once its LF has arrived; an overlong line is rejected as
/// soon as its first `MAX_LINE + 1` bytes are buffered.
pub fn parse_reply(buf: &[u8]) -> Result<Status<(Reply, usize)>, ReplyError> {
    let mut rest = buf;
    let mut consumed = 0;
    let mut lines: Vec<String> = Vec::new();
    let mut first_code = None;

    loop {
        let Some((raw, used)) = next_line(rest)? else {
            return Ok(Status::Partial);
        };
        let line = parse_line(raw)?;
        // All lines of one reply carry the same code (RFC 5321 §4.2.1); a
        // change means the server is confused and we have lost track.
        let code = *first_code.get_or_insert(line.code);
        if line.code != code {
            return Err(malformed(raw));
        }
        lines.push(line.text);
        consumed += used;
        rest = rest.get(used..).unwrap_or_default();

        if !line.more {
            return Ok(Status::Complete((Reply::with_lines(code, lines), consumed)));
        }
        // This line promised another one, which would exceed the limit; say so
        // now rather than wait for bytes that can only be rejected.
        if lines.len() >= MAX_LINES {
            return Err(ReplyError::TooManyLines);
        }
    }
}

/// Finds the first line in `buf`. Returns the line without its ending and the
/// number of bytes it takes including the ending, or `None` when no LF has
/// arrived yet.
///
/// At most `MAX_LINE + 2` bytes are examined (the longest line plus CR LF),
/// so an endless line is rejected as soon as it is too long, not when (if
/// ever) its LF arrives.
fn next_line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, ReplyError> {
    let window = buf.get(..MAX_LINE + 2).unwrap_or(buf);
    let mut parts = window.splitn(2, |&b| b == b'\n');
    let before_lf = parts.next().unwrap_or_default();
    let found_lf = parts.next().is_some();

    // Without an LF, a trailing CR may still turn out to be the line ending,
    // so it does not count towards the length yet either.
    let line = strip_cr(before_lf);
    if line.len() > MAX_LINE {
        return Err(ReplyError::LineTooLong);
    }
    Ok(found_lf.then_some((line, before_lf.len() + 1)))
}

/// Removes one CR before the (already removed) LF. Only one: any other CR is
/// part of the text, and bare-LF endings are accepted as well.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One line of a reply, split into its parts.
struct Line {
    code: u16,
    /// Whether the separator was '-', i.e. more lines of this reply follow.
    more: bool,
    text: String,
}

/// Splits a line (without its ending) into code, separator and text.
fn parse_line(raw: &[u8]) -> Result<Line, ReplyError> {
    // RFC 5321 §4.2: the first digit is 2-5 and the second 0-5; anything else
    // is not a reply an SMTP client can act on.
    let [d1 @ b'2'..=b'5', d2 @ b'0'..=b'5', d3 @ b'0'..=b'9', after_code @ ..] = raw else {
        return Err(malformed(raw));
    };
    let code = u16::from(d1 - b'0') * 100 + u16::from(d2 - b'0') * 10 + u16::from(d3 - b'0');
    let (more, text) = match after_code {
        // A bare code is a complete last line; some servers send "250".
        [] => (false, &[][..]),
        [b' ', text @ ..] => (false, text),
        [b'-', text @ ..] => (true, text),
        _ => return Err(malformed(raw)),
    };
    let text = String::from_utf8_lossy(text);
    // Trailing whitespace carries no meaning and servers differ in it. Only
    // ASCII whitespace is trimmed, so what is removed is predictable.
    let text = text.trim_end_matches(|c: char| c.is_ascii_whitespace());
    Ok(Line { code, more, text: text.to_owned() })
}

/// Builds the error for a bad line, keeping a readable excerpt of it.
fn malformed(raw: &[u8]) -> ReplyError {
    ReplyError::Malformed { line: excerpt(raw) }
}

/// The start of a line the server sent, as text to show in an error message.
fn excerpt(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).chars().take(EXCERPT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, lines: &[&str]) -> Reply {
        Reply::with_lines(code, lines.iter().map(|s| s.to_string()).collect())
    }

    fn complete(buf: &[u8]) -> (Reply, usize) {
        match parse_reply(buf) {
            Ok(Status::Complete(done)) => done,
            other => panic!("expected a complete reply for {buf:?}, got {other:?}"),
        }
    }

    fn malformed_line(line: &str) -> ReplyError {
        ReplyError::Malformed { line: line.to_string() }
    }

    #[test]
    fn unrequested_bytes_show_their_first_line_safely() {
        let e = ReplyError::unrequested(b"250 2.0.0 queued early\r\n221 bye\r\n");
        assert_eq!(e, ReplyError::Unrequested { line: "250 2.0.0 queued early".into() });
        assert_eq!(e.to_string(), "the server sent \"250 2.0.0 queued early\" when no reply was due");
        // Control characters are escaped, long lines cut, and invalid UTF-8 replaced.
        let shown = ReplyError::unrequested(b"\x1b[2J\xff").to_string();
        assert!(shown.contains("\\u{1b}[2J\u{fffd}"), "{shown}");
        let long = ReplyError::unrequested(&[b'x'; 1000]);
        assert_eq!(long, ReplyError::Unrequested { line: "x".repeat(200) });
    }

    #[test]
    fn valid_replies_parse_and_use_all_their_bytes() {
        let cases: &[(&str, &[u8], Reply)] = &[
            ("single line", b"220 mail.example.com ESMTP ready\r\n", reply(220, &["mail.example.com ESMTP ready"])),
            (
                "multi-line EHLO",
                b"250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n",
                reply(250, &["mail.example.com", "PIPELINING", "SIZE 10240000", "8BITMIME"]),
            ),
            ("bare code", b"250\r\n", reply(250, &[""])),
            ("code and space, no text", b"250 \r\n", reply(250, &[""])),
            (
                "smtp-sink EHLO ends with an empty last line",
                b"250-localhost\r\n250-PIPELINING\r\n250 \r\n",
                reply(250, &["localhost", "PIPELINING", ""]),
            ),
            ("empty continuation text", b"250-\r\n250 done\r\n", reply(250, &["", "done"])),
            ("LF-only endings", b"250-first\n250 second\n", reply(250, &["first", "second"])),
            ("mixed endings", b"250-first\n250 second\r\n", reply(250, &["first", "second"])),
            ("CR inside text is kept", b"250 a\rb\r\n", reply(250, &["a\rb"])),
            (
                "only one CR is part of the ending; whitespace trimming removes the other",
                b"250 text\r\r\n",
                reply(250, &["text"]),
            ),
            (
                "trailing spaces and tabs trimmed, leading kept",
                b"550  5.1.1 unknown \t \r\n",
                reply(550, &[" 5.1.1 unknown"]),
            ),
            (
                "intermediate reply",
                b"354 End data with <CR><LF>.<CR><LF>\r\n",
                reply(354, &["End data with <CR><LF>.<CR><LF>"]),
            ),
            ("non-UTF-8 text decoded lossily", b"550 caf\xe9 \xff\r\n", reply(550, &["caf\u{fffd} \u{fffd}"])),
        ];
        for (name, input, expected) in cases {
            let (got, used) = complete(input);
            assert_eq!(&got, expected, "{name}");
            assert_eq!(used, input.len(), "{name}");
        }
    }

    #[test]
    fn every_proper_prefix_is_partial() {
        let inputs: &[&[u8]] = &[
            b"250-mail.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            b"250\r\n",
            b"250 \r\n",
            b"221 bye\n",
            b"250 a\rb\r\n",
        ];
        for input in inputs {
            for end in 0..input.len() {
                assert_eq!(parse_reply(&input[..end]), Ok(Status::Partial), "prefix {:?}", &input[..end]);
            }
            assert_eq!(complete(input).1, input.len());
        }
    }

    #[test]
    fn fed_one_byte_at_a_time_completes_exactly_at_the_end() {
        let input = b"250-mail.example.com\r\n250-SIZE 1000\r\n250 HELP\r\n";
        let mut buf = Vec::new();
        for (i, &byte) in input.iter().enumerate() {
            buf.push(byte);
            let status = parse_reply(&buf).unwrap();
            if i + 1 < input.len() {
                assert_eq!(status, Status::Partial);
            } else {
                let expected = reply(250, &["mail.example.com", "SIZE 1000", "HELP"]);
                assert_eq!(status, Status::Complete((expected, input.len())));
            }
        }
    }

    #[test]
    fn two_replies_back_to_back_parse_one_after_another() {
        let input = b"250 2.1.0 Ok\r\n250-2.1.5 Ok\r\n250 more\r\n354 go";
        let (first, used) = complete(input);
        assert_eq!(first, reply(250, &["2.1.0 Ok"]));
        assert_eq!(used, 14);
        let (second, used2) = complete(&input[used..]);
        assert_eq!(second, reply(250, &["2.1.5 Ok", "more"]));
        assert_eq!(parse_reply(&input[used + used2..]), Ok(Status::Partial));
    }

    #[test]
    fn lines_without_a_valid_code_are_malformed() {
        let cases: &[(&str, &[u8], &str)] = &[
            ("plain words", b"hello\r\n", "hello"),
            ("four digits", b"2500 x\r\n", "2500 x"),
            ("too short", b"25\r\n", "25"),
            ("empty line", b"\r\n", ""),
            ("whitespace-only line", b"   \r\n", "   "),
            ("first digit out of range", b"600 x\r\n", "600 x"),
            ("first digit too low", b"199 x\r\n", "199 x"),
            ("second digit out of range", b"260 x\r\n", "260 x"),
            ("bad separator", b"250x\r\n", "250x"),
            ("tab separator", b"250\tx\r\n", "250\tx"),
            ("HTTP server", b"HTTP/1.1 400 Bad Request\r\n", "HTTP/1.1 400 Bad Request"),
            ("continuation with a different code", b"250-first\r\n251 second\r\n", "251 second"),
            ("continuation without a code", b"250-first\r\nsecond\r\n", "second"),
            ("lossy excerpt", b"\xff\xfe\r\n", "\u{fffd}\u{fffd}"),
        ];
        for (name, input, line) in cases {
            assert_eq!(parse_reply(input), Err(malformed_line(line)), "{name}");
        }
    }

    #[test]
    fn malformed_excerpt_is_cut_to_200_characters() {
        let mut input = "é".repeat(300).into_bytes();
        input.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&input), Err(malformed_line(&"é".repeat(200))));
    }

    #[test]
    fn line_of_max_length_is_accepted() {
        for ending in [&b"\r\n"[..], b"\n"] {
            let mut input = b"250 ".to_vec();
            input.resize(MAX_LINE, b'a');
            input.extend_from_slice(ending);
            let (got, used) = complete(&input);
            assert_eq!(got.text().len(), MAX_LINE - 4);
            assert_eq!(used, input.len());
        }
    }

    #[test]
    fn max_length_line_waiting_for_its_lf_is_partial() {
        // The trailing CR may be the start of CR LF, so it is not yet counted.
        let mut input = b"250 ".to_vec();
        input.resize(MAX_LINE, b'a');
        assert_eq!(parse_reply(&input), Ok(Status::Partial));
        input.push(b'\r');
        assert_eq!(parse_reply(&input), Ok(Status::Partial));
    }

    #[test]
    fn overlong_lines_are_rejected() {
        let with_lf = {
            let mut v = b"250 ".to_vec();
            v.resize(MAX_LINE + 1, b'a');
            v.push(b'\n');
            v
        };
        let without_lf = {
            let mut v = b"250 ".to_vec();
            v.resize(MAX_LINE + 1, b'a');
            v
        };
        let cr_then_more = {
            let mut v = b"250 ".to_vec();
            v.resize(MAX_LINE, b'a');
            v.extend_from_slice(b"\rx");
            v
        };
        let one_mib = {
            let mut v = b"250 ".to_vec();
            v.resize(1 << 20, b'a');
            v.extend_from_slice(b"\r\n");
            v
        };
        let second_line = {
            let mut v = b"250-ok\r\n250 ".to_vec();
            v.resize(8 + MAX_LINE + 1, b'a');
            v
        };
        let cases: &[(&str, &[u8])] = &[
            ("MAX_LINE + 1 bytes then LF", &with_lf),
            ("MAX_LINE + 1 bytes, no LF yet", &without_lf),
            ("CR that is not a line ending", &cr_then_more),
            ("1 MiB line", &one_mib),
            ("overlong continuation line", &second_line),
        ];
        for (name, input) in cases {
            assert_eq!(parse_reply(input), Err(ReplyError::LineTooLong), "{name}");
        }
    }

    #[test]
    fn reply_of_max_lines_is_accepted() {
        let mut input = b"250-x\r\n".repeat(MAX_LINES - 1);
        input.extend_from_slice(b"250 end\r\n");
        let (got, used) = complete(&input);
        assert_eq!(got.lines.len(), MAX_LINES);
        assert_eq!(used, input.len());
    }

    #[test]
    fn more_than_max_lines_is_rejected() {
        // MAX_LINES continuation lines promise line MAX_LINES + 1.
        let input = b"250-x\r\n".repeat(MAX_LINES);
        assert_eq!(parse_reply(&input), Err(ReplyError::TooManyLines));
        let mut input = input;
        input.extend_from_slice(b"250 end\r\n");
        assert_eq!(parse_reply(&input), Err(ReplyError::TooManyLines));
    }

    #[test]
    fn reply_classes() {
        let cases = [
            (221, [true, false, false, false]),
            (354, [false, true, false, false]),
            (421, [false, false, true, false]),
            (550, [false, false, false, true]),
        ];
        for (code, [success, intermediate, transient, permanent]) in cases {
            let r = Reply::new(code, "x");
            assert_eq!(r.is_success(), success, "{code}");
            assert_eq!(r.is_intermediate(), intermediate, "{code}");
            assert_eq!(r.is_transient(), transient, "{code}");
            assert_eq!(r.is_permanent(), permanent, "{code}");
        }
    }

    #[test]
    fn display_shows_the_first_line() {
        assert_eq!(Reply::new(550, "5.1.1 unknown user").to_string(), "550 5.1.1 unknown user");
        assert_eq!(Reply::new(250, "").to_string(), "250");
        assert_eq!(reply(250, &["first", "second"]).to_string(), "250 first");
        assert_eq!(Reply::new(250, "text").text(), "text");
    }

    #[test]
    fn errors_display_in_plain_english() {
        assert_eq!(ReplyError::LineTooLong.to_string(), "reply line longer than 65536 bytes");
        assert_eq!(ReplyError::TooManyLines.to_string(), "reply has more than 1000 lines");
        assert_eq!(malformed_line("xyz").to_string(), "malformed reply line: \"xyz\"");
        assert_eq!(malformed_line("a\r\x1b").to_string(), "malformed reply line: \"a\\r\\u{1b}\"");
    }

    #[test]
    fn enhanced_codes_are_read_from_the_start_of_the_text() {
        let code = |code: u16, text: &str| Reply::new(code, text).enhanced_code().map(|c| c.to_string());
        assert_eq!(code(550, "5.1.1 <x@y>: Recipient address rejected"), Some("5.1.1".into()));
        assert_eq!(code(250, "2.0.0 Ok: queued as 4F2A1"), Some("2.0.0".into()));
        assert_eq!(code(452, "4.5.3 Too many recipients"), Some("4.5.3".into()));
        assert_eq!(code(550, "5.123.999"), Some("5.123.999".into()));
        // The class must be the reply's; subject and detail one to three digits.
        assert_eq!(code(550, "4.1.1 mismatch"), None);
        assert_eq!(code(550, "5.1234.1 too long"), None);
        assert_eq!(code(550, "5.1 short"), None);
        assert_eq!(code(550, "5.1.1.1 long"), None);
        assert_eq!(code(550, "3.1.1 class"), None);
        assert_eq!(code(550, "no code here"), None);
        assert_eq!(code(550, ""), None);
        assert_eq!(code(550, "5.1.1x"), None);
    }
}
