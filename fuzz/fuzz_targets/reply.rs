//! The SMTP reply parser (`tclsmtp::smtp::parse_reply`) on arbitrary bytes.
//!
//! Checks that it never panics, that a complete reply is well formed and used only bytes up to
//! and including an LF, and that the parser is consistent with itself when bytes arrive in
//! pieces: a prefix of the input is `Partial` or gives the same answer as the whole.
//!
//! The parser's limits (65,536-byte lines, 1,000 lines) are far beyond libFuzzer's default input
//! length, so an input starting with `0xFF` is first expanded: each `0x01` byte becomes 1,024
//! `a`s and each `0x02` byte becomes 250 lines of `250-x\r\n`. That lets the fuzzer reach
//! `LineTooLong` and `TooManyLines` with short inputs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tclsmtp::smtp::{parse_reply, ReplyError, Status};

/// Upper bound on an expanded input, so one run stays fast.
const MAX_EXPANDED: usize = 300_000;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((0xFF, template)) => {
            if let Some(expanded) = expand(template) {
                check(&expanded);
            }
        }
        _ => check(data),
    }
});

fn expand(template: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for &b in template {
        match b {
            0x01 => out.resize(out.len() + 1024, b'a'),
            0x02 => {
                for _ in 0..250 {
                    out.extend_from_slice(b"250-x\r\n");
                }
            }
            _ => out.push(b),
        }
        if out.len() > MAX_EXPANDED {
            return None;
        }
    }
    Some(out)
}

fn check(data: &[u8]) {
    let whole = parse_reply(data);
    match &whole {
        Ok(Status::Complete((reply, _))) => {
            let shown = reply.to_string();
            assert!(shown.starts_with(&reply.code.to_string()), "{shown:?}");
        }
        Ok(Status::Partial) => {}
        Err(error) => {
            let _ = error.to_string();
            if let ReplyError::Malformed { line } = error {
                assert!(line.chars().count() <= 200, "excerpt of {} characters", line.chars().count());
            }
        }
    }

    if let Ok(Status::Complete((reply, used))) = &whole {
        let used = *used;
        assert!(used > 0, "complete reply used no bytes");
        assert!(used <= data.len(), "used {used} of {} bytes", data.len());
        assert_eq!(data[used - 1], b'\n', "a reply ends at an LF");
        assert!((200..=559).contains(&reply.code), "code {}", reply.code);
        assert!(!reply.lines.is_empty(), "a reply has at least one line");
        // One line per LF in the bytes used.
        let lfs = data[..used].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(reply.lines.len(), lfs, "lines vs LFs");
        for line in &reply.lines {
            assert!(!line.contains('\n'), "LF inside line text {line:?}");
            assert!(!line.ends_with(|c: char| c.is_ascii_whitespace()), "untrimmed line {line:?}");
        }
        // The same reply, whatever follows it.
        assert_eq!(&parse_reply(&data[..used]), &whole, "reply alone differs from reply + rest");
    }

    // A few prefixes, as if the bytes had arrived in pieces.
    let len = data.len();
    let mut splits = [0, len / 3, len / 2, len.saturating_sub(1), len.saturating_sub(2), 0];
    if let Ok(Status::Complete((_, used))) = &whole {
        splits[5] = used - 1;
    }
    for &split in &splits {
        if split >= len {
            continue;
        }
        let prefix = parse_reply(&data[..split]);
        match &whole {
            Ok(Status::Complete((_, used))) if split < *used => {
                assert_eq!(prefix, Ok(Status::Partial), "prefix of {split} bytes of a complete reply");
            }
            // A prefix that already holds the whole reply gives the same reply.
            Ok(Status::Complete(_)) => assert_eq!(prefix, whole, "prefix of {split} bytes holding the reply"),
            Ok(Status::Partial) => {
                assert_eq!(prefix, Ok(Status::Partial), "prefix of {split} bytes of a partial reply")
            }
            // An error is detected once enough bytes are there; before that, more bytes are needed.
            Err(_) => assert!(
                prefix == Ok(Status::Partial) || prefix == whole,
                "prefix of {split} bytes: {prefix:?}, whole: {whole:?}"
            ),
        }
    }
}
