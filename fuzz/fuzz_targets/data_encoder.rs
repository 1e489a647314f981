//! The DATA encoder (`tclsmtp::smtp::DataEncoder`) and `message_size`.
//!
//! Input layout: one byte `k` (only `k % 8` counts), then `k % 8` split points of two bytes
//! each (little-endian, taken modulo the message length + 1), then the message. The message is
//! encoded in the chunks those points give (empty chunks included) and checked:
//! (a) the output equals encoding the whole message at once (and byte by byte, for short ones);
//! (b) it ends with "\r\n.\r\n" (or is just ".\r\n" for an empty message) and every line ends
//!     with CRLF, with no bare CR or LF anywhere;
//! (c) no line but the final terminator is exactly ".";
//! (d) decoding it as a server does (drop the terminator, remove one leading dot per line)
//!     gives the message with every CRLF, bare CR and bare LF made CRLF and a final CRLF added
//!     if missing;
//! (e) `message_size(message)` is the decoded length.
#![no_main]

#[path = "shared/line_ends.rs"]
mod line_ends;

use libfuzzer_sys::fuzz_target;
use line_ends::normalised;
use tclsmtp::smtp::{message_size, DataEncoder};

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else { return };
    let count = usize::from(k % 8);
    if rest.len() < 2 * count {
        return;
    }
    let (points, message) = rest.split_at(2 * count);
    let mut splits: Vec<usize> =
        points.chunks_exact(2).map(|p| usize::from(u16::from_le_bytes([p[0], p[1]])) % (message.len() + 1)).collect();
    splits.sort_unstable();

    let mut chunks = Vec::with_capacity(count + 1);
    let mut start = 0;
    for &split in &splits {
        chunks.push(&message[start..split]);
        start = split;
    }
    chunks.push(&message[start..]);

    let chunked = encode(&chunks);
    let whole = encode(&[message]);
    // (a)
    assert_eq!(chunked, whole, "chunks {chunks:?} give another output than the whole message");
    if message.len() <= 256 {
        let bytes: Vec<&[u8]> = message.chunks(1).collect();
        assert_eq!(encode(&bytes), whole, "byte by byte");
    }

    // (b), (c) and (d)
    let decoded = decode(&whole);
    assert_eq!(decoded, normalised(message), "round trip of {message:?}");
    // (e)
    assert_eq!(message_size(message), decoded.len() as u64, "message_size of {message:?}");
});

fn encode(chunks: &[&[u8]]) -> Vec<u8> {
    let mut encoder = DataEncoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        encoder.encode(chunk, &mut out);
    }
    encoder.finish(&mut out);
    out
}

/// What a server stores (RFC 5321 §4.5.2), asserting on the way that the output is well formed.
fn decode(encoded: &[u8]) -> Vec<u8> {
    assert!(encoded.ends_with(b".\r\n"), "no terminator: {encoded:?}");
    let body = &encoded[..encoded.len() - 3];
    assert!(body.is_empty() || body.ends_with(b"\r\n"), "the terminator is not on a line of its own: {encoded:?}");
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let lf = rest.iter().position(|&b| b == b'\n').expect("a line without LF");
        let line = &rest[..lf];
        rest = &rest[lf + 1..];
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| panic!("LF without CR in {encoded:?}"));
        assert!(!line.contains(&b'\r'), "bare CR in {encoded:?}");
        assert_ne!(line, b".", "a lone dot before the end in {encoded:?}");
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        out.extend_from_slice(b"\r\n");
    }
    out
}
