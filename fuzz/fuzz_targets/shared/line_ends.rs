//! An independent model shared by the fuzz targets: what a server stores of a message.

/// The message with every line ending (CRLF, LF or a bare CR) made CRLF and a CRLF added
/// to an unfinished last line, as a server stores what DATA carried; written without the
/// crate, byte by byte with look-ahead.
pub fn normalised(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 8 + 2);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            other => out.push(other),
        }
        i += 1;
    }
    if !message.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
