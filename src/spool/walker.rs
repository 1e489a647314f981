//! A streaming MIME walker: fed a message a chunk at a time, it finds the header block of
//! every MIME part (multiparts nested to any depth, boundaries from each Content-Type),
//! hands each block to the caller, and records the caller's replacements as splices.
//! Bodies pass through unread but for their line starts (a delimiter line is told apart
//! by its first bytes), so memory stays bounded by one part's header block, whatever the
//! message's size.
//!
//! Lines end as the DATA encoder ends them (CRLF, LF or a bare CR), so the parts found are
//! the parts the server will see. A message/rfc822 part is one leaf: the message inside
//! is the part's content. The walker knows where each part's header and body start and
//! end, which is what re-encoding a part's body would need too.

use std::fmt;

use crate::smtp::{message_size, wire_lines};

/// The most bytes one part's header block may have.
pub const MAX_PART_HEAD: usize = 1024 * 1024;

/// How many bytes of a body line are kept to tell a delimiter line: `--`, a boundary
/// (at most 70 characters by RFC 2046, longer ones are accepted up to this) and `--`.
const PEEK: usize = 1024;

/// A MIME part, numbered as IMAP numbers sections: `1.2` is the second part of the
/// first part; the message itself has no number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartId(Vec<u32>);

impl PartId {
    fn child(&self, n: u32) -> PartId {
        let mut id = self.0.clone();
        id.push(n);
        PartId(id)
    }
}

impl fmt::Display for PartId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the message");
        }
        f.write_str("part ")?;
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// Bytes of the stream to transmit in place of others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Splice {
    /// Where the replaced bytes start, in the stream's offsets.
    pub start: u64,
    /// Where they end.
    pub end: u64,
    pub bytes: Vec<u8>,
    /// `message_size(bytes)` minus the same for the replaced bytes: what the splice
    /// changes in the size DATA transmits.
    pub size_change: i64,
}

/// Why the walk stopped.
#[derive(Debug)]
pub enum Error<E> {
    /// A part's header block is larger than [`MAX_PART_HEAD`].
    HeadTooLarge(PartId),
    /// The caller refused a header block.
    Header(E),
}

/// What a walk found: the splices to make, in stream order, and the first part holding
/// a NUL byte in its body, if any.
#[derive(Debug, Default)]
pub struct Walked {
    pub splices: Vec<Splice>,
    pub nul: Option<PartId>,
}

/// One multipart entity being walked.
#[derive(Debug)]
struct Level {
    boundary: Vec<u8>,
    part: PartId,
    /// How many parts it has had so far.
    children: u32,
}

#[derive(Debug)]
enum State {
    /// Reading the header block of `part`, which started at stream offset `start`.
    Header { part: PartId, start: u64, block: Vec<u8> },
    /// In the body of `part` (for a multipart: its preamble or epilogue).
    Body { part: PartId },
}

/// The walker. Feed it the stream after the message's own header block with
/// [`Walker::feed`], then call [`Walker::finish`].
#[derive(Debug)]
pub struct Walker {
    /// The stream offset of the next byte fed.
    offset: u64,
    /// In a header block: where the current line starts in the block.
    block_line_start: usize,
    /// The current body line's first bytes, and whether it has non-white-space beyond.
    peek: Vec<u8>,
    beyond_peek: bool,
    /// Whether the current line has any content yet.
    line_empty: bool,
    /// The last byte fed was a CR: an LF that follows belongs to the same line end.
    pending_cr: bool,
    state: State,
    levels: Vec<Level>,
    walked: Walked,
}

impl Walker {
    /// A walker for the body of a message whose header block is `head`, the body
    /// starting at stream offset `head.len()`.
    pub fn new(head: &[u8]) -> Walker {
        let offset = head.len() as u64;
        let mut walker = Walker {
            offset,
            block_line_start: 0,
            peek: Vec::new(),
            beyond_peek: false,
            line_empty: true,
            pending_cr: false,
            state: State::Body { part: PartId::default() },
            levels: Vec::new(),
            walked: Walked::default(),
        };
        walker.enter_body(PartId::default(), multipart_boundary(head));
        walker
    }

    /// Walks `bytes`, the next bytes of the stream. `header` is called with each part's
    /// complete header block (the empty line that ends it included) and returns the
    /// bytes to transmit instead, if any.
    pub fn feed<E>(
        &mut self,
        mut bytes: &[u8],
        header: &mut impl FnMut(&PartId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), Error<E>> {
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if let Some((b'\n', rest)) = bytes.split_first() {
                self.line_end(b"\n");
                bytes = rest;
            }
            self.end_line(header)?;
        }
        while !bytes.is_empty() {
            let Some(at) = bytes.iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.content(bytes)?;
                return Ok(());
            };
            let (content, rest) = bytes.split_at(at);
            self.content(content)?;
            let end_len = match rest {
                [b'\r', b'\n', ..] => 2,
                [b'\r'] => {
                    // Whether an LF follows is for the next chunk to say.
                    self.line_end(b"\r");
                    self.pending_cr = true;
                    return Ok(());
                }
                _ => 1,
            };
            let (end, rest) = rest.split_at(end_len);
            self.line_end(end);
            self.end_line(header)?;
            bytes = rest;
        }
        Ok(())
    }

    /// Ends the walk at the end of the stream.
    pub fn finish<E>(
        mut self,
        header: &mut impl FnMut(&PartId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Walked, Error<E>> {
        if self.pending_cr || !self.line_empty {
            self.end_line(header)?;
        }
        if let State::Header { .. } = self.state {
            self.end_header(header)?;
        }
        Ok(self.walked)
    }

    /// Takes bytes of the current line (no line end among them).
    fn content<E>(&mut self, bytes: &[u8]) -> Result<(), Error<E>> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.line_empty = false;
        self.offset += bytes.len() as u64;
        match &mut self.state {
            State::Header { part, block, .. } => {
                if block.len() + bytes.len() > MAX_PART_HEAD {
                    return Err(Error::HeadTooLarge(part.clone()));
                }
                block.extend_from_slice(bytes);
            }
            State::Body { part } => {
                if self.walked.nul.is_none() && bytes.contains(&0) {
                    self.walked.nul = Some(part.clone());
                }
                let room = PEEK.saturating_sub(self.peek.len());
                let (kept, beyond) = bytes.split_at(room.min(bytes.len()));
                self.peek.extend_from_slice(kept);
                // Only a line starting with "--" can be a delimiter: skip looking at others.
                if !beyond.is_empty() && self.peek.starts_with(b"--") {
                    self.beyond_peek |= beyond.iter().any(|b| !matches!(b, b' ' | b'\t'));
                }
            }
        }
        Ok(())
    }

    /// Takes the current line's end (or part of it: the LF of a CRLF cut by a chunk).
    fn line_end(&mut self, end: &[u8]) {
        self.offset += end.len() as u64;
        if let State::Header { block, .. } = &mut self.state {
            block.extend_from_slice(end);
        }
    }

    /// The current line is complete: act on it, and start the next.
    fn end_line<E>(
        &mut self,
        header: &mut impl FnMut(&PartId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), Error<E>> {
        match &self.state {
            State::Header { .. } if self.line_empty => self.end_header(header)?,
            State::Header { block, .. } => {
                let line = block.get(self.block_line_start..).unwrap_or_default();
                let content = line.strip_suffix(b"\n").unwrap_or(line);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                if let Some(delimiter) = self.delimiter(content) {
                    // A delimiter before the empty line: the part has a header, no body.
                    if let State::Header { block, .. } = &mut self.state {
                        block.truncate(self.block_line_start);
                    }
                    self.end_header(header)?;
                    self.next_part(delimiter, self.offset);
                }
            }
            State::Body { .. } => {
                if let Some(delimiter) = self.delimiter(&self.peek).filter(|_| !self.beyond_peek) {
                    self.next_part(delimiter, self.offset);
                }
            }
        }
        if let State::Header { block, .. } = &self.state {
            self.block_line_start = block.len();
        }
        self.peek.clear();
        self.beyond_peek = false;
        self.line_empty = true;
        Ok(())
    }

    /// The level whose delimiter `line` is (innermost first), and whether it is the
    /// closing one: `--boundary` or `--boundary--`, then only white space (RFC 2046).
    fn delimiter(&self, line: &[u8]) -> Option<(usize, bool)> {
        let after_dashes = line.strip_prefix(b"--")?;
        self.levels.iter().enumerate().rev().find_map(|(i, level)| {
            let rest = after_dashes.strip_prefix(level.boundary.as_slice())?;
            let (closing, padding) = match rest.strip_prefix(b"--") {
                Some(padding) => (true, padding),
                None => (false, rest),
            };
            padding.iter().all(|b| matches!(b, b' ' | b'\t')).then_some((i, closing))
        })
    }

    /// Acts on a delimiter of level `index`: the next part starts at stream offset
    /// `start`, or (closing) the multipart's epilogue follows.
    fn next_part(&mut self, (index, closing): (usize, bool), start: u64) {
        self.levels.truncate(index + 1);
        let Some(level) = self.levels.last_mut() else { return };
        if closing {
            let part = level.part.clone();
            self.levels.pop();
            self.state = State::Body { part };
        } else {
            level.children += 1;
            let part = level.part.child(level.children);
            self.state = State::Header { part, start, block: Vec::new() };
            self.block_line_start = 0;
        }
    }

    /// The header block being read is complete: the caller sees it, and the part's body
    /// follows.
    fn end_header<E>(
        &mut self,
        header: &mut impl FnMut(&PartId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), Error<E>> {
        let State::Header { part, start, block } =
            std::mem::replace(&mut self.state, State::Body { part: PartId::default() })
        else {
            return Ok(());
        };
        let replacement = header(&part, &block).map_err(Error::Header)?;
        let transmitted = match replacement {
            Some(bytes) => {
                let size_change = message_size(&bytes) as i64 - message_size(&block) as i64;
                let end = start + block.len() as u64;
                self.walked.splices.push(Splice { start, end, bytes, size_change });
                self.walked.splices.last().map(|s| s.bytes.as_slice()).unwrap_or_default()
            }
            None => &block,
        };
        let boundary = multipart_boundary(transmitted);
        self.enter_body(part, boundary);
        Ok(())
    }

    /// Enters the body of `part`: a multipart's when it has a `boundary`.
    fn enter_body(&mut self, part: PartId, boundary: Option<Vec<u8>>) {
        if let Some(boundary) = boundary {
            self.levels.push(Level { boundary, part: part.clone(), children: 0 });
        }
        self.state = State::Body { part };
    }
}

/// The boundary of a header block whose Content-Type is multipart, if it names one.
fn multipart_boundary(block: &[u8]) -> Option<Vec<u8>> {
    let value = field_value(block, "content-type")?;
    let value = value.trim_ascii_start();
    let (media_type, mut params) = value.split_at(value.iter().position(|&b| b == b';').unwrap_or(value.len()));
    if !media_type.trim_ascii().to_ascii_lowercase().starts_with(b"multipart/") {
        return None;
    }
    while let Some(rest) = params.strip_prefix(b";") {
        let rest = rest.trim_ascii_start();
        let eq = rest.iter().position(|&b| b == b'=')?;
        let (name, after) = rest.split_at(eq);
        let after = after.get(1..).unwrap_or_default().trim_ascii_start();
        let (value, next) = parameter_value(after);
        if name.trim_ascii().eq_ignore_ascii_case(b"boundary") {
            return Some(value).filter(|v| !v.is_empty());
        }
        params = next.trim_ascii_start();
    }
    None
}

/// A parameter's value (a quoted string, unquoted, or a token) and what follows it.
fn parameter_value(text: &[u8]) -> (Vec<u8>, &[u8]) {
    let Some(quoted) = text.strip_prefix(b"\"") else {
        let end = text.iter().position(|&b| b == b';' || b.is_ascii_whitespace()).unwrap_or(text.len());
        let (value, rest) = text.split_at(end);
        return (value.to_vec(), rest);
    };
    let mut value = Vec::new();
    let mut bytes = quoted.iter().enumerate();
    while let Some((i, &b)) = bytes.next() {
        match b {
            b'"' => return (value, quoted.get(i + 1..).unwrap_or_default()),
            b'\\' => value.extend(bytes.next().map(|(_, &escaped)| escaped)),
            _ => value.push(b),
        }
    }
    (value, &[])
}

/// The unfolded value of the first field called `name` in `block`.
fn field_value(block: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for (line, _) in wire_lines(block) {
        match (&mut value, line.first()) {
            (Some(v), Some(b' ' | b'\t')) => v.extend_from_slice(line),
            (Some(_), _) | (None, None) => break,
            (None, _) => {
                let colon = line.iter().position(|&b| b == b':');
                let named = colon.and_then(|c| line.get(..c)).is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
                if named {
                    value = colon.and_then(|c| line.get(c + 1..)).map(<[u8]>::to_vec);
                }
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `message` (head, then body) cut into `chunk`-byte pieces, recording each
    /// header block seen and replacing those `replace` answers for.
    fn walk(
        message: &[u8],
        chunk: usize,
        replace: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
    ) -> (Vec<(String, Vec<u8>)>, Walked) {
        let split = message.windows(2).position(|w| w == b"\n\n").map_or(message.len(), |i| i + 2);
        let (head, body) = message.split_at(split);
        let mut seen = Vec::new();
        let mut on_header = |part: &PartId, block: &[u8]| {
            seen.push((part.to_string(), block.to_vec()));
            Ok::<_, ()>(replace(block))
        };
        let mut walker = Walker::new(head);
        for piece in body.chunks(chunk.max(1)) {
            walker.feed(piece, &mut on_header).unwrap();
        }
        let walked = walker.finish(&mut on_header).unwrap();
        (seen, walked)
    }

    const NESTED: &[u8] = b"Content-Type: multipart/mixed; boundary=\"out\"\n\n\
        preamble\n\
        --out\nContent-Type: multipart/alternative;\n boundary=in\n\n\
        --in\nContent-Type: text/plain\n\nplain\n\
        --in\nContent-Type: multipart/related; boundary=\"rel\"\n\n\
        --rel\nContent-Type: text/html\n\n<p>\n\
        --rel\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\naGk=\n\
        --rel--\n\
        --in--\n\
        --out\nContent-Type: message/rfc822\n\nSubject: inner\n\n--out-not-a-delimiter\nbody\n\
        --out--   \nepilogue\n";

    fn parts(seen: &[(String, Vec<u8>)]) -> Vec<&str> {
        seen.iter().map(|(p, _)| p.as_str()).collect()
    }

    #[test]
    fn nested_multiparts_are_numbered_like_imap_sections() {
        let (seen, walked) = walk(NESTED, 4096, &|_| None);
        assert_eq!(parts(&seen), ["part 1", "part 1.1", "part 1.2", "part 1.2.1", "part 1.2.2", "part 2"]);
        assert_eq!(seen[4].1, b"Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n");
        // The message inside a message/rfc822 part is its content: not walked.
        assert_eq!(seen[5].1, b"Content-Type: message/rfc822\n\n");
        assert!(walked.splices.is_empty());
        assert_eq!(walked.nul, None);
    }

    #[test]
    fn every_chunking_and_line_ending_finds_the_same_parts() {
        let (whole, _) = walk(NESTED, 4096, &|_| None);
        for ending in [&b"\n"[..], b"\r\n", b"\r"] {
            let message: Vec<u8> = NESTED.split(|&b| b == b'\n').collect::<Vec<_>>().join(ending);
            let head_end = message.windows(2 * ending.len()).position(|w| w == [ending, ending].concat()).unwrap();
            for chunk in [1, 2, 3, 7, 64] {
                let (head, body) = message.split_at(head_end + 2 * ending.len());
                let mut seen = Vec::new();
                let mut on_header = |part: &PartId, block: &[u8]| {
                    seen.push(part.to_string());
                    assert!(block.ends_with(&[ending, ending].concat()), "{block:?}");
                    Ok::<_, ()>(None)
                };
                let mut walker = Walker::new(head);
                for piece in body.chunks(chunk) {
                    walker.feed(piece, &mut on_header).unwrap();
                }
                walker.finish(&mut on_header).unwrap();
                assert_eq!(seen, parts(&whole), "ending {ending:?}, chunk {chunk}");
            }
        }
    }

    #[test]
    fn splices_replace_whole_header_blocks_and_say_how_the_size_changes() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX: 1\n\nbody\n--b--\n";
        let (_, walked) = walk(message, 3, &|block| (block == b"X: 1\n\n").then(|| b"Y: 22\n\n".to_vec()));
        let head_len = "Content-Type: multipart/mixed; boundary=b\n\n".len() as u64;
        assert_eq!(
            walked.splices,
            [Splice { start: head_len + 4, end: head_len + 10, bytes: b"Y: 22\n\n".to_vec(), size_change: 1 }]
        );
    }

    #[test]
    fn a_replaced_header_s_boundary_is_the_one_followed() {
        let message =
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/mixed; boundary=wrong\n\n\
            --right\nA: 1\n\nx\n--right--\n--b--\n";
        let fix = |block: &[u8]| {
            (block.starts_with(b"Content-Type: multipart/mixed; boundary=wrong"))
                .then(|| b"Content-Type: multipart/mixed; boundary=right\n\n".to_vec())
        };
        let (seen, _) = walk(message, 5, &fix);
        assert_eq!(parts(&seen), ["part 1", "part 1.1"]);
    }

    #[test]
    fn a_part_without_an_empty_line_ends_at_the_next_delimiter() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1\n--b\nB: 2\n\nbody\n--b--\n";
        let (seen, _) = walk(message, 1, &|_| None);
        assert_eq!(seen, [("part 1".to_string(), b"A: 1\n".to_vec()), ("part 2".to_string(), b"B: 2\n\n".to_vec())]);
    }

    #[test]
    fn a_header_block_at_the_end_of_the_stream_is_seen() {
        let (seen, _) = walk(b"Content-Type: multipart/mixed; boundary=b\n\n--b\nA: 1", 2, &|_| None);
        assert_eq!(seen, [("part 1".to_string(), b"A: 1".to_vec())]);
    }

    #[test]
    fn delimiters_need_the_exact_boundary_and_only_white_space_after() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--bb\n--b x\n-- b\n--b--x\nstill part 1\n--b \t\n\n--b--\n";
        let (seen, _) = walk(message, 1, &|_| None);
        assert_eq!(parts(&seen), ["part 1", "part 2"]);
    }

    #[test]
    fn a_delimiter_longer_than_the_peek_with_trailing_text_is_not_one() {
        let mut message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b".to_vec();
        message.extend(std::iter::repeat_n(b' ', PEEK * 2));
        message.extend_from_slice(b"x\n--b\n\n--b--\n");
        let (seen, _) = walk(&message, 100, &|_| None);
        assert_eq!(parts(&seen), ["part 1", "part 2"]);
    }

    #[test]
    fn the_first_part_with_a_nul_in_its_body_is_named() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nclean\n--b\n\nnul \0 here\n--b--\n";
        assert_eq!(walk(message, 4, &|_| None).1.nul.map(|p| p.to_string()), Some("part 2".into()));
        assert_eq!(
            walk(b"A: 1\n\nnot multipart \0\n", 4, &|_| None).1.nul.map(|p| p.to_string()),
            Some("the message".into())
        );
    }

    #[test]
    fn an_oversized_part_header_is_refused() {
        let mut message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX: ".to_vec();
        message.resize(message.len() + MAX_PART_HEAD + 1, b'a');
        let (head, body) = message.split_at(message.windows(2).position(|w| w == b"\n\n").unwrap() + 2);
        let mut walker = Walker::new(head);
        let err = walker.feed(body, &mut |_: &PartId, _: &[u8]| Ok::<_, ()>(None)).unwrap_err();
        assert!(matches!(err, Error::HeadTooLarge(p) if p.to_string() == "part 1"));
    }

    #[test]
    fn boundaries_are_read_quoted_unquoted_and_escaped() {
        for (block, boundary) in [
            (&b"Content-Type: multipart/mixed; boundary=\"a b\"\n\n"[..], Some(&b"a b"[..])),
            (b"content-type: Multipart/Mixed;\n charset=x;\n BOUNDARY=tok\n\n", Some(b"tok")),
            (b"Content-Type: multipart/mixed; boundary=\"q\\\"x\"\n\n", Some(b"q\"x")),
            (b"Content-Type: text/plain; boundary=x\n\n", None),
            (b"Content-Type: multipart/mixed\n\n", None),
            (b"Content-Type: multipart/mixed; boundary=\"\"\n\n", None),
            (b"Subject: x\n\n", None),
        ] {
            assert_eq!(multipart_boundary(block).as_deref(), boundary, "{block:?}");
        }
    }
}
