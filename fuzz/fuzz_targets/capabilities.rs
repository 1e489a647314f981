//! The EHLO capability parser (`tclsmtp::smtp::Capabilities::from_ehlo`).
//!
//! The input's LF-separated lines (lossy UTF-8) become the lines of a 250 reply; the first is
//! the greeting. The answers of `has`, `size_limit` and `auth_mechanisms` are checked against a
//! small independent model of RFC 5321 §4.1.1.1 / RFC 4954 / RFC 1870. The same bytes are also
//! parsed as a wire reply with `parse_reply`, and a complete one goes through the same checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tclsmtp::sasl::Mechanism;
use tclsmtp::smtp::{parse_reply, Capabilities, Reply, Status};

fuzz_target!(|data: &[u8]| {
    let lines: Vec<String> = data.split(|&b| b == b'\n').map(|l| String::from_utf8_lossy(l).into_owned()).collect();
    check(&Reply { code: 250, lines });

    if let Ok(Status::Complete((reply, _))) = parse_reply(data) {
        check(&reply);
    }
});

fn check(reply: &Reply) {
    let caps = Capabilities::from_ehlo(reply);
    let mechanisms = caps.auth_mechanisms();
    let size = caps.size_limit();

    if !reply.is_success() {
        assert_eq!(caps, Capabilities::default(), "a failed EHLO announces nothing");
    }

    // Mechanisms: non-empty words, upper-case, unique.
    for (i, mechanism) in mechanisms.iter().enumerate() {
        assert!(!mechanism.is_empty(), "empty mechanism in {mechanisms:?}");
        assert_eq!(*mechanism, mechanism.to_ascii_uppercase(), "not upper-case: {mechanism:?}");
        assert!(!mechanism.contains(|c: char| c.is_ascii_whitespace()), "whitespace in {mechanism:?}");
        assert!(!mechanisms[..i].contains(mechanism), "duplicate {mechanism:?} in {mechanisms:?}");
        if let Some(known) = Mechanism::from_name(mechanism) {
            assert_eq!(known.name(), mechanism, "from_name({mechanism:?})");
        }
    }
    if !mechanisms.is_empty() {
        assert!(caps.has("AUTH") && caps.has("auth"), "mechanisms {mechanisms:?} without AUTH");
    }
    if let Some(limit) = size {
        assert!(limit > 0, "SIZE limit 0");
        assert!(caps.has("SIZE") && caps.has("size"), "a size limit without SIZE");
    }

    // The independent model.
    let model = Model::of(reply);
    assert_eq!(mechanisms, model.mechanisms, "auth_mechanisms for {:?}", reply.lines);
    assert_eq!(size, model.size, "size_limit for {:?}", reply.lines);
    for keyword in &model.keywords {
        assert!(caps.has(keyword), "has({keyword:?}) for {:?}", reply.lines);
        assert!(caps.has(&keyword.to_ascii_lowercase()), "has(lower {keyword:?})");
    }
    // Keywords that were not announced are not there, and the greeting is not a keyword.
    for keyword in ["STARTTLS", "PIPELINING", "SIZE", "AUTH", "8BITMIME", "SMTPUTF8", "", " "] {
        let announced = model.keywords.iter().any(|k| k.eq_ignore_ascii_case(keyword));
        assert_eq!(caps.has(keyword), announced, "has({keyword:?}) for {:?}", reply.lines);
    }
    if let Some(greeting) = reply.lines.first() {
        if !model.keywords.iter().any(|k| k.eq_ignore_ascii_case(greeting)) {
            assert!(!caps.has(greeting), "the greeting {greeting:?} taken as a keyword");
        }
    }
}

/// What the EHLO reply announces, computed without the crate.
struct Model {
    keywords: Vec<String>,
    mechanisms: Vec<String>,
    size: Option<u64>,
}

impl Model {
    fn of(reply: &Reply) -> Model {
        let mut model = Model { keywords: Vec::new(), mechanisms: Vec::new(), size: None };
        if !(200..300).contains(&reply.code) {
            return model;
        }
        let mut size_seen = false;
        for line in reply.lines.iter().skip(1) {
            let words: Vec<&str> = line.split(|c: char| c.is_ascii_whitespace()).filter(|w| !w.is_empty()).collect();
            let Some((&first, rest)) = words.split_first() else { continue };
            let bytes = first.as_bytes();
            let (keyword, params): (String, Vec<&str>) =
                if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"AUTH=") {
                    let after = &first[5..];
                    let mut params = Vec::new();
                    if !after.is_empty() {
                        params.push(after);
                    }
                    params.extend_from_slice(rest);
                    ("AUTH".to_string(), params)
                } else {
                    (first.to_ascii_uppercase(), rest.to_vec())
                };
            if keyword == "AUTH" {
                for p in &params {
                    let upper = p.to_ascii_uppercase();
                    if !model.mechanisms.contains(&upper) {
                        model.mechanisms.push(upper);
                    }
                }
            }
            // Only the first SIZE line counts.
            if keyword.eq_ignore_ascii_case("SIZE") && !size_seen {
                size_seen = true;
                model.size = params
                    .first()
                    .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|p| p.parse::<u64>().ok())
                    .filter(|&n| n > 0);
            }
            model.keywords.push(keyword);
        }
        model
    }
}
