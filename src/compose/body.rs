//! Body encodings: for `smtp::mail`, text as 7bit when it can go so, else
//! quoted-printable (RFC 2045 §6.7), attachments as base64 in 76-character lines
//! (RFC 2045 §6.8), from memory here and from files in [`crate::spool`]; for any
//! message, the streaming encoders that convert 8-bit parts for a server without
//! 8BITMIME; and media types by file extension.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Bytes of input per base64 line: 57 bytes make the 76 characters RFC 2045 allows.
pub const BASE64_LINE_INPUT: usize = 57;

/// The longest line 7bit text may have (RFC 5322 §2.1.1).
const MAX_7BIT_LINE: usize = 998;
/// The longest quoted-printable line, its soft break's `=` included (RFC 2045 §6.7).
const MAX_QP_LINE: usize = 76;

/// A text body ready to go: its Content-Transfer-Encoding and its encoded bytes, lines
/// ending CRLF.
pub struct EncodedText {
    pub encoding: &'static str,
    pub bytes: Vec<u8>,
}

/// Encodes `text` (lines ending CRLF, LF or CR: each becomes one CRLF, as for any
/// message; a last line without an end keeps none) as 7bit when it is ASCII without NUL
/// and no line is over 998 characters, else as quoted-printable.
pub fn text(text: &str) -> EncodedText {
    let lines: Vec<(&[u8], &[u8])> = crate::smtp::wire_lines(text.as_bytes()).collect();
    let plain = text.is_ascii() && !text.contains('\0') && lines.iter().all(|(l, _)| l.len() <= MAX_7BIT_LINE);
    let mut bytes = Vec::with_capacity(text.len() + text.len() / 2);
    if !plain {
        let mut encoder = QuotedPrintable::default();
        encoder.encode(text.as_bytes(), &mut bytes);
        encoder.finish(&mut bytes);
        return EncodedText { encoding: "quoted-printable", bytes };
    }
    for (line, end) in lines {
        bytes.extend_from_slice(line);
        if !end.is_empty() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    EncodedText { encoding: "7bit", bytes }
}

/// A quoted-printable encoder (RFC 2045 §6.7) fed a piece at a time. Line ends are read
/// as the DATA encoder reads them (CRLF, LF or a bare CR: each a hard line break, written
/// CRLF); soft breaks keep every line within 76 characters; a space or tab that ends a
/// line is encoded, and so is the `F` of a line starting `From `, which mbox stores
/// would otherwise mangle. A line is encoded as it comes; only a line cut by the end of
/// an input piece is kept, and of a long one only its last bytes (what the next bytes
/// decide), so memory stays bounded.
#[derive(Debug, Default)]
pub struct QuotedPrintable {
    /// Characters on the output line so far.
    width: usize,
    /// The current line's bytes not encoded yet.
    line: Vec<u8>,
    /// The last byte was a CR: an LF right after it is part of the same line end.
    pending_cr: bool,
}

/// How many bytes of a line cut by the end of a piece are kept before the first of them
/// are encoded.
const QP_LINE_BUFFER: usize = 4096;

/// How many bytes after a character decide how it is written: it may be the last of its
/// line, or the `F` of `From `.
const QP_LOOKAHEAD: usize = 4;

impl QuotedPrintable {
    /// Appends the encoding of `input`, the next bytes of the text, to `out`.
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            input = input.strip_prefix(b"\n").unwrap_or(input);
        }
        while !input.is_empty() {
            let Some(at) = input.iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.line.extend_from_slice(input);
                if self.line.len() > QP_LINE_BUFFER {
                    let line = std::mem::take(&mut self.line);
                    let decided = line.len() - QP_LOOKAHEAD;
                    self.encode_line(&line, decided, false, out);
                    self.line = line;
                    self.line.drain(..decided);
                }
                return;
            };
            let (text, rest) = input.split_at(at);
            if self.line.is_empty() {
                self.encode_line(text, text.len(), true, out);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(text);
                self.encode_line(&line, line.len(), true, out);
                line.clear();
                self.line = line;
            }
            out.extend_from_slice(b"\r\n");
            self.width = 0;
            input = match rest {
                [b'\r'] => {
                    self.pending_cr = true;
                    &[]
                }
                [b'\r', b'\n', after @ ..] | [_, after @ ..] => after,
                [] => &[],
            };
        }
    }

    /// Writes what is kept: the text ends here, its last line without a line end.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        self.encode_line(&line, line.len(), true, out);
    }

    /// Writes the first `upto` bytes of `line`, the bytes after them read only to decide
    /// how; `ends_line`: `line` holds the rest of its line (its last byte is the line's).
    fn encode_line(&mut self, line: &[u8], upto: usize, ends_line: bool, out: &mut Vec<u8>) {
        for (i, &b) in line.iter().enumerate().take(upto) {
            let last = ends_line && i + 1 == line.len();
            // Room for the `=` of a soft break, unless this is the line's last character.
            let room = if last { MAX_QP_LINE } else { MAX_QP_LINE - 1 };
            let starts_line = self.width == 0 || self.width + 1 > room;
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !last,
                b'F' => !(starts_line && line.get(i..i + 5) == Some(b"From ")),
                33..=126 => true,
                _ => false,
            };
            let len = if literal { 1 } else { 3 };
            if self.width + len > room {
                out.extend_from_slice(b"=\r\n");
                self.width = 0;
            }
            if literal {
                out.push(b);
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            self.width += len;
        }
    }
}

/// A base64 encoder fed a piece at a time, for text whose line ends are to be CRLF in
/// the decoded content (the DATA encoder's reading: CRLF, LF or a bare CR are each one
/// CRLF): lines of 76 characters, each ending CRLF.
#[derive(Debug, Default)]
pub struct Base64Text {
    /// Content not encoded yet: less than a line's worth.
    carry: Vec<u8>,
    pending_cr: bool,
    /// A line has been written.
    wrote: bool,
}

impl Base64Text {
    /// Appends the encoding of `input`, the next bytes of the content, to `out`.
    pub fn encode(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        if std::mem::take(&mut self.pending_cr) {
            input = input.strip_prefix(b"\n").unwrap_or(input);
        }
        while !input.is_empty() {
            let run = input.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(input.len());
            let (text, rest) = input.split_at(run);
            self.carry.extend_from_slice(text);
            input = match rest {
                [] => &[],
                [b'\r'] => {
                    self.pending_cr = true;
                    &[]
                }
                [b'\r', b'\n', after @ ..] | [_, after @ ..] => after,
            };
            if !rest.is_empty() {
                self.carry.extend_from_slice(b"\r\n");
            }
            let whole = self.carry.len() / BASE64_LINE_INPUT * BASE64_LINE_INPUT;
            if whole > 0 {
                base64_lines(self.carry.get(..whole).unwrap_or_default(), out);
                self.carry.drain(..whole);
                self.wrote = true;
            }
        }
    }

    /// Writes the last, shorter line. Returns whether any line was written, ever.
    pub fn finish(self, out: &mut Vec<u8>) -> bool {
        base64_lines(&self.carry, out);
        self.wrote || !self.carry.is_empty()
    }
}

/// `data` as base64 in lines of 76 characters, each ending CRLF.
pub fn base64_lines(data: &[u8], out: &mut Vec<u8>) {
    for line in data.chunks(BASE64_LINE_INPUT) {
        out.extend_from_slice(STANDARD.encode(line).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// How many bytes [`base64_lines`] makes of `len` input bytes.
pub fn base64_size(len: u64) -> u64 {
    let lines = len.div_ceil(BASE64_LINE_INPUT as u64);
    len.div_ceil(3) * 4 + lines * 2
}

/// The media type for a file name's extension (common types; else
/// `application/octet-stream`).
pub fn media_type(filename: &str) -> &'static str {
    let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "txt" | "text" | "log" => "text/plain",
        "htm" | "html" => "text/html",
        "csv" => "text/csv",
        "css" => "text/css",
        "ics" => "text/calendar",
        "md" => "text/markdown",
        "xml" => "application/xml",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "ico" => "image/vnd.microsoft.icon",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "eml" => "message/rfc822",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(s: &str) -> (String, String) {
        let t = text(s);
        (t.encoding.to_string(), String::from_utf8(t.bytes).unwrap())
    }

    #[test]
    fn ascii_text_goes_7bit_with_crlf_lines() {
        assert_eq!(text_of("a\nb\r\nc\rd"), ("7bit".into(), "a\r\nb\r\nc\r\nd".into()));
        assert_eq!(text_of("a\n"), ("7bit".into(), "a\r\n".into()));
        assert_eq!(text_of(""), ("7bit".into(), "".into()));
    }

    #[test]
    fn other_text_goes_quoted_printable() {
        assert_eq!(text_of("café = 1 \nx"), ("quoted-printable".into(), "caf=C3=A9 =3D 1=20\r\nx".into()));
        assert_eq!(text_of("nul\0\n"), ("quoted-printable".into(), "nul=00\r\n".into()));
        let long = "x".repeat(999);
        assert_eq!(text(&long).encoding, "quoted-printable");
    }

    #[test]
    fn quoted_printable_lines_stay_within_76_and_decode_back() {
        let input = format!("{}é{}\nFrom here\n.dot", "a".repeat(74), "b".repeat(200));
        let (_, out) = text_of(&input);
        assert!(out.split("\r\n").all(|l| l.len() <= 76), "{out}");
        assert!(out.contains("\r\n=46rom here\r\n"), "{out}");
        assert_eq!(decode_qp(&out), input.replace('\n', "\r\n"));
    }

    /// A small quoted-printable decoder for the round trip.
    fn decode_qp(s: &str) -> String {
        String::from_utf8(decode_qp_bytes(s)).unwrap()
    }

    fn decode_qp_bytes(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let bytes = s.replace("=\r\n", "").into_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' {
                out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn base64_lines_are_76_characters_and_sized_exactly() {
        for len in [0usize, 1, 2, 3, 56, 57, 58, 114, 1000] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            base64_lines(&data, &mut out);
            assert_eq!(out.len() as u64, base64_size(len as u64), "len {len}");
            let text = String::from_utf8(out).unwrap();
            assert!(text.split("\r\n").all(|l| l.len() <= 76));
            assert_eq!(STANDARD.decode(text.replace("\r\n", "")).unwrap(), data);
        }
    }

    fn qp_in_pieces(input: &[u8], piece: usize) -> String {
        let mut encoder = QuotedPrintable::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            encoder.encode(chunk, &mut out);
        }
        encoder.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quoted_printable_is_the_same_whatever_the_pieces() {
        let input = "From the start\r\nFro\nFrom\rF\r\n  tabs\t \nx=y \u{e9}\u{e8} end \n"
            .repeat(3)
            .into_bytes()
            .into_iter()
            .chain(std::iter::repeat_n(b'z', 300))
            .chain(*b" \xff\x00 last ")
            .collect::<Vec<u8>>();
        let whole = qp_in_pieces(&input, input.len());
        for piece in [1, 2, 3, 5, 7, 76, 77] {
            assert_eq!(qp_in_pieces(&input, piece), whole, "pieces of {piece}");
        }
        assert!(whole.split("\r\n").all(|l| l.len() <= 76), "{whole}");
        assert!(whole.starts_with("=46rom the start\r\nFro\r\nFrom\r\nF\r\n  tabs\t=20\r\n"), "{whole}");
        assert!(whole.ends_with(" =FF=00 last=20"), "{whole}");
        let decoded = decode_qp_bytes(&whole);
        let expected = String::from_utf8_lossy(&input).replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n");
        assert_eq!(String::from_utf8_lossy(&decoded), expected);
    }

    #[test]
    fn a_line_longer_than_the_buffer_is_the_same_whatever_the_pieces() {
        // 75 characters make a soft break, so "From " starts an output line each time.
        let unit = format!("{}From \u{e9} ", "x".repeat(75));
        let line = unit.repeat(200);
        let input = format!("{line}\n{line}").into_bytes();
        let whole = qp_in_pieces(&input, input.len());
        for piece in [1, 5, 4096, 4097, 5000] {
            assert_eq!(qp_in_pieces(&input, piece), whole, "pieces of {piece}");
        }
        assert!(whole.split("\r\n").all(|l| l.len() <= 76 && !l.starts_with("From ")), "{whole}");
        assert_eq!(decode_qp_bytes(&whole), format!("{line}\r\n{line}").into_bytes());
    }

    #[test]
    fn a_from_after_a_soft_break_is_encoded() {
        let input = format!("{}From x", "a".repeat(75));
        let out = qp_in_pieces(input.as_bytes(), 1);
        assert!(out.contains("=\r\n=46rom x"), "{out}");
    }

    fn base64_text_in_pieces(input: &[u8], piece: usize) -> Vec<u8> {
        let mut encoder = Base64Text::default();
        let mut out = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            encoder.encode(chunk, &mut out);
        }
        let _ = encoder.finish(&mut out);
        out
    }

    #[test]
    fn base64_text_has_crlf_line_ends_whatever_the_pieces() {
        let input: Vec<u8> =
            b"a\nb\r\nc\rd\r".iter().copied().chain((0..=255u8).filter(|b| *b != b'\r' && *b != b'\n')).collect();
        let whole = base64_text_in_pieces(&input, input.len());
        for piece in [1, 2, 56, 57, 58] {
            assert_eq!(base64_text_in_pieces(&input, piece), whole, "pieces of {piece}");
        }
        let text = String::from_utf8(whole).unwrap();
        assert!(text.ends_with("\r\n") && text.split("\r\n").all(|l| l.len() <= 76), "{text}");
        let decoded = STANDARD.decode(text.replace("\r\n", "")).unwrap();
        let mut expected = b"a\r\nb\r\nc\r\nd\r\n".to_vec();
        expected.extend((0..=255u8).filter(|b| *b != b'\r' && *b != b'\n'));
        assert_eq!(decoded, expected);
    }

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type("Report.PDF"), "application/pdf");
        assert_eq!(media_type("photo.jpeg"), "image/jpeg");
        assert_eq!(media_type("noextension"), "application/octet-stream");
        assert_eq!(media_type("archive.unknown"), "application/octet-stream");
    }
}
