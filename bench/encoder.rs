//! Throughput of the DATA encoder alone (`smtp::DataEncoder`): dot-stuffing and
//! line-ending normalisation, with no Tcl, no mime and no socket in the way.
//!
//! `cargo bench --bench encoder` prints one line per input shape:
//! `encoder <shape> <GB/s>`, where GB/s counts input bytes (10^9 per second) and is the
//! best of several timed rounds, so a busy neighbour on a shared machine lowers the
//! number less. bench/run.sh puts these lines in its table. std::time only: no bench
//! framework dependency.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tclsmtp::smtp::DataEncoder;

/// The size of the message fed in each round, and of the pieces it is fed in (the
/// size of one read from a message being streamed).
const MESSAGE: usize = 16 << 20;
const CHUNK: usize = 64 << 10;
/// Each round runs at least this long; the best of ROUNDS is reported.
const ROUND: Duration = Duration::from_millis(300);
const ROUNDS: usize = 5;

/// `MESSAGE` bytes of lines `width` bytes long (without the ending), each ending
/// with `ending`; one line in 64 starts with a dot, so the stuffing path runs too.
fn lines(width: usize, ending: &[u8]) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut message = Vec::with_capacity(MESSAGE + width + ending.len());
    let mut line = 0usize;
    while message.len() < MESSAGE {
        for i in 0..width {
            let byte = if i == 0 && line % 64 == 0 { b'.' } else { alphabet[(line * 7 + i) % alphabet.len()] };
            message.push(byte);
        }
        message.extend_from_slice(ending);
        line += 1;
    }
    message.truncate(MESSAGE);
    message
}

/// Encodes `message` in `CHUNK` pieces into a reused buffer, as a streaming sender
/// would (the buffer is drained after each piece); returns the bytes produced.
fn encode(message: &[u8], out: &mut Vec<u8>) -> usize {
    let mut encoder = DataEncoder::new();
    let mut produced = 0;
    for chunk in message.chunks(CHUNK) {
        out.clear();
        encoder.encode(black_box(chunk), out);
        produced += black_box(out.as_slice()).len();
    }
    out.clear();
    encoder.finish(out);
    produced + out.len()
}

/// The best throughput of `ROUNDS` rounds, in input GB/s.
fn measure(message: &[u8]) -> f64 {
    let mut out = Vec::with_capacity(2 * CHUNK);
    let mut best = 0.0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut bytes = 0usize;
        while start.elapsed() < ROUND {
            encode(message, &mut out);
            bytes += message.len();
        }
        best = best.max(bytes as f64 / start.elapsed().as_secs_f64() / 1e9);
    }
    best
}

fn main() {
    let shapes: [(&str, Vec<u8>); 3] = [
        // What mime renders for a base64 attachment (the bridge keeps mime's LF endings).
        ("base64-76-lf", lines(76, b"\n")),
        // Text that already has SMTP line endings: nothing to change but the dots.
        ("text-72-crlf", lines(72, b"\r\n")),
        // Short lines: the per-line cost dominates.
        ("text-20-lf", lines(20, b"\n")),
    ];
    for (name, message) in &shapes {
        println!("encoder {name} {:.2}", measure(message));
    }
}
