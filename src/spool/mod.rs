//! The message on its way out: its header block, rewritten, in memory, and its body in
//! the file mime rendered it into, read a chunk at a time, with the header block of each
//! MIME part checked and, where mime wrote it wrongly, repaired on the way ([`walker`]).
//! A message of any size thus costs one chunk of memory to send, and can be sent again
//! (to the next server) from the start.

mod walker;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::compose::{base64_lines, base64_size, BASE64_LINE_INPUT};
use crate::smtp::SizeCounter;
pub use walker::PartId;
use walker::{Splice, Walker};

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
}

/// A piece of a message.
#[derive(Debug)]
pub enum Segment {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// `len` bytes of a file, from offset `start`.
    File { file: Arc<File>, start: u64, len: u64 },
    /// The first `len` bytes of a file as base64 lines ending CRLF (an attachment).
    Base64 { file: File, len: u64 },
}

/// Why a rendered message cannot be used.
#[derive(Debug)]
pub enum Error<E> {
    Io(io::Error),
    /// The header block is larger than [`MAX_HEAD`].
    HeadTooLarge,
    /// A part's header block is larger than [`walker::MAX_PART_HEAD`].
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
    /// of the body, replacing each part's header block by what `part_header(part, block)`
    /// returns (`None`: it stays), and measures the whole for `SIZE=` (one pass over the
    /// file, which the page cache usually holds).
    pub fn new<E>(
        file: File,
        rewrite: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
        mut part_header: impl FnMut(&PartId, &[u8]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Spool, Error<E>> {
        let file_len = file.metadata().map_err(Error::Io)?.len();
        let (raw_head, body_start) = read_head(&file, file_len)?;
        let head = rewrite(&raw_head).map_err(Error::Header)?;
        let mut walker = Walker::new(&head);
        let mut counter = SizeCounter::default();
        counter.add(&head);
        let mut eight_bit = !head.is_ascii();
        let body_len = file_len.saturating_sub(body_start);
        for_each_file_chunk(&file, body_start, body_len, |chunk| {
            counter.add(chunk);
            eight_bit |= !chunk.is_ascii();
            walker.feed(chunk, &mut part_header)
        })
        .map_err(|e| match e {
            ChunkError::Read(e) => Error::Io(e),
            ChunkError::Consumer(e) => walk_error(e),
        })?;
        let walked = walker.finish(&mut part_header).map_err(walk_error)?;
        if let Some(part) = walked.nul {
            return Err(Error::Nul(part));
        }
        let change: i64 = walked.splices.iter().map(|s| s.size_change).sum();
        let size = counter.total().saturating_add_signed(change);
        Ok(Spool { segments: splice(head, Arc::new(file), body_start, body_len, walked.splices), size, eight_bit })
    }

    /// A message made of `segments` (lines ending CRLF, LF or CR), measured for `SIZE=`;
    /// files are sized from their lengths, not read.
    pub fn from_segments(segments: Vec<Segment>) -> Result<Spool, io::Error> {
        let mut counter = SizeCounter::default();
        let mut eight_bit = false;
        for segment in &segments {
            match segment {
                Segment::Bytes(bytes) => {
                    counter.add(bytes);
                    eight_bit |= !bytes.is_ascii();
                }
                Segment::File { file, start, len } => for_each_file_chunk(file, *start, *len, |chunk| {
                    counter.add(chunk);
                    eight_bit |= !chunk.is_ascii();
                    Ok::<(), io::Error>(())
                })
                .map_err(|e| match e {
                    ChunkError::Read(e) | ChunkError::Consumer(e) => e,
                })?,
                Segment::Base64 { len, .. } => counter.add_crlf_lines(base64_size(*len)),
            }
        }
        Ok(Spool { segments, size: counter.total(), eight_bit })
    }

    /// The size DATA transmits before dot-stuffing: every line end counted as CRLF.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the message has bytes outside ASCII.
    pub fn eight_bit(&self) -> bool {
        self.eight_bit
    }

    /// Calls `consume` with the message's bytes from the start, in order, a chunk at a
    /// time; stops at the first error.
    pub fn for_each_chunk<E>(&self, mut consume: impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), ChunkError<E>> {
        for segment in &self.segments {
            match segment {
                Segment::Bytes(bytes) => {
                    for chunk in bytes.chunks(CHUNK) {
                        consume(chunk).map_err(ChunkError::Consumer)?;
                    }
                }
                Segment::File { file, start, len } => for_each_file_chunk(file, *start, *len, &mut consume)?,
                Segment::Base64 { file, len } => for_each_base64_chunk(file, *len, &mut consume)?,
            }
        }
        Ok(())
    }
}

/// The segments of a rendered message: its (rewritten) head, then its body in `file`
/// from `body_start`, `body_len` bytes, with `splices` (stream offsets, head first) in
/// place of the bytes they replace.
fn splice(head: Vec<u8>, file: Arc<File>, body_start: u64, body_len: u64, splices: Vec<Splice>) -> Vec<Segment> {
    let head_len = head.len() as u64;
    let mut segments = vec![Segment::Bytes(head)];
    // Offsets within the body.
    let mut done: u64 = 0;
    for splice in splices {
        let upto = splice.start.saturating_sub(head_len);
        if upto > done {
            segments.push(Segment::File { file: Arc::clone(&file), start: body_start + done, len: upto - done });
        }
        segments.push(Segment::Bytes(splice.bytes));
        done = splice.end.saturating_sub(head_len);
    }
    if body_len > done {
        segments.push(Segment::File { file, start: body_start + done, len: body_len - done });
    }
    segments
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

/// Reads the header block: everything up to and including the first empty line (a
/// line that is empty once its LF, CRLF or CR LF ending is removed), or the whole file
/// when there is none. Returns it and where the body starts.
fn read_head<E>(file: &File, file_len: u64) -> Result<(Vec<u8>, u64), Error<E>> {
    let mut head = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset: u64 = 0;
    while offset < file_len {
        if offset >= MAX_HEAD {
            return Err(Error::HeadTooLarge);
        }
        let n = file.read_at(&mut buf, offset).map_err(Error::Io)?;
        if n == 0 {
            break;
        }
        // Look again from a little before the new bytes: the blank line may straddle.
        let from = head.len().saturating_sub(2);
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        offset += n as u64;
        if let Some(end) = header_end(&head, from) {
            head.truncate(end);
            let start = end as u64;
            return Ok((head, start));
        }
    }
    let start = head.len() as u64;
    Ok((head, start))
}

/// The index just after the first empty line of `bytes` at or after `from` (which must
/// be a line start or within two bytes before the region not yet searched).
fn header_end(bytes: &[u8], from: usize) -> Option<usize> {
    // An empty line is an LF that starts a line (or ends "\r" alone): the first line,
    // or the one after an LF.
    if from == 0 {
        match bytes {
            [b'\n', ..] => return Some(1),
            [b'\r', b'\n', ..] => return Some(2),
            _ => {}
        }
    }
    let mut i = from;
    while let Some(pos) = bytes.get(i..).and_then(|rest| rest.iter().position(|&b| b == b'\n')) {
        let lf = i + pos;
        match bytes.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    fn spool_of(bytes: &[u8]) -> Spool {
        let mut file = tempfile();
        file.write_all(bytes).unwrap();
        Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), |_, _| Ok(None)).unwrap()
    }

    /// An unlinked temporary file.
    fn tempfile() -> File {
        let path =
            std::env::temp_dir().join(format!("spool-test-{}-{:?}", std::process::id(), std::thread::current().id()));
        let file = File::options().read(true).write(true).create_new(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    /// The whole message, as sent (for tests here and of the builders of spools).
    pub(crate) fn collect(spool: &Spool) -> Vec<u8> {
        let mut out = Vec::new();
        spool
            .for_each_chunk(|c| {
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
                |_, _| Ok(None),
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
        let spool = Spool::new(file, |_| Ok::<_, ()>(b"New: 2\r\n\r\n".to_vec()), |_, _| Ok(None)).unwrap();
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
