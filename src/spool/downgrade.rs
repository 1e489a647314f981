//! The message converted to 7 bits for a server without 8BITMIME, as Postfix's SMTP
//! client converts (RFC 6152 §3 leaves it to the client to convert or to fail): each
//! leaf part whose content has 8-bit bytes is re-encoded, text as quoted-printable and
//! anything else as base64, with its Content-Transfer-Encoding rewritten; the multipart
//! structure and every other byte stay as they are. The content is read as DATA would
//! carry it (every line end a CRLF), so the parts decode to what a server offering
//! 8BITMIME would have received.
//!
//! A message/rfc822 part's body may not be encoded (RFC 2046 §5.2.1), so the parts of the
//! message inside are converted instead, and the header blocks that declared `8bit` say
//! `7bit`. 8-bit bytes that re-encoding a body cannot reach make the message
//! unconvertible: in a header block, in a multipart's preamble or epilogue, in a part
//! already declared quoted-printable or base64, or in a message/* part other than
//! message/rfc822.

use std::fs::File;
use std::io;

use super::walker::{field_value, media_type, Block, Leaf, PartId, Walked};
use super::{for_each_content_chunk, ChunkError};
use crate::compose::{Base64Text, QuotedPrintable};
use crate::smtp::{message_size, wire_lines};

/// How a part's content is re-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    QuotedPrintable,
    Base64,
}

impl Encoding {
    /// Its Content-Transfer-Encoding value.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::QuotedPrintable => "quoted-printable",
            Encoding::Base64 => "base64",
        }
    }
}

/// A header block rewritten.
#[derive(Debug)]
pub struct Rewrite {
    pub part: PartId,
    /// The new bytes, and the stream range they replace.
    pub bytes: Vec<u8>,
    pub range: (u64, u64),
    /// It is the message's own header block (the range is the head).
    pub is_head: bool,
    /// [`message_size`] of the old block.
    old_size: u64,
}

impl Rewrite {
    /// `header` (whose bytes are `block`) with its Content-Transfer-Encoding `encoding`.
    fn new(header: &Block, block: &[u8], encoding: &str) -> Rewrite {
        Rewrite {
            part: header.part.clone(),
            bytes: with_transfer_encoding(block, encoding),
            range: header.range,
            is_head: header.bytes.is_none(),
            old_size: message_size(block),
        }
    }

    fn size_change(&self) -> i64 {
        message_size(&self.bytes) as i64 - self.old_size as i64
    }
}

/// How one part is converted: its header block and its body are replaced.
#[derive(Debug)]
pub struct Conversion {
    pub header: Rewrite,
    pub encoding: Encoding,
    /// The content to encode (stream offsets), and where the body it replaces ends.
    pub content: (u64, u64),
    /// The part ends the message: its content's last line end, which the content range
    /// leaves out, is content too (see [`Encoder::new`]).
    pub ends_message: bool,
    /// The content is read as its characters' bytes ([`super::low_bytes`]).
    pub low_bytes: bool,
    pub body_end: u64,
    /// The body's size as DATA transmits it, before and after.
    pub body_wire_size: u64,
    pub encoded_size: u64,
}

impl Conversion {
    /// What converting the part changes in the message's `SIZE=`. A body without a line
    /// end after its content ends the message unfinished, which DATA finishes with a
    /// CRLF that the size counts; the encoded body ends its last line itself.
    fn size_change(&self) -> i64 {
        let unfinished = if self.body_end == self.content.1 { 2 } else { 0 };
        self.header.size_change() + self.encoded_size as i64 - self.body_wire_size as i64 - unfinished
    }
}

/// What converting a message does: parts re-encoded, and the other header blocks that
/// declared `8bit` relabelled `7bit` (all their content is 7-bit once converted).
#[derive(Debug)]
pub struct Plan {
    pub conversions: Vec<Conversion>,
    pub relabels: Vec<Rewrite>,
}

impl Plan {
    /// What the plan changes in the message's `SIZE=` (once [`measure`]d).
    pub fn size_change(&self) -> i64 {
        self.conversions.iter().map(Conversion::size_change).sum::<i64>()
            + self.relabels.iter().map(Rewrite::size_change).sum::<i64>()
    }

    /// What was re-encoded, for the trace: `part 1 as quoted-printable, ...`.
    pub fn summary(&self) -> String {
        let parts: Vec<String> =
            self.conversions.iter().map(|c| format!("{} as {}", c.header.part, c.encoding.name())).collect();
        parts.join(", ")
    }
}

/// The plan for a message whose (transmitted) header block is `head`, from what the walk
/// found; or why it cannot be converted. The encoded sizes are left at 0 ([`measure`]).
pub fn plan(head: &[u8], walked: Walked) -> Result<Plan, String> {
    if !head.is_ascii() {
        return Err("the message's header has 8-bit bytes".into());
    }
    if let Some(obstacle) = walked.obstacle {
        return Err(obstacle.to_string());
    }
    let conversions =
        walked.eight_bit_leaves.into_iter().map(|leaf| conversion(head, leaf)).collect::<Result<Vec<_>, _>>()?;
    let relabels = walked
        .declared_8bit
        .iter()
        .filter(|block| !conversions.iter().any(|c| c.header.range == block.range))
        .map(|block| Rewrite::new(block, block.bytes.as_deref().unwrap_or(head), "7bit"))
        .collect();
    Ok(Plan { conversions, relabels })
}

fn conversion(head: &[u8], leaf: Leaf) -> Result<Conversion, String> {
    let block = leaf.header.bytes.as_deref().unwrap_or(head);
    let part = &leaf.header.part;
    // The walker walked into message/rfc822 parts and multiparts with a boundary: any
    // other message/* or multipart/* is a leaf here.
    let media_type = media_type(block).unwrap_or_else(|| b"text/plain".to_vec());
    let declared = field_value(block, "content-transfer-encoding").map(|v| v.trim_ascii().to_ascii_lowercase());
    match declared.as_deref() {
        None | Some(b"7bit" | b"8bit" | b"binary") => {}
        Some(other) => return Err(format!("{part} is declared {} but has 8-bit bytes", shown(other))),
    }
    if media_type.starts_with(b"message/") || media_type.starts_with(b"multipart/") {
        return Err(format!("{part} is {}, whose body may not be re-encoded (RFC 2046)", shown(&media_type)));
    }
    let encoding = if media_type.starts_with(b"text/") { Encoding::QuotedPrintable } else { Encoding::Base64 };
    Ok(Conversion {
        header: Rewrite::new(&leaf.header, block, encoding.name()),
        encoding,
        content: leaf.content,
        ends_message: leaf.ends_stream,
        low_bytes: leaf.low_bytes,
        body_end: leaf.body_end,
        body_wire_size: leaf.body_wire_size,
        encoded_size: 0,
    })
}

/// A header value for a message: printable ASCII (others as `?`), at most 40 characters.
fn shown(value: &[u8]) -> String {
    let text: String =
        value.iter().take(40).map(|&b| if b == b' ' || b.is_ascii_graphic() { char::from(b) } else { '?' }).collect();
    if value.len() > 40 {
        format!("{text}...")
    } else {
        text
    }
}

/// `block` with its Content-Transfer-Encoding fields replaced by one saying `encoding`,
/// before the empty line that ends the block. (A block without one heads no body: it
/// only loses the fields, and 7bit is the default.)
fn with_transfer_encoding(block: &[u8], encoding: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(block.len() + 48);
    let mut in_field = false;
    let mut added = false;
    for (line, end) in wire_lines(block) {
        if line.is_empty() && !added {
            out.extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
            added = true;
        }
        let continues = matches!(line.first(), Some(b' ' | b'\t'));
        if !continues {
            let colon = line.iter().position(|&b| b == b':');
            let name = colon.and_then(|c| line.get(..c)).unwrap_or_default();
            in_field = name.trim_ascii_end().eq_ignore_ascii_case(b"content-transfer-encoding");
        }
        if !in_field {
            out.extend_from_slice(line);
            out.extend_from_slice(end);
        }
    }
    out
}

/// Sets each conversion's encoded size by encoding its content from `file` (the body,
/// which starts at stream offset `head_len`, is at file offset `body_start`).
pub fn measure(plan: &mut Plan, file: &File, head_len: u64, body_start: u64) -> io::Result<()> {
    for conversion in &mut plan.conversions {
        let (start, end) = conversion.content;
        let offset = body_start + start.saturating_sub(head_len);
        let len = end.saturating_sub(start);
        let encoder = Encoder::new(conversion.encoding, conversion.ends_message);
        conversion.encoded_size = encoded_size(file, (offset, len, conversion.low_bytes), encoder)?;
    }
    Ok(())
}

/// The size of `len` bytes of `file` from `start` (read as their characters' bytes with
/// `low_bytes`) encoded by `encoder` (its lines end CRLF: the size DATA transmits).
pub fn encoded_size(file: &File, (start, len, low_bytes): (u64, u64, bool), mut encoder: Encoder) -> io::Result<u64> {
    let mut size = 0;
    let mut out = Vec::new();
    for_each_content_chunk(file, (start, len, low_bytes), |chunk| {
        out.clear();
        encoder.encode(chunk, &mut out);
        size += out.len() as u64;
        Ok::<(), io::Error>(())
    })
    .map_err(|e| match e {
        ChunkError::Read(e) | ChunkError::Consumer(e) => e,
    })?;
    out.clear();
    encoder.finish(&mut out);
    Ok(size + out.len() as u64)
}

/// A content encoder of either kind.
#[derive(Debug)]
pub enum Encoder {
    QuotedPrintable(QuotedPrintable),
    /// With `line_end`, the content ends with a line end that it was given without.
    Base64 {
        encoder: Base64Text,
        line_end: bool,
    },
}

impl Encoder {
    /// An encoder for content that (`ends_message`) ends the message, whose last line end
    /// (left out, like the one before a delimiter) is content too: base64 encodes it;
    /// quoted-printable's own last line end stands for it.
    pub fn new(encoding: Encoding, ends_message: bool) -> Encoder {
        match encoding {
            Encoding::QuotedPrintable => Encoder::QuotedPrintable(QuotedPrintable::default()),
            Encoding::Base64 => Encoder::Base64 { encoder: Base64Text::default(), line_end: ends_message },
        }
    }

    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Encoder::QuotedPrintable(e) => e.encode(input, out),
            Encoder::Base64 { encoder, .. } => encoder.encode(input, out),
        }
    }

    /// Ends the encoded content with a line end, which stands for the one after the
    /// content (before the next delimiter, or at the end of the message). Base64 lines
    /// end with theirs already; an empty content is an empty line.
    pub fn finish(self, out: &mut Vec<u8>) {
        match self {
            Encoder::QuotedPrintable(e) => {
                e.finish(out);
                out.extend_from_slice(b"\r\n");
            }
            Encoder::Base64 { mut encoder, line_end } => {
                if line_end {
                    encoder.encode(b"\r\n", out);
                }
                if !encoder.finish(out) {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::walker::Obstacle;

    #[test]
    fn the_transfer_encoding_is_replaced_before_the_empty_line() {
        let block = b"Content-Type: text/plain\nContent-Transfer-Encoding:\n 8bit\nX: 1\n\n";
        assert_eq!(
            with_transfer_encoding(block, "quoted-printable"),
            b"Content-Type: text/plain\nX: 1\nContent-Transfer-Encoding: quoted-printable\r\n\n"
        );
        assert_eq!(
            with_transfer_encoding(b"A: 1\r\n\r\n", "base64"),
            b"A: 1\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
    }

    fn leaf(header: &[u8]) -> Leaf {
        let header = Block { part: PartId::default(), bytes: Some(header.to_vec()), range: (0, 0) };
        Leaf { header, content: (0, 0), ends_stream: false, body_end: 0, body_wire_size: 0, low_bytes: false }
    }

    #[test]
    fn text_goes_quoted_printable_the_rest_base64_and_some_parts_not_at_all() {
        let encoding = |header: &[u8]| conversion(b"", leaf(header)).map(|c| c.encoding);
        assert_eq!(encoding(b"Content-Type: text/html; charset=utf-8\n\n"), Ok(Encoding::QuotedPrintable));
        assert_eq!(encoding(b"X: 1\n\n"), Ok(Encoding::QuotedPrintable));
        assert_eq!(
            encoding(b"Content-Type: application/pdf\nContent-Transfer-Encoding: 8bit\n\n"),
            Ok(Encoding::Base64)
        );
        assert_eq!(encoding(b"Content-Type: image/png\nContent-Transfer-Encoding: BINARY\n\n"), Ok(Encoding::Base64));
        assert_eq!(
            encoding(b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"),
            Err("the message is declared base64 but has 8-bit bytes".into())
        );
        assert_eq!(
            encoding(b"Content-Type: message/partial\n\n"),
            Err("the message is message/partial, whose body may not be re-encoded (RFC 2046)".into())
        );
        assert_eq!(
            encoding(b"Content-Type: multipart/mixed\n\n"),
            Err("the message is multipart/mixed, whose body may not be re-encoded (RFC 2046)".into())
        );
        let junk = encoding(b"Content-Transfer-Encoding: x\x01\xe9yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\n\n");
        assert_eq!(
            junk,
            Err("the message is declared x??yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy... but has 8-bit bytes".into())
        );
        let header = b"Subject: \xe9\n\n";
        assert_eq!(plan(header, Walked::default()).unwrap_err(), "the message's header has 8-bit bytes");
        let elsewhere = Walked { obstacle: Some(Obstacle::EightBitMultipart(PartId::default())), ..Walked::default() };
        assert_eq!(
            plan(b"A: 1\n\n", elsewhere).unwrap_err(),
            "the preamble or epilogue of the message has 8-bit bytes"
        );
    }
}
