//! The message on its way out: its header block, rewritten, in memory, and its body in
//! the file mime rendered it into, read a chunk at a time, with the header block of each
//! MIME part checked and, where mime wrote it wrongly, repaired on the way (`walker`).
//! A message of any size thus costs one chunk of memory to send, and can be sent again
//! (to the next server) from the start. A message with 8-bit bytes also has a form
//! converted to 7 bits, for a server without 8BITMIME (`downgrade`), made of the same
//! file ranges.

mod downgrade;
mod low_bytes;
pub mod parameters;
mod walker;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::compose::{base64_lines, base64_size, BASE64_LINE_INPUT};
use crate::smtp::{Form, SevenBit, SizeCounter};
use downgrade::{Encoder, Encoding};
pub use walker::PartId;
use walker::{Splice, Walked, Walker};

/// How many body bytes are read at a time: large enough for few system calls, small
/// enough that the message never costs much memory.
pub const CHUNK: usize = 256 * 1024;

/// The most header bytes looked through for the blank line that ends the header block.
const MAX_HEAD: u64 = 16 * 1024 * 1024;

/// A message ready to send: pieces sent one after the other.
#[derive(Debug)]
pub struct Spool {
    segments: Vec<Segment>,
    /// The size DATA will transmit, before dot-stuffing (for `SIZE=`).
    size: u64,
    /// Whether any byte is above 127 (for `BODY=8BITMIME`).
    eight_bit: bool,
    seven_bit: SevenBitForm,
}

/// The message for a server without 8BITMIME.
#[derive(Debug)]
enum SevenBitForm {
    /// The message is ASCII: it goes as it is.
    Same,
    /// Its segments converted, their size, and what was converted (for the trace).
    Converted { segments: Vec<Segment>, size: u64, parts: String },
    /// It cannot be converted: why.
    Impossible(String),
}

/// A piece of a message built by `smtp::mail` ([`Spool::from_composed`]).
#[derive(Debug)]
pub enum Composed {
    Bytes(Vec<u8>),
    /// The first `len` bytes of a file, sent as base64 lines ending CRLF (an attachment).
    Base64 {
        file: File,
        len: u64,
    },
}

/// A piece of a message.
#[derive(Debug)]
enum Segment {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// `len` bytes of a file, from offset `start`.
    File { file: Arc<File>, start: u64, len: u64 },
    /// The first `len` bytes of a file as base64 lines ending CRLF (an attachment).
    Base64 { file: File, len: u64 },
    /// `len` bytes of a file from offset `start`, a part's content (read as its
    /// characters' bytes with `low_bytes`, see `low_bytes`), re-encoded, its last line
    /// ended (see `Encoder::finish`).
    Encoded { file: Arc<File>, start: u64, len: u64, low_bytes: bool, encoding: Encoding, ends_message: bool },
    /// `len` bytes of a file from offset `start`, UTF-8 whose characters are all below
    /// 256, as those characters' bytes (see `low_bytes`).
    LowBytes { file: Arc<File>, start: u64, len: u64 },
}

/// A segment in place of the stream's bytes from `start` to `end` (stream offsets: the
/// head, then the body).
#[derive(Debug)]
struct Piece {
    start: u64,
    end: u64,
    segment: Segment,
}

/// A file holding `bytes`, already unlinked (nothing is left behind, whatever happens
/// to the send), for a message given in memory.
pub fn unlinked_file(bytes: &[u8]) -> io::Result<File> {
    use std::io::{Seek, Write};
    let name = crate::random::hex(12).map_err(io::Error::other)?;
    let path = std::env::temp_dir().join(format!("tclsmtp-{name}"));
    let mut file = File::options().read(true).write(true).create_new(true).open(&path)?;
    std::fs::remove_file(&path)?;
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file)
}

/// Why a rendered message cannot be used.
#[derive(Debug)]
pub enum Error<E> {
    Io(io::Error),
    /// The header block is larger than `MAX_HEAD`.
    HeadTooLarge,
    /// A part's header block is larger than `walker::MAX_PART_HEAD`.
    PartHeadTooLarge(PartId),
    /// The header rewrite refused the message's header block, or the part check a
    /// part's.
    Header(E),
    /// A NUL byte in the body of this part: SMTP cannot carry it (RFC 5321 §2.3.8), and
    /// some servers end the line or the message there.
    Nul(PartId),
}

impl Spool {
    /// Splits the rendered message in `file` (any line endings) at the end of its header
    /// block, replaces the header block by `rewrite(header block)`, walks the MIME parts
    /// of the body, replacing each part's header block by what `part_header(part, block,
    /// forwarded)` returns (`None`: it stays; `forwarded`: the block is inside a forwarded
    /// message, see `Walker::feed`), and measures the whole for `SIZE=` (one pass over the
    /// file, which the page cache usually holds). A message with 8-bit bytes is also
    /// converted to 7 bits, if it can be, its 8-bit parts read once more to measure it.
    pub fn new<E>(
        file: File,
        rewrite: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
        part_header: impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Spool, Error<E>> {
        Spool::build(file, rewrite, part_header, false)
    }

    /// [`Spool::new`] for a message mime rendered from a token into a channel in the
    /// system encoding (UTF-8): a leaf part whose characters are all below 256 goes as
    /// their bytes, as tcllib sends it, unless it is text declared UTF-8 that was given
    /// as characters (see `low_bytes`).
    pub fn from_mime<E>(
        file: File,
        rewrite: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
        part_header: impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Spool, Error<E>> {
        Spool::build(file, rewrite, part_header, true)
    }

    fn build<E>(
        file: File,
        rewrite: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
        mut part_header: impl FnMut(&PartId, &[u8], bool) -> Result<Option<Vec<u8>>, E>,
        from_mime: bool,
    ) -> Result<Spool, Error<E>> {
        let file_len = file.metadata().map_err(Error::Io)?.len();
        let (raw_head, body_start) = read_head(&file, file_len)?;
        let head = rewrite(&raw_head).map_err(Error::Header)?;
        let mut walker = Walker::new(&head);
        let mut counter = SizeCounter::default();
        counter.add(&head);
        let body_len = file_len.saturating_sub(body_start);
        for_each_file_chunk(&file, body_start, body_len, |chunk| {
            counter.add(chunk);
            walker.feed(chunk, &mut part_header)
        })
        .map_err(|e| match e {
            ChunkError::Read(e) => Error::Io(e),
            ChunkError::Consumer(e) => walk_error(e),
        })?;
        let mut walked = walker.finish(&mut part_header).map_err(walk_error)?;
        if let Some(part) = walked.nul.take() {
            return Err(Error::Nul(part));
        }
        // As transmitted: a part header whose 8-bit values were encoded is ASCII.
        let eight_bit = !head.is_ascii() || walked.eight_bit;
        let splices = std::mem::take(&mut walked.splices);
        let file = Arc::new(file);
        let body = Body { file: &file, start: body_start, len: body_len, at: head.len() as u64 };
        let as_bytes = if from_mime { read_as_bytes(&head, body, &mut walked).map_err(Error::Io)? } else { Vec::new() };
        let change: i64 =
            splices.iter().map(|s| s.size_change).sum::<i64>() + as_bytes.iter().map(|p| p.size_change).sum::<i64>();
        let size = counter.total().saturating_add_signed(change);
        let seven_bit = if eight_bit {
            seven_bit_form(&head, body, (walked, &splices), size).map_err(Error::Io)?
        } else {
            SevenBitForm::Same
        };
        let mut pieces: Vec<Piece> = splices.into_iter().map(Piece::from).collect();
        pieces.extend(as_bytes.into_iter().map(|p| p.piece));
        pieces.sort_by_key(|p| p.start);
        Ok(Spool { segments: assemble(head, body, pieces), size, eight_bit, seven_bit })
    }

    /// A message built here (`smtp::mail`'s: lines ending CRLF, LF or CR), measured for
    /// `SIZE=` from its pieces' lengths, nothing read. Its bodies are 7-bit, so 8-bit
    /// bytes are in its header, and it cannot be converted.
    pub fn from_composed(pieces: Vec<Composed>) -> Spool {
        let mut counter = SizeCounter::default();
        let mut eight_bit = false;
        let segments = pieces
            .into_iter()
            .map(|piece| match piece {
                Composed::Bytes(bytes) => {
                    counter.add(&bytes);
                    eight_bit |= !bytes.is_ascii();
                    Segment::Bytes(bytes)
                }
                Composed::Base64 { file, len } => {
                    counter.add_crlf_lines(base64_size(len));
                    Segment::Base64 { file, len }
                }
            })
            .collect();
        let seven_bit = if eight_bit {
            SevenBitForm::Impossible("the message's header has 8-bit bytes".into())
        } else {
            SevenBitForm::Same
        };
        Spool { segments, size: counter.total(), eight_bit, seven_bit }
    }

    /// The size DATA transmits before dot-stuffing: every line end counted as CRLF.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The size of the message in `form`.
    pub fn size_in(&self, form: Form) -> u64 {
        match (form, &self.seven_bit) {
            (Form::SevenBit, SevenBitForm::Converted { size, .. }) => *size,
            _ => self.size,
        }
    }

    /// The message converted to 7 bits (for an ASCII message, itself), or why it cannot
    /// be.
    pub fn seven_bit(&self) -> Result<SevenBit, String> {
        match &self.seven_bit {
            SevenBitForm::Same => Ok(SevenBit { size: self.size, parts: String::new() }),
            SevenBitForm::Converted { size, parts, .. } => Ok(SevenBit { size: *size, parts: parts.clone() }),
            SevenBitForm::Impossible(why) => Err(why.clone()),
        }
    }

    /// Whether the message has bytes outside ASCII.
    pub fn eight_bit(&self) -> bool {
        self.eight_bit
    }

    /// Calls `consume` with the bytes of the message in `form` from the start, in order,
    /// a chunk at a time; stops at the first error.
    pub fn for_each_chunk<E>(
        &self,
        form: Form,
        mut consume: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), ChunkError<E>> {
        let segments = match (form, &self.seven_bit) {
            (Form::SevenBit, SevenBitForm::Converted { segments, .. }) => segments,
            _ => &self.segments,
        };
        for segment in segments {
            match segment {
                Segment::Bytes(bytes) => {
                    for chunk in bytes.chunks(CHUNK) {
                        consume(chunk).map_err(ChunkError::Consumer)?;
                    }
                }
                Segment::File { file, start, len } => for_each_file_chunk(file, *start, *len, &mut consume)?,
                Segment::Base64 { file, len } => for_each_base64_chunk(file, *len, &mut consume)?,
                Segment::LowBytes { file, start, len } => {
                    for_each_content_chunk(file, (*start, *len, true), &mut consume)?
                }
                Segment::Encoded { file, start, len, low_bytes, encoding, ends_message } => {
                    let mut encoder = Encoder::new(*encoding, *ends_message);
                    let mut out = Vec::with_capacity(CHUNK * 2);
                    for_each_content_chunk(file, (*start, *len, *low_bytes), |chunk| {
                        out.clear();
                        encoder.encode(chunk, &mut out);
                        consume(&out)
                    })?;
                    out.clear();
                    encoder.finish(&mut out);
                    consume(&out).map_err(ChunkError::Consumer)?;
                }
            }
        }
        Ok(())
    }
}

impl From<Splice> for Piece {
    fn from(splice: Splice) -> Piece {
        Piece { start: splice.start, end: splice.end, segment: Segment::Bytes(splice.bytes) }
    }
}

/// Where a rendered message's body is: `len` bytes of `file` from `start`, at stream
/// offset `at` (after the head as transmitted).
#[derive(Debug, Clone, Copy)]
struct Body<'a> {
    file: &'a Arc<File>,
    start: u64,
    len: u64,
    at: u64,
}

/// The segments of a rendered message: `head`, then its `body`, with `pieces` (stream
/// offsets, in order, none in the head) in place of the bytes they replace.
fn assemble(head: Vec<u8>, body: Body<'_>, pieces: Vec<Piece>) -> Vec<Segment> {
    let file_range =
        |from: u64, to: u64| Segment::File { file: Arc::clone(body.file), start: body.start + from, len: to - from };
    let mut segments = vec![Segment::Bytes(head)];
    // Offsets within the body.
    let mut done: u64 = 0;
    for piece in pieces {
        let upto = piece.start.saturating_sub(body.at);
        if upto > done {
            segments.push(file_range(done, upto));
        }
        segments.push(piece.segment);
        done = piece.end.saturating_sub(body.at);
    }
    if body.len > done {
        segments.push(file_range(done, body.len));
    }
    segments
}

/// The message whose (rewritten) head is `head` and whose body is `body`, whose walk
/// found `walked` and the repairs `splices`, converted to 7 bits; `size` is its size as
/// it is.
fn seven_bit_form(
    head: &[u8],
    body: Body<'_>,
    (walked, splices): (Walked, &[Splice]),
    size: u64,
) -> io::Result<SevenBitForm> {
    let mut plan = match downgrade::plan(head, walked) {
        Ok(plan) => plan,
        Err(why) => return Ok(SevenBitForm::Impossible(why)),
    };
    downgrade::measure(&mut plan, body.file, body.at, body.start)?;
    let size = size.saturating_add_signed(plan.size_change());
    let parts = plan.summary();
    let mut converted_head = head.to_vec();
    let mut pieces = Vec::new();
    let mut rewrite = |header: downgrade::Rewrite, pieces: &mut Vec<Piece>| {
        if header.is_head {
            converted_head = header.bytes;
        } else {
            pieces.push(Piece { start: header.range.0, end: header.range.1, segment: Segment::Bytes(header.bytes) });
        }
    };
    for c in plan.conversions {
        rewrite(c.header, &mut pieces);
        let (start, end) = c.content;
        let content = Segment::Encoded {
            file: Arc::clone(body.file),
            start: body.start + start.saturating_sub(body.at),
            len: end.saturating_sub(start),
            low_bytes: c.low_bytes,
            encoding: c.encoding,
            ends_message: c.ends_message,
        };
        pieces.push(Piece { start, end: c.body_end, segment: content });
    }
    for header in plan.relabels {
        rewrite(header, &mut pieces);
    }
    // The repairs of the header blocks not rewritten.
    for splice in splices {
        if !pieces.iter().any(|p| p.start == splice.start) {
            pieces.push(Piece::from(splice.clone()));
        }
    }
    pieces.sort_by_key(|p| p.start);
    Ok(SevenBitForm::Converted { segments: assemble(converted_head, body, pieces), size, parts })
}

/// Calls `consume` with the first `len` bytes of `file` as base64 lines, a chunk at a
/// time (whole lines each).
fn for_each_base64_chunk<E>(
    file: &File,
    len: u64,
    mut consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), ChunkError<E>> {
    // Input read per chunk: whole lines' worth, about CHUNK bytes.
    const INPUT: usize = CHUNK / BASE64_LINE_INPUT * BASE64_LINE_INPUT;
    let mut out = Vec::with_capacity(CHUNK * 4 / 3 + CHUNK / 32);
    for_each_file_chunk_of(file, 0, len, INPUT, |input| {
        out.clear();
        base64_lines(input, &mut out);
        consume(&out)
    })
}

/// A part's content to go as its characters' bytes: the piece that says so, and what it
/// changes in the size.
#[derive(Debug)]
struct AsBytes {
    piece: Piece,
    size_change: i64,
}

/// Decides which of the leaf parts with 8-bit bytes that the walk found in a message
/// mime rendered (whose head is `head`, whose body is `body`) go as their characters'
/// bytes (see `low_bytes`), marks them, and returns the pieces that make them so.
fn read_as_bytes(head: &[u8], body: Body<'_>, walked: &mut Walked) -> io::Result<Vec<AsBytes>> {
    let mut out = Vec::new();
    for leaf in &mut walked.eight_bit_leaves {
        let block = leaf.header.bytes.as_deref().unwrap_or(head);
        let (start, end) = leaf.content;
        let (offset, len) = (body.start + start.saturating_sub(body.at), end.saturating_sub(start));
        let Some(size) = low_bytes::size_as_bytes(body.file, offset, len, block)? else { continue };
        let size_change = size as i64 - len as i64;
        leaf.low_bytes = true;
        leaf.body_wire_size = leaf.body_wire_size.saturating_add_signed(size_change);
        let segment = Segment::LowBytes { file: Arc::clone(body.file), start: offset, len };
        out.push(AsBytes { piece: Piece { start, end, segment }, size_change });
    }
    Ok(out)
}

/// Calls `consume` with `len` bytes of `file` from offset `start` (with `low_bytes`, as
/// the bytes of the UTF-8 characters they hold, all below 256), a chunk at a time.
fn for_each_content_chunk<E>(
    file: &File,
    (start, len, low_bytes): (u64, u64, bool),
    mut consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), ChunkError<E>> {
    if !low_bytes {
        return for_each_file_chunk(file, start, len, consume);
    }
    let mut decoder = low_bytes::LowBytes::default();
    let mut bytes = Vec::with_capacity(CHUNK);
    for_each_file_chunk(file, start, len, |chunk| {
        bytes.clear();
        if !decoder.decode(chunk, &mut bytes) {
            // It was decoded whole before; only a file changed since could fail.
            return Err(ChunkError::Read(io::Error::other("the rendered message changed while it was sent")));
        }
        consume(&bytes).map_err(ChunkError::Consumer)
    })
    .map_err(|e| match e {
        ChunkError::Read(e) | ChunkError::Consumer(ChunkError::Read(e)) => ChunkError::Read(e),
        ChunkError::Consumer(ChunkError::Consumer(e)) => ChunkError::Consumer(e),
    })
}

/// Calls `consume` with `len` bytes of `file` from offset `start`, a chunk at a time.
fn for_each_file_chunk<E>(
    file: &File,
    start: u64,
    len: u64,
    consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), ChunkError<E>> {
    for_each_file_chunk_of(file, start, len, CHUNK, consume)
}

/// [`for_each_file_chunk`] with chunks of `chunk` bytes (the last may be shorter).
fn for_each_file_chunk_of<E>(
    file: &File,
    start: u64,
    len: u64,
    chunk: usize,
    mut consume: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), ChunkError<E>> {
    let mut buf = vec![0u8; usize::try_from(len).map_or(chunk, |len| len.min(chunk))];
    let mut done: u64 = 0;
    while done < len {
        let want = usize::try_from(len - done).map_or(chunk, |left| left.min(chunk));
        let piece = buf.get_mut(..want).unwrap_or_default();
        file.read_exact_at(piece, start + done).map_err(ChunkError::Read)?;
        consume(piece).map_err(ChunkError::Consumer)?;
        done += want as u64;
    }
    Ok(())
}

fn walk_error<E>(e: walker::Error<E>) -> Error<E> {
    match e {
        walker::Error::HeadTooLarge(part) => Error::PartHeadTooLarge(part),
        walker::Error::Header(e) => Error::Header(e),
    }
}

/// Why [`Spool::for_each_chunk`] stopped.
#[derive(Debug)]
pub enum ChunkError<E> {
    /// The message file could not be read.
    Read(io::Error),
    /// The consumer failed.
    Consumer(E),
}

/// Reads the header block: everything up to and including the first empty line (lines
/// ending as the DATA encoder ends them: CRLF, LF or a bare CR), or the whole file when
/// there is none. Returns it and where the body starts.
fn read_head<E>(file: &File, file_len: u64) -> Result<(Vec<u8>, u64), Error<E>> {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset: u64 = 0;
    let mut scan = HeadScan { pos: 0, at_line_start: true };
    while offset < file_len {
        if offset >= MAX_HEAD {
            return Err(Error::HeadTooLarge);
        }
        let n = file.read_at(&mut buf, offset).map_err(Error::Io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        offset += n as u64;
        if let Some(end) = scan.scan(&head, offset >= file_len) {
            head.truncate(end);
            let start = end as u64;
            return Ok((head, start));
        }
    }
    let start = head.len() as u64;
    Ok((head, start))
}

/// Where the first empty line of a header block read a piece at a time ends.
#[derive(Debug)]
struct HeadScan {
    /// How far the bytes were scanned.
    pos: usize,
    /// `pos` starts a line.
    at_line_start: bool,
}

impl HeadScan {
    /// Scans `bytes` (the header block so far: more may follow unless `complete`) from
    /// where the last call stopped; returns the index just after the first empty line.
    fn scan(&mut self, bytes: &[u8], complete: bool) -> Option<usize> {
        while let Some(rest) = bytes.get(self.pos..).filter(|rest| !rest.is_empty()) {
            let end_len = match rest {
                [b'\r', b'\n', ..] => 2,
                // Whether an LF follows is for the next read to say.
                [b'\r'] if !complete => return None,
                [b'\r' | b'\n', ..] => 1,
                _ => {
                    let run = rest.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(rest.len());
                    self.pos += run;
                    self.at_line_start = false;
                    continue;
                }
            };
            self.pos += end_len;
            if self.at_line_start {
                return Some(self.pos);
            }
            self.at_line_start = true;
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use std::io::Write;

    fn spool_of(bytes: &[u8]) -> Spool {
        let mut file = tempfile();
        file.write_all(bytes).unwrap();
        Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), |_, _, _| Ok(None)).unwrap()
    }

    fn tempfile() -> File {
        unlinked_file(b"").unwrap()
    }

    /// The whole message, as sent (for tests here and of the builders of spools).
    pub(crate) fn collect(spool: &Spool) -> Vec<u8> {
        collect_in(spool, Form::AsIs)
    }

    /// The whole message in `form`.
    fn collect_in(spool: &Spool, form: Form) -> Vec<u8> {
        let mut out = Vec::new();
        spool
            .for_each_chunk(form, |c| {
                out.extend_from_slice(c);
                Ok::<(), ()>(())
            })
            .unwrap();
        out
    }

    #[test]
    fn splits_at_the_first_blank_line_with_any_line_ending() {
        for (input, head) in [
            (&b"A: 1\nB: 2\n\nbody\n\nmore"[..], &b"A: 1\nB: 2\n\n"[..]),
            (b"A: 1\r\n\r\nbody", b"A: 1\r\n\r\n"),
            (b"\nbody", b"\n"),
            (b"\r\nbody", b"\r\n"),
            (b"A: 1\nno blank line", b"A: 1\nno blank line"),
            (b"A: 1\r\rbody\r", b"A: 1\r\r"),
            (b"A: 1\r\n\rbody", b"A: 1\r\n\r"),
            (b"A: 1\n\r\nbody", b"A: 1\n\r\n"),
            (b"A: 1\r", b"A: 1\r"),
            (b"A: 1\r\r", b"A: 1\r\r"),
            (b"\rbody", b"\r"),
        ] {
            let mut seen = Vec::new();
            let mut file = tempfile();
            file.write_all(input).unwrap();
            let spool = Spool::new(
                file,
                |h| {
                    seen = h.to_vec();
                    Ok::<_, ()>(h.to_vec())
                },
                |_, _, _| Ok(None),
            )
            .unwrap();
            assert_eq!(seen, head, "{input:?}");
            assert_eq!(collect(&spool), input);
        }
    }

    #[test]
    fn the_rewritten_head_replaces_the_original() {
        let mut file = tempfile();
        file.write_all(b"Old: 1\n\nbody\n").unwrap();
        let spool = Spool::new(file, |_| Ok::<_, ()>(b"New: 2\r\n\r\n".to_vec()), |_, _, _| Ok(None)).unwrap();
        assert_eq!(collect(&spool), b"New: 2\r\n\r\nbody\n");
        assert_eq!(spool.size(), 16);
    }

    #[test]
    fn a_blank_line_across_read_blocks_is_found() {
        // The head is 64 KiB minus one byte of field, then the blank line straddles.
        let mut input = b"X: ".to_vec();
        input.resize(64 * 1024 - 1, b'a');
        input.extend_from_slice(b"\n\nbody");
        let spool = spool_of(&input);
        assert!(matches!(&spool.segments[0], Segment::Bytes(head) if head.len() == 64 * 1024 + 1));
        assert_eq!(collect(&spool), input);
    }

    fn spool_with_repair(bytes: &[u8]) -> Spool {
        let mut file = tempfile();
        file.write_all(bytes).unwrap();
        // Part headers with `X-Repair` get a field added, as the repairs of mime's do.
        let repair = |_: &PartId, block: &[u8], _| {
            Ok::<_, ()>(block.starts_with(b"X-Repair").then(|| [b"X-Repaired: 1\r\n", block].concat()))
        };
        Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), repair).unwrap()
    }

    const MIXED: &str = "Subject: s\nContent-Type: multipart/mixed; boundary=b\n\npreamble\n\
        --b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n\
        caf\u{e9} = 1 \nFrom me\n.dot\n\n\
        --b\nX-Repair: yes\nContent-Type: application/octet-stream\n\n\u{e9}\u{e8}\n\u{ea}\n\
        --b\nX-Repair: ascii\n\nplain\n\
        --b--\nepilogue\n";

    #[test]
    fn an_8bit_message_has_a_7bit_form_of_the_size_it_declares() {
        for ending in ["\n", "\r\n"] {
            for tail in ["", "x", "x\n"] {
                let message = format!("{MIXED}{tail}").replace('\n', ending);
                let spool = spool_with_repair(message.as_bytes());
                assert!(spool.eight_bit());
                let seven_bit = spool.seven_bit().unwrap();
                assert_eq!(seven_bit.parts, "part 1 as quoted-printable, part 2 as base64");
                let converted = collect_in(&spool, Form::SevenBit);
                assert!(converted.is_ascii(), "{}", String::from_utf8_lossy(&converted));
                assert_eq!(seven_bit.size, crate::smtp::message_size(&converted), "ending {ending:?}, tail {tail:?}");
                assert_eq!(spool.size_in(Form::SevenBit), seven_bit.size);
                let text = String::from_utf8(converted).unwrap().replace("\r\n", "\n");
                let expected = "Subject: s\nContent-Type: multipart/mixed; boundary=b\n\npreamble\n\
                    --b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n\
                    caf=C3=A9 =3D 1=20\n=46rom me\n.dot\n\n\
                    --b\nX-Repaired: 1\nX-Repair: yes\nContent-Type: application/octet-stream\n\
                    Content-Transfer-Encoding: base64\n\nw6nDqA0Kw6o=\n\
                    --b\nX-Repaired: 1\nX-Repair: ascii\n\nplain\n\
                    --b--\nepilogue\n";
                assert_eq!(text, format!("{expected}{tail}"), "ending {ending:?}");
                // The form as it is keeps the 8-bit parts and the repairs.
                let as_is = String::from_utf8(collect(&spool)).unwrap();
                assert!(as_is.contains("X-Repaired: 1\r\nX-Repair: yes") && as_is.contains("caf\u{e9}"), "{as_is}");
            }
        }
    }

    #[test]
    fn a_single_part_8bit_message_is_converted_whole() {
        for (message, body) in [
            ("A: 1\n\nl\u{ed}ne\n", "l=C3=ADne\r\n"),
            ("A: 1\n\nno final line end \u{e9}", "no final line end =C3=A9\r\n"),
            ("A: 1\n\n\u{e9}\n\n", "=C3=A9\r\n\r\n"),
        ] {
            let spool = spool_of(message.as_bytes());
            let seven_bit = spool.seven_bit().unwrap();
            assert_eq!(seven_bit.parts, "the message as quoted-printable");
            let converted = collect_in(&spool, Form::SevenBit);
            assert_eq!(
                String::from_utf8(converted.clone()).unwrap(),
                format!("A: 1\nContent-Transfer-Encoding: quoted-printable\r\n\n{body}")
            );
            assert_eq!(seven_bit.size, crate::smtp::message_size(&converted), "{message:?}");
        }
    }

    #[test]
    fn a_base64_part_that_ends_the_message_keeps_its_last_line_end() {
        // What a server with 8BITMIME gets is the content and a CRLF (DATA ends an
        // unfinished last line): the base64 must decode to the same.
        for message in [&b"Content-Type: image/png\n\n\xe9\n"[..], b"Content-Type: image/png\n\n\xe9"] {
            let spool = spool_of(message);
            let converted = collect_in(&spool, Form::SevenBit);
            assert_eq!(spool.seven_bit().unwrap().size, crate::smtp::message_size(&converted));
            let text = String::from_utf8(converted).unwrap();
            assert!(text.ends_with("base64\r\n\n6Q0K\r\n"), "{text:?}");
        }
    }

    #[test]
    fn a_large_8bit_part_streams_in_chunks_and_decodes_whole() {
        let content: Vec<u8> =
            (0..3 * CHUNK).map(|i| if i % 100 == 99 { b'\n' } else { 128 + (i % 100) as u8 }).collect();
        let mut message = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: image/x\n\n".to_vec();
        message.extend_from_slice(&content);
        message.extend_from_slice(b"\n--b--\n");
        let spool = spool_of(&message);
        let converted = collect_in(&spool, Form::SevenBit);
        assert_eq!(spool.seven_bit().unwrap().size, crate::smtp::message_size(&converted));
        let text = String::from_utf8(converted).unwrap();
        let start = text.find("base64\r\n\n").unwrap() + 9;
        let end = text.find("--b--").unwrap();
        let encoded = &text[start..end];
        assert!(encoded.split("\r\n").all(|line| line.len() <= 76));
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.replace("\r\n", "")).unwrap();
        let expected: Vec<u8> =
            content.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_forwarded_message_is_converted_inside_and_8bit_labels_become_7bit() {
        let message = "Content-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\n\
            Subject: fwd\nContent-Type: multipart/mixed; boundary=in\nContent-Transfer-Encoding: 8bit\n\n\
            --in\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\nGr\u{fc}\u{df}e\n\
            --in\nContent-Type: text/plain\nContent-Transfer-Encoding: 8bit\n\nascii\n--in--\n";
        let spool = spool_of(message.as_bytes());
        let seven_bit = spool.seven_bit().unwrap();
        assert_eq!(seven_bit.parts, "part 1.1 as quoted-printable");
        let converted = collect_in(&spool, Form::SevenBit);
        assert_eq!(seven_bit.size, crate::smtp::message_size(&converted));
        let text = String::from_utf8(converted).unwrap().replace("\r\n", "\n");
        assert_eq!(
            text,
            "Content-Type: message/rfc822\nContent-Transfer-Encoding: 7bit\n\n\
            Subject: fwd\nContent-Type: multipart/mixed; boundary=in\nContent-Transfer-Encoding: 7bit\n\n\
            --in\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nGr=C3=BC=C3=9Fe\n\
            --in\nContent-Type: text/plain\nContent-Transfer-Encoding: 7bit\n\nascii\n--in--\n"
        );
    }

    #[test]
    fn a_part_header_made_ascii_leaves_an_ascii_message() {
        let mut file = tempfile();
        file.write_all(b"Content-Type: multipart/mixed; boundary=b\n\n--b\nX: \xe9\n\nascii\n--b--\n").unwrap();
        let encode =
            |_: &PartId, block: &[u8], _| Ok::<_, ()>((!block.is_ascii()).then(|| b"X: =?UTF-8?B?w6k=?=\n\n".to_vec()));
        let spool = Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), encode).unwrap();
        assert!(!spool.eight_bit());
        assert_eq!(spool.seven_bit().unwrap().parts, "");
    }

    #[test]
    fn a_mime_rendering_sends_parts_of_characters_below_256_as_their_bytes() {
        // As mime renders into a UTF-8 channel: an octet-stream of bytes 0x80-0xff, UTF-8
        // bytes given to mime (encoding convertto) in a UTF-8 text part, UTF-8 text given
        // as characters, and text with a character above 255.
        let twice: String = "caf\u{e9}\n".bytes().map(char::from).collect();
        let message = format!(
            "Content-Type: multipart/mixed; boundary=b\n\n\
             --b\nContent-Type: application/octet-stream\n\n\u{80}\u{ff}\n\
             --b\nContent-Type: text/plain; charset=utf-8\n\n{twice}\n\
             --b\nContent-Type: text/plain; charset=utf-8\n\nGr\u{fc}\u{df}e\n\
             --b\nContent-Type: text/plain\n\n\u{20ac}\n--b--\n"
        );
        let mut file = tempfile();
        file.write_all(message.as_bytes()).unwrap();
        let spool = Spool::from_mime(file, |head| Ok::<_, ()>(head.to_vec()), |_, _, _| Ok(None)).unwrap();
        let expected: Vec<u8> = [
            &b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\n\n\x80\xff\n"
                [..],
            b"--b\nContent-Type: text/plain; charset=utf-8\n\ncaf\xc3\xa9\n\n",
            "--b\nContent-Type: text/plain; charset=utf-8\n\nGr\u{fc}\u{df}e\n".as_bytes(),
            "--b\nContent-Type: text/plain\n\n\u{20ac}\n--b--\n".as_bytes(),
        ]
        .concat();
        assert_eq!(collect(&spool), expected);
        assert_eq!(spool.size(), crate::smtp::message_size(&expected));
        let seven_bit = spool.seven_bit().unwrap();
        let converted = collect_in(&spool, Form::SevenBit);
        assert_eq!(seven_bit.size, crate::smtp::message_size(&converted));
        let text = String::from_utf8(converted).unwrap();
        assert!(text.contains("base64\r\n\ngP8=\r\n--b"), "{text}");
        assert!(text.contains("quoted-printable\r\n\ncaf=C3=A9\r\n\r\n--b"), "{text}");
        assert!(text.contains("quoted-printable\r\n\nGr=C3=BC=C3=9Fe\r\n--b"), "{text}");
        assert!(text.contains("quoted-printable\r\n\n=E2=82=AC\r\n--b--"), "{text}");
        // Read as bytes (Spool::new), the same file goes as it is.
        let mut file = tempfile();
        file.write_all(message.as_bytes()).unwrap();
        assert_eq!(collect(&spool_from(file)), message.as_bytes());
    }

    fn spool_from(file: File) -> Spool {
        Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), |_, _, _| Ok(None)).unwrap()
    }

    #[test]
    fn what_cannot_be_converted_is_said() {
        for (message, why) in [
            (&b"Subject: \xe9\n\nbody \xe9\n"[..], "the message's header has 8-bit bytes"),
            (b"Content-Type: multipart/mixed; boundary=b\n\n\xe9\n--b\n\nx\n--b--\n", "the preamble or epilogue of the message has 8-bit bytes"),
            (b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: \xe9\n\nx\n--b--\n", "the header of the message in part 1 has 8-bit bytes"),
            (b"Content-Type: message/partial; id=x\n\n\xe9\n", "the message is message/partial, whose body may not be re-encoded (RFC 2046)"),
            (b"Content-Transfer-Encoding: quoted-printable\n\n\xe9\n", "the message is declared quoted-printable but has 8-bit bytes"),
        ] {
            assert_eq!(spool_of(message).seven_bit().unwrap_err(), why);
        }
        let ascii = spool_of(b"A: 1\n\nascii\n");
        assert_eq!(ascii.seven_bit().unwrap(), SevenBit { size: ascii.size(), parts: String::new() });
        assert_eq!(collect_in(&ascii, Form::SevenBit), collect(&ascii));
    }

    #[test]
    fn a_cr_at_the_end_of_a_read_block_waits_for_the_next() {
        for (ending, head_len) in [(&b"\r\r"[..], 64 * 1024 + 1), (b"\r\n\r\n", 64 * 1024 + 3)] {
            // The first line end's CR is the block's last byte.
            let mut input = b"X: ".to_vec();
            input.resize(64 * 1024 - 1, b'a');
            input.extend_from_slice(ending);
            input.extend_from_slice(b"body");
            let spool = spool_of(&input);
            assert!(matches!(&spool.segments[0], Segment::Bytes(head) if head.len() == head_len), "{ending:?}");
            assert_eq!(collect(&spool), input);
        }
    }

    #[test]
    fn large_bodies_come_back_whole_and_sized() {
        let mut input = b"A: 1\n\n".to_vec();
        for i in 0..100_000u32 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        input.push(0xe9);
        let spool = spool_of(&input);
        assert_eq!(collect(&spool), input);
        assert_eq!(spool.size(), crate::smtp::message_size(&input));
        assert!(spool.eight_bit());
        assert!(!spool_of(b"A: 1\n\nascii").eight_bit());
    }
}
