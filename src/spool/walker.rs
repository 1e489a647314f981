//! A streaming MIME walker: fed a message a chunk at a time, it finds the header block of
//! every MIME part (multiparts nested to any depth, boundaries from each Content-Type),
//! hands each block to the caller, and records the caller's replacements as splices.
//! Bodies pass through unread but for their line starts (a delimiter line is told apart
//! by its first bytes), so memory stays bounded by one part's header block, whatever the
//! message's size.
//!
//! Lines end as the DATA encoder ends them (CRLF, LF or a bare CR), so the parts found are
//! the parts the server will see. The message inside a message/rfc822 part is walked
//! too (its parts numbered under the part's, as IMAP numbers them); the caller is told
//! which header blocks are inside such a forwarded message, which is the sender's, not
//! a part made for this one. For a server without 8BITMIME, the walker also records where each
//! leaf part with 8-bit bytes has its header and body, which header blocks declare
//! `8bit`, and the first thing that would keep the message from being converted
//! ([`Obstacle`]).

use std::fmt;

use super::parameters;
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

/// What a walk found: the splices to make, in stream order, the first part holding a
/// NUL byte in its body, whether the body as transmitted (splices made) has 8-bit
/// bytes, the leaf parts whose bodies have some and the header blocks that declare
/// `Content-Transfer-Encoding: 8bit`, each in stream order, and the first obstacle to
/// converting the message.
#[derive(Debug, Default)]
pub struct Walked {
    pub splices: Vec<Splice>,
    pub nul: Option<PartId>,
    pub eight_bit: bool,
    pub eight_bit_leaves: Vec<Leaf>,
    pub declared_8bit: Vec<Block>,
    pub obstacle: Option<Obstacle>,
}

/// A header block, with where it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The entity whose header it is (for a forwarded message's header: the part of its
    /// body when that is not a multipart, `2.1` in part `2`).
    pub part: PartId,
    /// The block as transmitted (after any splice); `None` for the message's own, the
    /// walker's `head`.
    pub bytes: Option<Vec<u8>>,
    /// Where the bytes it replaces start and end (`0..head.len()` for the message's).
    pub range: (u64, u64),
}

/// A part that is not a multipart (the message itself when it is not one), with where
/// it is in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub header: Block,
    /// Where its content starts and ends: the body without the line end that belongs to
    /// the delimiter after it (RFC 2046 §5.1.1) or that ends the stream.
    pub content: (u64, u64),
    /// It ends the stream, so the line end after its content is the content's (and is
    /// there in what the server gets even when the stream has none: DATA ends the last
    /// line).
    pub ends_stream: bool,
    /// Where the body ends, that line end included.
    pub body_end: u64,
    /// The body's size as DATA transmits it (every line end a CRLF).
    pub body_wire_size: u64,
    /// Its content goes as the bytes of its characters (`spool::low_bytes`; the spool
    /// decides, after the walk).
    pub low_bytes: bool,
}

/// What keeps a message with 8-bit bytes from being converted to 7 bits: 8-bit bytes
/// outside the content of a leaf part, where re-encoding cannot reach, or a forwarded
/// message's header too large to walk (and rewrite).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obstacle {
    /// In a part's header block.
    EightBitHeader(PartId),
    /// In the header of the message in a message/rfc822 part.
    EightBitMessageHeader(PartId),
    /// In a multipart's preamble or epilogue.
    EightBitMultipart(PartId),
    /// A header block inside a forwarded message (`of_message`: the message's own) is
    /// over [`MAX_PART_HEAD`]: the rest of the part is not walked.
    LargeHeader { part: PartId, of_message: bool },
}

impl fmt::Display for Obstacle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Obstacle::EightBitHeader(part) => write!(f, "the header of {part} has 8-bit bytes"),
            Obstacle::EightBitMessageHeader(part) => write!(f, "the header of the message in {part} has 8-bit bytes"),
            Obstacle::EightBitMultipart(part) => write!(f, "the preamble or epilogue of {part} has 8-bit bytes"),
            Obstacle::LargeHeader { part, of_message: true } => {
                write!(f, "the header of the message in {part} is larger than 1 MiB")
            }
            Obstacle::LargeHeader { part, of_message: false } => write!(f, "the header of {part} is larger than 1 MiB"),
        }
    }
}

/// What a header block heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heads {
    /// The message.
    Message,
    /// A part of it, which the caller sees.
    Part,
    /// The message in a message/rfc822 part.
    Forwarded,
    /// A part of that message.
    ForwardedPart,
}

/// One multipart entity being walked.
#[derive(Debug)]
struct Level {
    boundary: Vec<u8>,
    part: PartId,
    /// How many parts it has had so far.
    children: u32,
    /// It is a multipart/digest.
    digest: bool,
    /// It is inside a forwarded message: its parts are [`Heads::ForwardedPart`].
    forwarded: bool,
}

/// The leaf part whose body is being walked.
#[derive(Debug)]
struct OpenLeaf {
    leaf: Leaf,
    /// [`Walker::wire`] where the body started.
    wire_start: u64,
    eight_bit: bool,
}

#[derive(Debug)]
enum State {
    /// Reading the header block of `part`, which started at stream offset `start`.
    Header { part: PartId, start: u64, block: Vec<u8>, heads: Heads },
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
    /// The stream's size so far as DATA transmits it (every line end a CRLF).
    wire: u64,
    /// Where the current line starts, as an offset and in [`Walker::wire`].
    line_start: u64,
    line_start_wire: u64,
    /// How long the current line's end is so far, and the line end before the line.
    end_len: u64,
    previous_end_len: u64,
    state: State,
    levels: Vec<Level>,
    leaf: Option<OpenLeaf>,
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
            wire: 0,
            line_start: offset,
            line_start_wire: 0,
            end_len: 0,
            previous_end_len: 0,
            state: State::Body { part: PartId::default() },
            levels: Vec::new(),
            leaf: None,
            walked: Walked::default(),
        };
        let header = Block { part: PartId::default(), bytes: None, range: (0, offset) };
        walker.enter_body(header, head, Heads::Message);
        walker
    }

    /// Walks `bytes`, the next bytes of the stream. `header` is called with each part's
    /// complete header block (the empty line that ends it included), and whether it is
    /// inside a forwarded message (the content of a message/rfc822 part: the sender's
    /// message, not a part made for this one), and returns the bytes to transmit instead,
    /// if any.
    pub fn feed<E>(
        &mut self,
        mut bytes: &[u8],
        header: &mut impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), Error<E>> {
        if self.pending_cr && !bytes.is_empty() {
            self.pending_cr = false;
            if let Some((b'\n', rest)) = bytes.split_first() {
                // The LF of a CRLF: the line end was counted with its CR.
                self.offset += 1;
                self.end_len += 1;
                if let State::Header { block, .. } = &mut self.state {
                    block.push(b'\n');
                }
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
        header: &mut impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Walked, Error<E>> {
        let unfinished = !self.pending_cr && !self.line_empty;
        if self.pending_cr || !self.line_empty {
            self.end_line(header)?;
        }
        if let State::Header { .. } = self.state {
            self.end_header(header)?;
        }
        // The content ends before the stream's last line end, if it has one.
        let content_end = if unfinished { self.offset } else { self.offset.saturating_sub(self.previous_end_len) };
        if let Some(open) = &mut self.leaf {
            open.leaf.ends_stream = true;
        }
        self.close_leaf(content_end, self.offset, self.wire);
        Ok(self.walked)
    }

    /// Takes bytes of the current line (no line end among them).
    fn content<E>(&mut self, bytes: &[u8]) -> Result<(), Error<E>> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let State::Header { part, block, heads, .. } = &self.state {
            if block.len() + bytes.len() > MAX_PART_HEAD {
                if *heads == Heads::Part {
                    return Err(Error::HeadTooLarge(part.clone()));
                }
                // Not a header mime made: the part goes as it is, walked no further (the
                // line so far, started in the header, is no delimiter).
                let obstacle = Obstacle::LargeHeader { part: part.clone(), of_message: *heads == Heads::Forwarded };
                let part = part.clone();
                self.walked.eight_bit |= !block.is_ascii();
                self.walked.obstacle.get_or_insert(obstacle);
                self.state = State::Body { part };
                self.beyond_peek = true;
            }
        }
        self.line_empty = false;
        self.offset += bytes.len() as u64;
        self.wire += bytes.len() as u64;
        match &mut self.state {
            State::Header { block, .. } => block.extend_from_slice(bytes),
            State::Body { part } => {
                if self.walked.nul.is_none() && bytes.contains(&0) {
                    self.walked.nul = Some(part.clone());
                }
                if !bytes.is_ascii() {
                    self.walked.eight_bit = true;
                    match &mut self.leaf {
                        Some(open) => open.eight_bit = true,
                        None => {
                            let obstacle = Obstacle::EightBitMultipart(part.clone());
                            self.walked.obstacle.get_or_insert(obstacle);
                        }
                    }
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

    /// Takes the current line's end (for a CRLF cut by a chunk, its CR).
    fn line_end(&mut self, end: &[u8]) {
        self.offset += end.len() as u64;
        self.end_len += end.len() as u64;
        self.wire += 2;
        if let State::Header { block, .. } = &mut self.state {
            block.extend_from_slice(end);
        }
    }

    /// The current line is complete: act on it, and start the next.
    fn end_line<E>(
        &mut self,
        header: &mut impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
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
                    let content_end = self.line_start.saturating_sub(self.previous_end_len);
                    self.close_leaf(content_end, self.line_start, self.line_start_wire);
                    self.next_part(delimiter, self.offset);
                }
            }
        }
        if let State::Header { block, .. } = &self.state {
            self.block_line_start = block.len();
        }
        self.previous_end_len = std::mem::take(&mut self.end_len);
        self.line_start = self.offset;
        self.line_start_wire = self.wire;
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
        // A part ended by a delimiter in its header block has no body.
        self.leaf = None;
        self.levels.truncate(index + 1);
        let Some(level) = self.levels.last_mut() else { return };
        if closing {
            let part = level.part.clone();
            self.levels.pop();
            self.state = State::Body { part };
        } else {
            level.children += 1;
            let part = level.part.child(level.children);
            let heads = if level.forwarded { Heads::ForwardedPart } else { Heads::Part };
            self.state = State::Header { part, start, block: Vec::new(), heads };
            self.block_line_start = 0;
        }
    }

    /// The header block being read is complete: the caller sees it, and the body follows.
    fn end_header<E>(
        &mut self,
        header: &mut impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), Error<E>> {
        let State::Header { part, start, block, heads } =
            std::mem::replace(&mut self.state, State::Body { part: PartId::default() })
        else {
            return Ok(());
        };
        let replacement = header(&part, &block, heads != Heads::Part).map_err(Error::Header)?;
        let end = start + block.len() as u64;
        let transmitted = match replacement {
            Some(bytes) => {
                let size_change = message_size(&bytes) as i64 - message_size(&block) as i64;
                self.walked.splices.push(Splice { start, end, bytes, size_change });
                self.walked.splices.last().map(|s| s.bytes.clone()).unwrap_or_default()
            }
            None => block,
        };
        if !transmitted.is_ascii() {
            self.walked.eight_bit = true;
            let obstacle = if heads == Heads::Forwarded {
                Obstacle::EightBitMessageHeader(part.clone())
            } else {
                Obstacle::EightBitHeader(part.clone())
            };
            self.walked.obstacle.get_or_insert(obstacle);
        }
        let header = Block { part, bytes: Some(transmitted.clone()), range: (start, end) };
        self.enter_body(header, &transmitted, heads);
        Ok(())
    }

    /// Enters the body under `header`, whose bytes are `block`: a multipart's, a
    /// forwarded message's (its header block is next), or a leaf's.
    fn enter_body(&mut self, mut header: Block, block: &[u8], heads: Heads) {
        let transfer_encoding = field_value(block, "content-transfer-encoding");
        if transfer_encoding.is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"8bit")) {
            self.walked.declared_8bit.push(header.clone());
        }
        let forwarded = matches!(heads, Heads::Forwarded | Heads::ForwardedPart);
        if let Some(boundary) = multipart_boundary(block) {
            let digest = media_type(block).is_some_and(|t| t == b"multipart/digest");
            self.levels.push(Level { boundary, part: header.part.clone(), children: 0, digest, forwarded });
            self.state = State::Body { part: header.part };
            return;
        }
        // A forwarded message's body, when not a multipart, is its part 1 (IMAP's rule).
        if heads == Heads::Forwarded {
            header.part = header.part.child(1);
        }
        // RFC 2045 §5.2, RFC 2046 §5.1.5.
        let in_digest =
            matches!(heads, Heads::Part | Heads::ForwardedPart) && self.levels.last().is_some_and(|l| l.digest);
        let default: &[u8] = if in_digest { b"message/rfc822" } else { b"text/plain" };
        if media_type(block).as_deref().unwrap_or(default) == b"message/rfc822" {
            // The body of a message that is not a multipart is its part 1.
            let part = if heads == Heads::Message { header.part.child(1) } else { header.part };
            self.state = State::Header { part, start: self.offset, block: Vec::new(), heads: Heads::Forwarded };
            self.block_line_start = 0;
            return;
        }
        let part = header.part.clone();
        let leaf = Leaf {
            header,
            content: (self.offset, self.offset),
            ends_stream: false,
            body_end: self.offset,
            body_wire_size: 0,
            low_bytes: false,
        };
        self.leaf = Some(OpenLeaf { leaf, wire_start: self.wire, eight_bit: false });
        self.state = State::Body { part };
    }

    /// The open leaf's body ends: its content at `content_end`, the body at `body_end`,
    /// `wire` being [`Walker::wire`] there. Only a leaf with 8-bit bytes is kept.
    fn close_leaf(&mut self, content_end: u64, body_end: u64, wire: u64) {
        let Some(OpenLeaf { mut leaf, wire_start, eight_bit }) = self.leaf.take() else { return };
        if eight_bit {
            leaf.content.1 = content_end.max(leaf.content.0);
            leaf.body_end = body_end.max(leaf.content.0);
            leaf.body_wire_size = wire.saturating_sub(wire_start);
            self.walked.eight_bit_leaves.push(leaf);
        }
    }
}

/// The media type of a header block's Content-Type, lower case, if it has one.
pub fn media_type(block: &[u8]) -> Option<Vec<u8>> {
    let value = field_value(block, "content-type")?;
    Some(parameters::split(&value).0.to_ascii_lowercase())
}

/// The boundary of a header block whose Content-Type is multipart, if it names one.
fn multipart_boundary(block: &[u8]) -> Option<Vec<u8>> {
    let value = field_value(block, "content-type")?;
    let (media_type, parameters) = parameters::split(&value);
    if !media_type.to_ascii_lowercase().starts_with(b"multipart/") {
        return None;
    }
    let (_, boundary) = parameters.into_iter().find(|(name, _)| name.eq_ignore_ascii_case(b"boundary"))?;
    Some(boundary).filter(|b| !b.is_empty())
}

/// The unfolded value of the first field called `name` in `block`.
pub fn field_value(block: &[u8], name: &str) -> Option<Vec<u8>> {
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
        let blank_line = [&b"\n\n"[..], b"\r\n\r\n", b"\r\r"]
            .iter()
            .find_map(|blank| message.windows(blank.len()).position(|w| w == *blank).map(|i| i + blank.len()));
        let split = blank_line.unwrap_or(message.len());
        let (head, body) = message.split_at(split);
        let mut seen = Vec::new();
        // A header inside a forwarded message is seen as "part N (forwarded)".
        let mut on_header = |part: &PartId, block: &[u8], forwarded: bool| {
            let forwarded = if forwarded { " (forwarded)" } else { "" };
            seen.push((format!("{part}{forwarded}"), block.to_vec()));
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
        let expected = ["part 1", "part 1.1", "part 1.2", "part 1.2.1", "part 1.2.2", "part 2", "part 2 (forwarded)"];
        assert_eq!(parts(&seen), expected);
        assert_eq!(seen[4].1, b"Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n");
        assert_eq!(seen[5].1, b"Content-Type: message/rfc822\n\n");
        // The message inside a message/rfc822 part: its header, and its body (not a
        // multipart, so "--out-not-a-delimiter" is only text).
        assert_eq!(seen[6].1, b"Subject: inner\n\n");
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
                let mut on_header = |part: &PartId, block: &[u8], forwarded: bool| {
                    seen.push(format!("{part}{}", if forwarded { " (forwarded)" } else { "" }));
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
        let err = walker.feed(body, &mut |_: &PartId, _: &[u8], _| Ok::<_, ()>(None)).unwrap_err();
        assert!(matches!(err, Error::HeadTooLarge(p) if p.to_string() == "part 1"));
    }

    /// Raw DATA size of `bytes`, which end at a line end or at the stream's end.
    fn wire_size(bytes: &[u8]) -> u64 {
        wire_lines(bytes).map(|(line, end)| line.len() as u64 + if end.is_empty() { 0 } else { 2 }).sum()
    }

    #[test]
    fn leaves_with_8_bit_bytes_are_found_with_their_content_and_body_ranges() {
        let message = "Content-Type: multipart/mixed; boundary=b\n\npreamble\n\
            --b\nContent-Type: text/plain\n\ncaf\u{e9}\nsecond\n\n\
            --b\nContent-Type: image/png\n\naGk=\n\
            --b\nContent-Type: multipart/digest; boundary=d\n\n--d\nContent-Type: text/plain\n\n\u{e8}\n--d--\n\
            --b\n\n\u{fc}ber\n--b--\n";
        for ending in ["\n", "\r\n", "\r"] {
            let stream = message.replace('\n', ending).into_bytes();
            for chunk in [1, 2, 5, 4096] {
                let (_, walked) = walk(&stream, chunk, &|_| None);
                let found: Vec<(String, &[u8], &[u8])> = walked
                    .eight_bit_leaves
                    .iter()
                    .map(|l| {
                        let content = &stream[l.content.0 as usize..l.content.1 as usize];
                        let line_end = &stream[l.content.1 as usize..l.body_end as usize];
                        assert_eq!(l.body_wire_size, wire_size(&stream[l.content.0 as usize..l.body_end as usize]));
                        let header = &stream[l.header.range.0 as usize..l.header.range.1 as usize];
                        assert_eq!(l.header.bytes.as_deref(), Some(header));
                        (l.header.part.to_string(), content, line_end)
                    })
                    .collect();
                let e = ending.as_bytes();
                let expected: Vec<(String, Vec<u8>, &[u8])> = vec![
                    ("part 1".into(), format!("caf\u{e9}{ending}second{ending}").into_bytes(), e),
                    ("part 3.1".into(), "\u{e8}".to_string().into_bytes(), e),
                    ("part 4".into(), "\u{fc}ber".to_string().into_bytes(), e),
                ];
                let expected: Vec<(String, &[u8], &[u8])> =
                    expected.iter().map(|(p, c, l)| (p.clone(), c.as_slice(), *l)).collect();
                assert_eq!(found, expected, "ending {ending:?}, chunk {chunk}");
                assert_eq!(walked.obstacle, None);
            }
        }
    }

    #[test]
    fn the_message_itself_is_a_leaf_up_to_its_last_line_end() {
        for (message, content, line_end) in [
            (&b"A: 1\n\n\xe9t\xe9\n"[..], &b"\xe9t\xe9"[..], &b"\n"[..]),
            (b"A: 1\n\n\xe9\r\n\r\n", b"\xe9\r\n", b"\r\n"),
            (b"A: 1\n\nno end \xe9", b"no end \xe9", b""),
            (b"A: 1\n\nends with CR \xe9\r", b"ends with CR \xe9", b"\r"),
        ] {
            let (_, walked) = walk(message, 3, &|_| None);
            let [leaf] = walked.eight_bit_leaves.as_slice() else { panic!("{walked:?}") };
            assert_eq!(leaf.header, Block { part: PartId::default(), bytes: None, range: (0, 6) });
            assert_eq!(&message[leaf.content.0 as usize..leaf.content.1 as usize], content, "{message:?}");
            assert_eq!(&message[leaf.content.1 as usize..leaf.body_end as usize], line_end, "{message:?}");
            assert_eq!(leaf.body_end, message.len() as u64);
        }
    }

    #[test]
    fn forwarded_messages_are_walked_and_their_headers_shown_as_such() {
        let message = b"Content-Type: multipart/mixed; boundary=b\n\n\
            --b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n\
            Subject: fwd\nContent-Type: multipart/alternative; boundary=in\n\n\
            --in\nContent-Type: text/plain\n\n\xe9\n--in\nX-Inner: 1\n\n\xe8\n--in--\n\
            --b\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: digested\n\n\xea\n--d--\n\
            --b--\n";
        let (seen, walked) = walk(message, 3, &|_| None);
        let expected = [
            "part 1",
            "part 1 (forwarded)",
            "part 1.1 (forwarded)",
            "part 1.2 (forwarded)",
            "part 2",
            "part 2.1",
            "part 2.1 (forwarded)",
        ];
        assert_eq!(parts(&seen), expected);
        let leaves: Vec<String> = walked.eight_bit_leaves.iter().map(|l| l.header.part.to_string()).collect();
        assert_eq!(leaves, ["part 1.1", "part 1.2", "part 2.1.1"]);
        // The digest's part is a message: its header is the one the leaf's CTE goes in.
        let digested = &walked.eight_bit_leaves[2].header;
        assert_eq!(digested.bytes.as_deref(), Some(&b"Subject: digested\n\n"[..]));
        let declared: Vec<String> = walked.declared_8bit.iter().map(|b| b.part.to_string()).collect();
        assert_eq!(declared, ["part 1"]);
        assert_eq!(walked.obstacle, None);

        let eight_bit_header = b"Content-Type: message/rfc822\n\nSubject: \xe9\n\nbody\n";
        let (_, walked) = walk(eight_bit_header, 4, &|_| None);
        assert_eq!(walked.obstacle, Some(Obstacle::EightBitMessageHeader(PartId(vec![1]))));
        assert_eq!(
            walked.obstacle.map(|e| e.to_string()),
            Some("the header of the message in part 1 has 8-bit bytes".into())
        );
    }

    #[test]
    fn eight_bit_bytes_in_part_headers_and_preambles_are_found() {
        let header = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX: \xe9\n\nx\n--b--\n";
        assert_eq!(walk(header, 2, &|_| None).1.obstacle, Some(Obstacle::EightBitHeader(PartId(vec![1]))));
        let epilogue = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n\xe9\n";
        assert_eq!(walk(epilogue, 2, &|_| None).1.obstacle, Some(Obstacle::EightBitMultipart(PartId::default())));
        // A repaired header is judged as transmitted.
        let (_, walked) = walk(header, 2, &|block| (!block.is_ascii()).then(|| b"X: e\n\n".to_vec()));
        assert_eq!(walked.obstacle, None);
    }

    #[test]
    fn a_forwarded_message_with_an_oversized_header_is_walked_no_further() {
        let mut message =
            b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nX: ".to_vec();
        message.resize(message.len() + MAX_PART_HEAD + 1, b'a');
        message.extend_from_slice(b"\n--b\n\nnext part \xe9\n--b--\n");
        let (seen, walked) = walk(&message, 4096, &|_| None);
        assert_eq!(parts(&seen), ["part 1", "part 2"]);
        assert_eq!(
            walked.obstacle.map(|o| o.to_string()),
            Some("the header of the message in part 1 is larger than 1 MiB".into())
        );
    }

    #[test]
    fn an_oversized_part_header_inside_a_forwarded_message_is_no_error() {
        let mut message =
            b"Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=in\n\n--in\nX: ".to_vec();
        message.resize(message.len() + MAX_PART_HEAD + 1, b'a');
        message.extend_from_slice(b"\n\nbody\n--in--\n");
        let (seen, walked) = walk(&message, 4096, &|_| None);
        assert_eq!(parts(&seen), ["part 1 (forwarded)"]);
        assert_eq!(walked.obstacle.map(|o| o.to_string()), Some("the header of part 1.1 is larger than 1 MiB".into()));
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
