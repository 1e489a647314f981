//! Conversion between Rust strings and Tcl 8.6's internal string form.
//!
//! Tcl 8.6 keeps strings in a "modified UTF-8": U+0000 is the two bytes `C0 80` (so C
//! strings never hold a NUL), and a character above U+FFFF may be a surrogate pair with
//! each half encoded as three bytes. Decoding them faithfully matters here: the package
//! must see a NUL in an address to refuse it, and must not turn a valid emoji into U+FFFD.

use std::borrow::Cow;

/// Decodes Tcl's internal string bytes into a Rust string. Bytes that are neither UTF-8 nor
/// one of Tcl's two special forms become U+FFFD.
pub fn from_tcl(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(&String::from_utf8_lossy(good));
                let used = if bad.starts_with(&[0xC0, 0x80]) {
                    out.push('\0');
                    2
                } else if let Some(c) = surrogate_pair(bad) {
                    out.push(c);
                    6
                } else {
                    out.push('\u{FFFD}');
                    e.error_len().unwrap_or(bad.len())
                };
                rest = bad.get(used..).unwrap_or_default();
            }
        }
    }
    Cow::Owned(out)
}

/// A high and a low surrogate, each as a three-byte sequence, at the start of `b`.
fn surrogate_pair(b: &[u8]) -> Option<char> {
    let half = |b: &[u8], lead2: std::ops::RangeInclusive<u8>| -> Option<u32> {
        match b {
            [0xED, b1, b2, ..] if lead2.contains(b1) && (0x80..=0xBF).contains(b2) => {
                Some(0xD000 | (u32::from(b1 & 0x3F) << 6) | u32::from(b2 & 0x3F))
            }
            _ => None,
        }
    };
    let hi = half(b, 0xA0..=0xAF)?;
    let lo = half(b.get(3..)?, 0xB0..=0xBF)?;
    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
}

/// Encodes a Rust string in the form Tcl 8.6 expects: NUL as `C0 80`, characters above
/// U+FFFF as surrogate pairs.
pub fn to_tcl(s: &str) -> Cow<'_, [u8]> {
    if !s.chars().any(|c| c == '\0' || u32::from(c) > 0xFFFF) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\0' => out.extend_from_slice(&[0xC0, 0x80]),
            c if u32::from(c) > 0xFFFF => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let u = u32::from(*unit);
                    // Three-byte UTF-8 form of one surrogate code unit.
                    out.push(0xE0 | (u >> 12) as u8);
                    out.push(0x80 | ((u >> 6) & 0x3F) as u8);
                    out.push(0x80 | (u & 0x3F) as u8);
                }
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_utf8_passes_through_unchanged() {
        assert_eq!(from_tcl("café €".as_bytes()), "café €");
        assert!(matches!(to_tcl("café €"), Cow::Borrowed(_)));
    }

    #[test]
    fn tcl_nul_form_decodes_to_nul() {
        assert_eq!(from_tcl(b"a\xC0\x80b"), "a\0b");
        assert_eq!(to_tcl("a\0b").as_ref(), b"a\xC0\x80b");
    }

    #[test]
    fn surrogate_pairs_decode_to_one_character() {
        let tcl = to_tcl("x\u{1F600}y");
        assert_eq!(tcl.as_ref(), b"x\xED\xA0\xBD\xED\xB8\x80y");
        assert_eq!(from_tcl(&tcl), "x\u{1F600}y");
    }

    #[test]
    fn four_byte_utf8_is_accepted_too() {
        assert_eq!(from_tcl("\u{1F600}".as_bytes()), "\u{1F600}");
    }

    #[test]
    fn garbage_becomes_replacement_characters() {
        assert_eq!(from_tcl(b"a\xFFb\xED\xA0"), "a\u{FFFD}b\u{FFFD}\u{FFFD}");
    }
}
