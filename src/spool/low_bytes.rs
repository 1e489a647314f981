//! The parts of a mime token as tcllib sends them. mime renders a token into a Tcl
//! channel in the system encoding (UTF-8), so a part sent `8bit` or `binary` reaches the
//! file as the UTF-8 of its characters; tcllib's smtp writes each character's low byte
//! instead, and mime's model is that a part's content is bytes (`encoding convertto`,
//! or a file read in binary). So a leaf part whose characters are all below 256 goes
//! as those bytes, as tcllib sends it, unless it is text declared UTF-8 whose bytes are
//! not UTF-8: then the characters were text (`-string "Grüße"`) and their UTF-8 is what
//! the declared charset asks for. A part with a character above 255 is text too (tcllib
//! would send it broken) and goes as UTF-8.

use std::fs::File;
use std::io;

use super::parameters;
use super::walker::{field_value, media_type};
use super::{for_each_file_chunk, ChunkError};

/// A UTF-8 decoder for text whose characters are all below 256: each becomes its byte.
#[derive(Debug, Default)]
pub struct LowBytes {
    /// The first byte of a two-byte sequence cut by the end of the last input.
    lead: Option<u8>,
}

impl LowBytes {
    /// Appends the bytes of the characters in `input` to `out`; false at a character
    /// above 255 (or bytes that are not UTF-8), after which `out` is not meaningful.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            match (self.lead.take(), b) {
                (Some(lead), 0x80..=0xbf) => out.push((lead & 0x1f) << 6 | (b & 0x3f)),
                (Some(_), _) => return false,
                (None, 0..=0x7f) => out.push(b),
                // U+0080..U+00FF: C2 or C3 and one continuation byte.
                (None, 0xc2 | 0xc3) => self.lead = Some(b),
                (None, _) => return false,
            }
        }
        true
    }

    /// Whether the input ended on a whole character.
    pub fn finish(self) -> bool {
        self.lead.is_none()
    }
}

/// The size of the part whose header block is `block` and whose content is `len` bytes
/// of `file` from `start`, when it goes as its characters' bytes (see the module), or
/// `None` when it goes as it is.
pub fn size_as_bytes(file: &File, start: u64, len: u64, block: &[u8]) -> io::Result<Option<u64>> {
    let utf8_text = media_type(block).is_some_and(|t| t.starts_with(b"text/")) && declares_utf8(block);
    let mut decoder = LowBytes::default();
    let mut bytes = Vec::new();
    let mut size = 0;
    // The bytes checked as UTF-8 so far, and a character they cut short.
    let mut validator = Utf8Check::default();
    let walked = for_each_file_chunk(file, start, len, |chunk| {
        bytes.clear();
        let fits = decoder.decode(chunk, &mut bytes) && (!utf8_text || validator.check(&bytes));
        size += bytes.len() as u64;
        if fits {
            Ok(())
        } else {
            Err(())
        }
    });
    match walked {
        Ok(()) if decoder.finish() && (!utf8_text || validator.finish()) => Ok(Some(size)),
        Ok(()) | Err(ChunkError::Consumer(())) => Ok(None),
        Err(ChunkError::Read(e)) => Err(e),
    }
}

/// Whether a header block's Content-Type declares `charset=utf-8`.
fn declares_utf8(block: &[u8]) -> bool {
    let Some(value) = field_value(block, "content-type") else { return false };
    let (_, parameters) = parameters::split(&value);
    parameters.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case(b"charset")
            && (value.eq_ignore_ascii_case(b"utf-8") || value.eq_ignore_ascii_case(b"utf8"))
    })
}

/// Checks bytes given a piece at a time for being UTF-8.
#[derive(Debug, Default)]
struct Utf8Check {
    /// The start of a character cut by the end of the last piece.
    carry: Vec<u8>,
}

impl Utf8Check {
    fn check(&mut self, piece: &[u8]) -> bool {
        self.carry.extend_from_slice(piece);
        match std::str::from_utf8(&self.carry) {
            Ok(_) => self.carry.clear(),
            // Only an unfinished last character may wait for the next piece.
            Err(e) if e.error_len().is_none() => {
                let done = e.valid_up_to();
                self.carry.drain(..done);
            }
            Err(_) => return false,
        }
        true
    }

    fn finish(self) -> bool {
        self.carry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::unlinked_file;

    fn low_bytes(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut decoder = LowBytes::default();
        let whole = text.as_bytes().chunks(1).all(|c| decoder.decode(c, &mut out));
        (whole && decoder.finish()).then_some(out)
    }

    #[test]
    fn characters_below_256_become_their_bytes() {
        assert_eq!(low_bytes("Gr\u{fc}\u{df}e\r\n\u{80}\u{ff}"), Some(b"Gr\xfc\xdfe\r\n\x80\xff".to_vec()));
        assert_eq!(low_bytes("\u{100}"), None);
        assert_eq!(low_bytes("\u{20ac}"), None);
    }

    fn size_of(content: &str, block: &str) -> Option<u64> {
        let file = unlinked_file(content.as_bytes()).unwrap();
        size_as_bytes(&file, 0, content.len() as u64, block.as_bytes()).unwrap()
    }

    #[test]
    fn which_parts_go_as_bytes() {
        let utf8 = "Content-Type: text/plain; charset=\"UTF-8\"\n\n";
        // UTF-8 bytes given to mime (encoding convertto), rendered as UTF-8 again.
        let twice: String = "caf\u{e9}".bytes().map(char::from).collect();
        assert_eq!(size_of(&twice, utf8), Some(5));
        // Text given as characters: its UTF-8 is what the charset asks for.
        assert_eq!(size_of("caf\u{e9}", utf8), None);
        assert_eq!(size_of("\u{4e2d}\u{6587}", utf8), None);
        // Other charsets, no charset, and other types: the bytes, as tcllib sends them.
        assert_eq!(size_of("caf\u{e9}", "Content-Type: text/plain; charset=iso-8859-1\n\n"), Some(4));
        assert_eq!(size_of("caf\u{e9}", "Content-Type: text/plain\n\n"), Some(4));
        assert_eq!(size_of("\u{80}\u{ff}", "Content-Type: application/octet-stream\n\n"), Some(2));
        assert_eq!(size_of("\u{4e2d}", "Content-Type: application/octet-stream\n\n"), None);
    }

    #[test]
    fn utf8_cut_between_pieces_is_still_utf8() {
        let mut check = Utf8Check::default();
        assert!(check.check(b"caf\xc3") && check.check(b"\xa9") && check.finish());
        let mut check = Utf8Check::default();
        assert!(check.check(b"caf\xc3") && !check.finish());
        assert!(!Utf8Check::default().check(b"\xe9 x"));
    }
}
