//! Body encodings for `smtp::mail`: text as 7bit when it can go so, else
//! quoted-printable (RFC 2045 §6.7); attachments as base64 in 76-character lines
//! (RFC 2045 §6.8), from memory here and from files in [`crate::spool`]; and media
//! types by file extension.

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
/// and no line is over 998 characters, else as quoted-printable, which also keeps a line
/// starting with `From ` from being mangled by mbox stores.
pub fn text(text: &str) -> EncodedText {
    let lines: Vec<(&[u8], &[u8])> = crate::smtp::wire_lines(text.as_bytes()).collect();
    let plain = text.is_ascii() && !text.contains('\0') && lines.iter().all(|(l, _)| l.len() <= MAX_7BIT_LINE);
    let mut bytes = Vec::with_capacity(text.len() + text.len() / 2);
    for (line, end) in lines {
        if plain {
            bytes.extend_from_slice(line);
        } else {
            quoted_printable_line(line, &mut bytes);
        }
        if !end.is_empty() {
            bytes.extend_from_slice(b"\r\n");
        }
    }
    EncodedText { encoding: if plain { "7bit" } else { "quoted-printable" }, bytes }
}

/// Appends one line of text, quoted-printable, with soft breaks keeping every line to
/// 76 characters (its line end is the caller's).
fn quoted_printable_line(line: &[u8], out: &mut Vec<u8>) {
    let mut width = 0;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        let literal = match b {
            b'=' => false,
            b' ' | b'\t' => !last,
            // `From ` at a line's start: encoded, so mbox stores leave it alone.
            b'F' => !(width == 0 && line.get(i..i + 5) == Some(b"From ")),
            33..=126 => true,
            _ => false,
        };
        let len = if literal { 1 } else { 3 };
        // Room for the `=` of a soft break, unless this is the line's last character.
        let room = if last { MAX_QP_LINE } else { MAX_QP_LINE - 1 };
        if width + len > room {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        if literal {
            out.push(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        width += len;
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
        String::from_utf8(out).unwrap()
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

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type("Report.PDF"), "application/pdf");
        assert_eq!(media_type("photo.jpeg"), "image/jpeg");
        assert_eq!(media_type("noextension"), "application/octet-stream");
        assert_eq!(media_type("archive.unknown"), "application/octet-stream");
    }
}
