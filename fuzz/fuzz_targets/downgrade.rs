//! The 7-bit conversion of a message for a server without 8BITMIME (`tclsmtp::spool::Spool`:
//! `eight_bit`, `seven_bit`, `size`, `size_in`, `for_each_chunk` in both forms).
//!
//! Input layout: one mode byte. `mode % 8 == 0` (`0`, `8`, `@`, `H`, `P`, `X`, ...): raw mode,
//! the rest of the input is the message. Otherwise the rest drives a generator (bytes read as
//! choices, 0 once the input is exhausted) that writes a well-formed MIME message and, beside
//! it, the model's prediction:
//! * a flags byte: bits 0-1 the line ends (all CRLF, all LF, all bare CR, or chosen line by
//!   line); bit 2, NUL bytes stay in contents (else they become 0x80); bit 3, the message's
//!   last line end is left off; bits 4-7 all set, the first content starts with a line long
//!   enough (~256 KiB) to put one of the crate's chunk boundaries (`spool::CHUNK`, counted
//!   from the body's start or from that content's, as a byte says) a few bytes before its
//!   end, so that a line end, a `From ` or an 8-bit byte straddles two reads;
//! * then an entity, recursively (depth ≤ 4, ≤ 40 entities, ≤ 40 multiparts): a few fields
//!   (`X-Fuzz-<n>` with values that are printable or raw bytes, 8-bit included, some folded),
//!   Content-Type and Content-Transfer-Encoding fields (names in various cases), an empty
//!   line, the body. Kinds: text/* (QP when converted), other leaves (base64), no
//!   Content-Type (text/plain; in a multipart/digest, message/rfc822), multipart/mixed,
//!   alternative, digest or related (unique fixed-length boundaries `=_NN` quoted or `b_NN`
//!   bare, the parameter sometimes folded, delimiters with trailing white space or not,
//!   preamble, one to three parts, closing delimiter or not, epilogue), message/rfc822 with an
//!   inner message (header fields, then an entity), message/partial, external-body,
//!   delivery-status or global. Transfer encodings: absent, 7bit, 8bit (any case), binary,
//!   quoted-printable, base64 or x-unknown (multiparts and message/rfc822 only the first
//!   four); a leaf declared quoted-printable or base64 has its content validly encoded here
//!   or left raw (maybe 8-bit).
//! * contents: lines of arbitrary bytes (CR and LF become `r` and `n`: line ends are the
//!   grammar's), starting with `From `, `.`, `..`, `--`, `F`, ... or not, with trailing spaces
//!   or tabs, some repeated into lines of up to ~1,300 bytes, the last one with or without a
//!   line end. A content line that would be a delimiter of a multipart it is in (`--` and a
//!   boundary in scope) gets its second byte changed: the oracle (mailparse) takes any line
//!   starting `--boundary` for one, RFC 2046 and the walker only with white space after.
//!   An LF line end right after a bare CR one is written CRLF, so that a line end never joins
//!   the one before it.
//!
//! Checks, in both modes:
//! 1. `Form::AsIs` gives the input byte for byte; `size()` and `size_in(AsIs)` are
//!    `smtp::message_size(input)`; `eight_bit()` says whether the input has a byte over 127.
//!    `Spool::new` fails only with `Error::Nul`, and only when the input has a NUL.
//! 2. An ASCII message: `seven_bit()` is `Ok` with `size()` and no parts, and `Form::SevenBit`
//!    gives the as-is bytes.
//! 3. An 8-bit message that converts: the converted bytes are ASCII, their `message_size` is
//!    the size `seven_bit()` reports and `size_in(SevenBit)`, a second run gives the same
//!    bytes, and the parts list is not empty.
//! 5. An `Err` is one of the documented reasons (doc/smtp.man, "To a server without
//!    8BITMIME"): 8-bit bytes in the message's header, in a part's header or a forwarded
//!    message's header, in a multipart's preamble or epilogue, in a part declared
//!    quoted-printable or base64 (any other encoding than 7bit, 8bit or binary), in a
//!    message/* other than message/rfc822; a forwarded message's header over 1 MiB. Raw mode
//!    also checks that "the message's header has 8-bit bytes" holds of the header a server
//!    reads.
//!
//! In generated mode, the model predicts `Spool::new`'s `Nul` and its part, and the outcome
//! of `seven_bit()` exactly: `Ok` with the parts converted (`part 1.2 as base64, ...`, stream
//! order), or the `Err` text (the message's header first, then the first obstacle in stream
//! order, then the first leaf that cannot be re-encoded). Parts are numbered as IMAP
//! numbers sections, as the crate documents: a forwarded message's parts under its part, its
//! body when not a multipart its part `.1`.
//!
//! 4. The oracle, for a generated message that converts: the `mailparse` crate (the main
//!    crate does not use it) parses (a) the input and (b) the converted bytes, each as DATA
//!    delivers it (every CRLF, LF and bare CR a CRLF, a CRLF added to an unfinished last
//!    line: what a server with, and one without, 8BITMIME stores), and the two trees must
//!    have the same shape: per entity the same media type and parameters (boundaries
//!    included), the same header fields in order but for Content-Transfer-Encoding, the same
//!    number of parts and the same preamble; message/rfc822 bodies are parsed in turn. Every
//!    leaf decodes to the same bytes in (a) and (b). Content-Transfer-Encoding in (b): a leaf
//!    whose (a) body has 8-bit bytes says `quoted-printable` (text/*) or `base64` (anything
//!    else), once, and its encoded lines are at most 76 characters, none starting `From `
//!    (quoted-printable); an entity whose (a) field said `8bit` says `7bit`; any other keeps
//!    its fields.
//!
//! Which inputs the oracle and the walker see the same way: only generated ones. The
//! generator writes nothing on which RFC 2046, the walker and mailparse could differ: no
//! content line starting with `--` and a boundary in scope, at least one part per
//! multipart (mailparse takes what follows a first, closing, delimiter for a part), header
//! fields as `Name: value` with no space before the colon and no folded or padded
//! Content-Transfer-Encoding (mailparse matches the value exactly), message/rfc822 and
//! multiparts only with identity encodings (the walker reads their bodies as they are), and
//! the inner message is parsed from the raw body.
//!
//! The three deviations this target found (see `regressions/downgrade/README.md`) are
//! fixed; their inputs are kept as regressions: `head-split` (a header block ended by an
//! empty line made of a bare CR ran on into the body), `base64-at-end` (a leaf converted to
//! base64 that ends the message lost its last line end) and `multipart-leaf` (a refusal
//! reason the manual did not list).
//!
//! `DOWNGRADE_SHOW=1` prints each generated message, the model's prediction and the
//! crate's `seven_bit()`.
#![no_main]

#[path = "shared/line_ends.rs"]
mod line_ends;

use line_ends::normalised;
use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use mailparse::body::Body;
use mailparse::ParsedMail;
use tclsmtp::smtp::{message_size, Form};
use tclsmtp::spool::{unlinked_file, Error as SpoolError, Spool};

const MAX_DEPTH: usize = 4;
const MAX_ENTITIES: usize = 40;
const MAX_MULTIPARTS: usize = 40;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 8 == 0 {
        check(rest, None);
    } else {
        let (message, expect) = generate(rest);
        if std::env::var_os("DOWNGRADE_SHOW").is_some() {
            eprintln!("---- generated\n{}\n---- expected {expect:?}", show(&message));
        }
        check(&message, Some(&expect));
    }
});

fn show(bytes: &[u8]) -> String {
    let mut s = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => s.push_str("\\r"),
                '\n' => s.push_str("\\n\n"),
                '\0' => s.push_str("\\0"),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s
}

// ---- The checks ---------------------------------------------------------------------

fn collect(spool: &Spool, form: Form) -> Vec<u8> {
    let mut out = Vec::new();
    spool
        .for_each_chunk(form, |chunk| {
            out.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })
        .unwrap_or_else(|e| panic!("reading the message in {form:?}: {e:?}"));
    out
}

fn check(message: &[u8], expect: Option<&Expect>) {
    let file = unlinked_file(message).expect("a temporary file");
    let spool = match Spool::new(file, |head| Ok::<_, ()>(head.to_vec()), |_, _, _| Ok(None)) {
        Ok(spool) => spool,
        Err(SpoolError::Nul(part)) => {
            assert!(message.contains(&0), "Nul({part}) but no NUL in\n{}", show(message));
            if let Some(expect) = expect {
                assert_eq!(Some(part.to_string()), expect.nul, "the part with a NUL in\n{}", show(message));
            }
            return;
        }
        Err(e) => panic!("Spool::new failed: {e:?} for\n{}", show(message)),
    };
    if let Some(expect) = expect {
        assert_eq!(expect.nul, None, "Spool::new took a message with a NUL in a body:\n{}", show(message));
    }

    // 1.
    let as_is = collect(&spool, Form::AsIs);
    assert!(as_is == message, "the as-is form differs from the input\n{}\nas is\n{}", show(message), show(&as_is));
    let size = message_size(message);
    assert_eq!(spool.size(), size, "size() of\n{}", show(message));
    assert_eq!(spool.size_in(Form::AsIs), size, "size_in(AsIs) of\n{}", show(message));
    assert_eq!(spool.eight_bit(), !message.is_ascii(), "eight_bit() of\n{}", show(message));

    let seven_bit = spool.seven_bit();
    if std::env::var_os("DOWNGRADE_SHOW").is_some() {
        eprintln!("---- eight_bit {}, seven_bit() {seven_bit:?}", spool.eight_bit());
    }
    if !spool.eight_bit() {
        // 2.
        let seven_bit = seven_bit.unwrap_or_else(|why| panic!("an ASCII message refused: {why}\n{}", show(message)));
        assert_eq!((seven_bit.size, seven_bit.parts.as_str()), (size, ""), "seven_bit() of\n{}", show(message));
        assert_eq!(spool.size_in(Form::SevenBit), size);
        let converted = collect(&spool, Form::SevenBit);
        assert!(converted == message, "the 7-bit form of an ASCII message differs\n{}", show(&converted));
        return;
    }

    match seven_bit {
        Ok(seven_bit) => {
            // 3.
            let converted = collect(&spool, Form::SevenBit);
            assert!(
                converted.is_ascii(),
                "the 7-bit form has 8-bit bytes\n{}\nconverted\n{}",
                show(message),
                show(&converted)
            );
            let converted_size = message_size(&converted);
            assert_eq!(
                seven_bit.size,
                converted_size,
                "reported size of\n{}\nconverted\n{}",
                show(message),
                show(&converted)
            );
            assert_eq!(spool.size_in(Form::SevenBit), converted_size, "size_in(SevenBit)");
            assert!(collect(&spool, Form::SevenBit) == converted, "a second run differs");
            assert!(!seven_bit.parts.is_empty(), "converted, but no part listed, for\n{}", show(message));
            if let Some(expect) = expect {
                oracle(message, &converted);
                assert_eq!(
                    Ok(seven_bit.parts.as_str()),
                    expect.outcome().as_deref().map_err(|e| e.as_str()),
                    "the outcome for\n{}\nconverted\n{}",
                    show(message),
                    show(&converted),
                );
            }
        }
        Err(why) => {
            // 5.
            assert!(
                documented_reason(&why),
                "seven_bit() refused for a reason not documented: {why:?}\n{}",
                show(message)
            );
            if why == "the message's header has 8-bit bytes" {
                let head = &message[..server_head_end(message)];
                assert!(!head.is_ascii(), "{why}, but the header is ASCII:\n{}", show(message));
            }
            if let Some(expect) = expect {
                assert_eq!(Err(why), expect.outcome(), "the outcome for\n{}", show(message));
            }
        }
    }
}

/// Whether `why` is one of the manual's reasons, in the words of `seven_bit()`.
fn documented_reason(why: &str) -> bool {
    let part = |p: &str| {
        p == "the message"
            || p.strip_prefix("part ").is_some_and(|n| {
                !n.is_empty() && n.split('.').all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            })
    };
    if why == "the message's header has 8-bit bytes" {
        return true;
    }
    if let Some(p) = why.strip_prefix("the header of the message in ") {
        if let Some(p) = p.strip_suffix(" has 8-bit bytes").or_else(|| p.strip_suffix(" is larger than 1 MiB")) {
            return part(p);
        }
    }
    if let Some(p) = why.strip_prefix("the header of ").and_then(|p| p.strip_suffix(" has 8-bit bytes")) {
        return part(p);
    }
    if let Some(p) = why.strip_prefix("the preamble or epilogue of ").and_then(|p| p.strip_suffix(" has 8-bit bytes")) {
        return part(p);
    }
    if let Some(rest) = why.strip_suffix(" but has 8-bit bytes") {
        if let Some((p, encoding)) = rest.split_once(" is declared ") {
            return part(p) && !matches!(encoding, "7bit" | "8bit" | "binary");
        }
    }
    if let Some(rest) = why.strip_suffix(", whose body may not be re-encoded (RFC 2046)") {
        if let Some((p, media_type)) = rest.split_once(" is message/") {
            return part(p) && !media_type.is_empty() && media_type != "rfc822";
        }
        // A multipart without a boundary: the walker takes it for a leaf.
        if let Some((p, media_type)) = rest.split_once(" is multipart/") {
            return part(p) && !media_type.is_empty();
        }
    }
    false
}

/// Where the header block ends as a server reads the message: after the first empty line,
/// lines ending CRLF, LF or a bare CR (the DATA encoder's reading); the whole message when
/// there is none.
fn server_head_end(message: &[u8]) -> usize {
    let mut at = 0;
    while at < message.len() {
        let end = message[at..].iter().position(|&b| b == b'\r' || b == b'\n').map_or(message.len(), |i| at + i);
        let next = match &message[end..] {
            [b'\r', b'\n', ..] => end + 2,
            [] => end,
            _ => end + 1,
        };
        if end == at && next > end {
            return next;
        }
        at = next;
    }
    message.len()
}

// ---- The oracle -----------------------------------------------------------------------

fn oracle(message: &[u8], converted: &[u8]) {
    let a_bytes = normalised(message);
    let b_bytes = normalised(converted);
    let a = mailparse::parse_mail(&a_bytes).expect("mailparse takes the input");
    let b = mailparse::parse_mail(&b_bytes).expect("mailparse takes the converted message");
    let context = || format!("input\n{}\nconverted\n{}", show(message), show(converted));
    if let Err(why) = same_entity(&a, &b, "the message") {
        panic!("oracle: {why}\n{}", context());
    }
}

fn cte_values(entity: &ParsedMail) -> Vec<Vec<u8>> {
    entity
        .headers
        .iter()
        .filter(|h| h.get_key_ref().eq_ignore_ascii_case("content-transfer-encoding"))
        .map(|h| h.get_value_raw().trim_ascii().to_ascii_lowercase())
        .collect()
}

fn other_fields(entity: &ParsedMail) -> Vec<(String, Vec<u8>)> {
    entity
        .headers
        .iter()
        .filter(|h| !h.get_key_ref().eq_ignore_ascii_case("content-transfer-encoding"))
        .map(|h| (h.get_key_ref().into_owned(), h.get_value_raw().to_vec()))
        .collect()
}

fn raw_body<'a>(entity: &'a ParsedMail<'a>) -> &'a [u8] {
    match entity.get_body_encoded() {
        Body::Base64(b) | Body::QuotedPrintable(b) => b.get_raw(),
        Body::SevenBit(b) | Body::EightBit(b) => b.get_raw(),
        Body::Binary(b) => b.get_raw(),
    }
}

/// Compares entity `a` (as sent with 8BITMIME) and `b` (converted), named `name`.
fn same_entity(a: &ParsedMail, b: &ParsedMail, name: &str) -> Result<(), String> {
    let mime = a.ctype.mimetype.as_str();
    if mime != b.ctype.mimetype || a.ctype.params != b.ctype.params {
        return Err(format!(
            "{name}: type {mime} {:?} became {} {:?}",
            a.ctype.params, b.ctype.mimetype, b.ctype.params
        ));
    }
    let (fields_a, fields_b) = (other_fields(a), other_fields(b));
    if fields_a != fields_b {
        return Err(format!("{name}: header fields {fields_a:?} became {fields_b:?}"));
    }
    let multipart = mime.starts_with("multipart") && a.ctype.params.contains_key("boundary");
    let rfc822 = mime == "message/rfc822";
    let eight_bit_leaf = !multipart && !rfc822 && !raw_body(a).is_ascii();
    let (cte_a, cte_b) = (cte_values(a), cte_values(b));
    let expected_cte: Vec<Vec<u8>> = if eight_bit_leaf {
        let name: &[u8] = if mime.starts_with("text/") { b"quoted-printable" } else { b"base64" };
        vec![name.to_vec()]
    } else if cte_a.first().is_some_and(|v| v == b"8bit") {
        vec![b"7bit".to_vec()]
    } else {
        cte_a.clone()
    };
    if cte_b != expected_cte {
        return Err(format!(
            "{name}: Content-Transfer-Encoding {:?} became {:?}, expected {:?}",
            cte_a.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>(),
            cte_b.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>(),
            expected_cte.iter().map(|v| String::from_utf8_lossy(v)).collect::<Vec<_>>(),
        ));
    }
    if multipart {
        if a.subparts.len() != b.subparts.len() {
            return Err(format!("{name}: {} parts became {}", a.subparts.len(), b.subparts.len()));
        }
        if raw_body(a) != raw_body(b) {
            return Err(format!("{name}: the preamble {:?} became {:?}", show(raw_body(a)), show(raw_body(b))));
        }
        for (i, (pa, pb)) in a.subparts.iter().zip(&b.subparts).enumerate() {
            same_entity(pa, pb, &format!("{name} > part {}", i + 1))?;
        }
        return Ok(());
    }
    if rfc822 {
        // The body as it is (the walker reads it so, whatever the encoding says; the
        // generator gives message/rfc822 only identity encodings).
        let inner_a = mailparse::parse_mail(raw_body(a)).map_err(|e| format!("{name}: inner message (a): {e}"))?;
        let inner_b = mailparse::parse_mail(raw_body(b)).map_err(|e| format!("{name}: inner message (b): {e}"))?;
        return same_entity(&inner_a, &inner_b, &format!("{name} > message"));
    }
    let (body_a, body_b) = (a.get_body_raw().map_err(|e| e.to_string()), b.get_body_raw().map_err(|e| e.to_string()));
    if body_a != body_b {
        return Err(format!(
            "{name} ({mime}): decodes to {:?} with 8BITMIME but {:?} converted",
            body_a.as_deref().map(show),
            body_b.as_deref().map(show),
        ));
    }
    if eight_bit_leaf {
        let encoded = raw_body(b);
        for line in encoded.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > 76 {
                return Err(format!("{name}: an encoded line of {} characters: {}", line.len(), show(line)));
            }
            if line.starts_with(b"From ") {
                return Err(format!("{name}: an encoded line starts with From: {}", show(line)));
            }
        }
    }
    Ok(())
}

// ---- The generator and its model ------------------------------------------------------

/// What the model predicts.
#[derive(Debug, Default)]
struct Expect {
    /// The message's own header has 8-bit bytes.
    head_8bit: bool,
    /// Why the message cannot be converted, in stream order: 8-bit bytes in a header block or
    /// in a preamble or epilogue.
    obstacles: Vec<String>,
    /// Leaves with 8-bit bytes that cannot be re-encoded, in stream order.
    leaf_errors: Vec<String>,
    /// Leaves re-encoded: `part 1 as base64`.
    conversions: Vec<String>,
    /// The first part with a NUL in its body.
    nul: Option<String>,
}

impl Expect {
    /// `seven_bit()`'s answer for an 8-bit message: the parts converted, or why not.
    fn outcome(&self) -> Result<String, String> {
        if self.head_8bit {
            return Err("the message's header has 8-bit bytes".into());
        }
        if let Some(why) = self.obstacles.first().or(self.leaf_errors.first()) {
            return Err(why.clone());
        }
        Ok(self.conversions.join(", "))
    }
}

/// A part number, shown as the crate shows one.
#[derive(Debug, Clone, Default)]
struct Id(Vec<u32>);

impl Id {
    fn child(&self, n: u32) -> Id {
        let mut v = self.0.clone();
        v.push(n);
        Id(v)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the message");
        }
        let numbers: Vec<String> = self.0.iter().map(u32::to_string).collect();
        write!(f, "part {}", numbers.join("."))
    }
}

/// What a header block heads (the walker's distinction, which decides numbering and the
/// wording of an 8-bit header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heads {
    Message,
    Part,
    Forwarded,
    ForwardedPart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Other,
    NoType,
    Multipart,
    Rfc822,
    MessageOther,
}

const TEXT_TYPES: [&str; 4] = ["text/plain; charset=utf-8", "text/html", "Text/Plain", "text/x-fuzz; format=flowed"];
const OTHER_TYPES: [&str; 4] =
    ["application/octet-stream", "image/png", "application/pdf; name=\"a.pdf\"", "Application/X-Fuzz"];
const MESSAGE_TYPES: [&str; 4] = [
    "message/partial; id=\"x@y\"; number=1",
    "message/external-body; access-type=x",
    "message/delivery-status",
    "Message/Global",
];
const MULTIPART_TYPES: [&str; 4] =
    ["multipart/mixed", "multipart/alternative", "multipart/digest", "Multipart/Related"];
const CONTENT_TYPE: [&str; 3] = ["Content-Type", "content-type", "CONTENT-TYPE"];
const CTE_NAME: [&str; 3] = ["Content-Transfer-Encoding", "content-transfer-encoding", "Content-transfer-encoding"];

struct Gen<'a> {
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    /// 0 CRLF, 1 LF, 2 CR, 3 chosen per line.
    eol_style: u8,
    allow_nul: bool,
    entities: usize,
    multiparts: usize,
    /// Boundaries of the multiparts being written.
    scope: Vec<Vec<u8>>,
    /// Where the message's own header block ends, once written.
    head_end: Option<usize>,
    /// The first leaf's content starts with a line that puts a 256 KiB chunk boundary of
    /// the crate's reads a few bytes before its end.
    huge: bool,
    expect: Expect,
}

fn generate(input: &[u8]) -> (Vec<u8>, Expect) {
    let mut g = Gen {
        input,
        pos: 0,
        out: Vec::new(),
        eol_style: 0,
        allow_nul: false,
        entities: 0,
        multiparts: 0,
        scope: Vec::new(),
        head_end: None,
        huge: false,
        expect: Expect::default(),
    };
    let flags = g.byte();
    g.eol_style = flags & 3;
    g.allow_nul = flags & 4 != 0;
    let unfinished = flags & 8 != 0;
    g.huge = flags & 0xf0 == 0xf0;
    g.entity(Heads::Message, Id::default(), 0, false);
    if !unfinished {
        g.eol();
    }
    (g.out, g.expect)
}

impl Gen<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn choose(&mut self, n: u8) -> usize {
        usize::from(self.byte() % n)
    }

    fn eol(&mut self) {
        let style = if self.eol_style == 3 { self.byte() % 3 } else { self.eol_style };
        match style {
            // An LF right after a bare CR would join its line end.
            1 if !self.out.ends_with(b"\r") => self.out.push(b'\n'),
            2 => self.out.push(b'\r'),
            _ => self.out.extend_from_slice(b"\r\n"),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A header field value: printable ASCII, or raw bytes (8-bit ones included; CR, LF
    /// and NUL become `_`). Returns whether it has 8-bit bytes.
    fn field_value(&mut self) -> bool {
        let raw = self.byte().is_multiple_of(8);
        let len = self.byte() % 24;
        let mut eight_bit = false;
        for _ in 0..len {
            let b = self.byte();
            let b = if raw {
                match b {
                    b'\r' | b'\n' | 0 => b'_',
                    b => b,
                }
            } else {
                b % 95 + 32
            };
            eight_bit |= b >= 128;
            self.out.push(b);
        }
        eight_bit
    }

    /// Some `X-Fuzz` fields; returns whether any has 8-bit bytes.
    fn extra_fields(&mut self, most: u8) -> bool {
        let n = self.byte() % (most + 1);
        let mut eight_bit = false;
        for i in 0..n {
            self.put(format!("X-Fuzz-{i}: ").as_bytes());
            eight_bit |= self.field_value();
            if self.byte().is_multiple_of(4) {
                // Folded.
                self.eol();
                let fold: &[u8] = if self.byte().is_multiple_of(2) { b" " } else { b"\t" };
                self.put(fold);
                self.put(b"more");
                eight_bit |= self.field_value();
            }
            self.eol();
        }
        eight_bit
    }

    /// Writes content lines; returns the content (for the model).
    fn content(&mut self) -> Vec<u8> {
        let start = self.out.len();
        if std::mem::take(&mut self.huge) {
            // The crate reads the body a chunk at a time from its start, and a re-encoded
            // content from the content's start.
            const CHUNK: usize = tclsmtp::spool::CHUNK;
            let base = if self.byte().is_multiple_of(2) { self.head_end.unwrap_or(0) } else { start };
            let before = usize::from(self.byte() % 8);
            let fill = match self.byte() {
                b'\r' | b'\n' => b'\xe9',
                0 if !self.allow_nul => 0x80,
                b => b,
            };
            let len = (base + CHUNK).saturating_sub(before + start);
            self.out.extend(std::iter::repeat_n(fill, len));
            self.eol();
        }
        let lines = self.byte() % 6;
        for i in 0..lines {
            let line_start = self.out.len();
            let prefix: &[u8] = match self.byte() % 10 {
                0 => b"From ",
                1 => b".",
                2 => b"..",
                3 => b"--",
                4 => b"F",
                5 => b"From",
                6 => b" ",
                _ => b"",
            };
            self.put(prefix);
            let len = self.byte() % 48;
            for _ in 0..len {
                let b = match self.byte() {
                    b'\r' => b'r',
                    b'\n' => b'n',
                    0 if !self.allow_nul => 0x80,
                    b => b,
                };
                self.out.push(b);
            }
            let repeat = self.byte();
            if repeat >= 224 {
                // A long line: its last byte (or `=`) repeated.
                let b = self.out.last().copied().filter(|_| self.out.len() > line_start).unwrap_or(b'=');
                let count = usize::from(repeat - 224) * 40 + 20;
                self.out.extend(std::iter::repeat_n(b, count));
            }
            let trailing: &[u8] = match self.byte() % 6 {
                0 => b" ",
                1 => b"\t",
                2 => b"  \t ",
                _ => b"",
            };
            self.put(trailing);
            // A line that would be a delimiter of a multipart it is in.
            let line = &self.out[line_start..];
            if line.starts_with(b"--") && self.scope.iter().any(|b| line[2..].starts_with(b)) {
                self.out[line_start + 1] = b'+';
            }
            if i + 1 < lines || !self.byte().is_multiple_of(3) {
                self.eol();
            }
        }
        self.out[start..].to_vec()
    }

    /// Bytes encoded (a leaf declared quoted-printable or base64 given a valid body), in
    /// lines of at most 76 characters.
    fn encoded_content(&mut self, base64: bool) {
        let mut raw = Vec::new();
        let len = self.byte() % 64;
        for _ in 0..len {
            raw.push(self.byte());
        }
        let lines = if base64 { base64_lines(&raw) } else { qp_lines(&raw) };
        for line in lines {
            self.put(&line);
            self.eol();
        }
    }

    fn note_nul(&mut self, bytes: &[u8], part: &Id) {
        if bytes.contains(&0) && self.expect.nul.is_none() {
            self.expect.nul = Some(part.to_string());
        }
    }

    /// Writes an entity whose header block heads `heads`, numbered `id` (the walker's
    /// number for the block: for a forwarded message, the part that holds it).
    fn entity(&mut self, heads: Heads, id: Id, depth: usize, in_digest: bool) {
        self.entities += 1;
        let deep = depth < MAX_DEPTH && self.entities < MAX_ENTITIES && self.multiparts < MAX_MULTIPARTS;
        let mut kind = match self.byte() % 9 {
            0 | 1 => Kind::Text,
            2 => Kind::Other,
            3 => Kind::NoType,
            4 | 5 if deep => Kind::Multipart,
            6 if deep => Kind::Rfc822,
            7 => Kind::MessageOther,
            _ => Kind::Text,
        };
        if kind == Kind::NoType && in_digest && !deep {
            kind = Kind::Text;
        }
        // The header block.
        let mut header_8bit = self.extra_fields(2);
        let ct_name = CONTENT_TYPE[self.choose(3)];
        let pick = self.choose(4);
        let media_type: String;
        let mut boundary = Vec::new();
        match kind {
            Kind::Text | Kind::Other | Kind::MessageOther => {
                let value = match kind {
                    Kind::Text => TEXT_TYPES[pick],
                    Kind::Other => OTHER_TYPES[pick],
                    _ => MESSAGE_TYPES[pick],
                };
                media_type = value.split(';').next().unwrap_or_default().to_ascii_lowercase();
                self.put(format!("{ct_name}: {value}").as_bytes());
                self.eol();
            }
            Kind::NoType => {
                media_type = if in_digest { "message/rfc822".into() } else { "text/plain".into() };
            }
            Kind::Rfc822 => {
                media_type = "message/rfc822".into();
                self.put(format!("{ct_name}: message/rfc822").as_bytes());
                self.eol();
            }
            Kind::Multipart => {
                media_type = MULTIPART_TYPES[pick].to_ascii_lowercase();
                self.multiparts += 1;
                let quoted = self.byte().is_multiple_of(2);
                boundary = format!("{}{:02}", if quoted { "=_" } else { "b_" }, self.multiparts).into_bytes();
                self.put(format!("{ct_name}: {};", MULTIPART_TYPES[pick]).as_bytes());
                if self.byte().is_multiple_of(2) {
                    self.eol();
                    self.put(b"\t");
                } else {
                    self.put(b" ");
                }
                let name = if self.byte().is_multiple_of(4) { "BOUNDARY" } else { "boundary" };
                let shown = String::from_utf8_lossy(&boundary).into_owned();
                if quoted {
                    self.put(format!("{name}=\"{shown}\"").as_bytes());
                } else {
                    self.put(format!("{name}={shown}").as_bytes());
                }
                self.eol();
            }
        }
        let leaf =
            matches!(kind, Kind::Text | Kind::Other | Kind::MessageOther) || (kind == Kind::NoType && !in_digest);
        let choices: &[&str] = if leaf {
            &[
                "",
                "7bit",
                "8bit",
                "binary",
                "quoted-printable",
                "base64",
                "8BIT",
                "x-unknown",
                "Quoted-Printable",
                "BASE64",
            ]
        } else {
            &["", "7bit", "8bit", "binary", "8Bit", ""]
        };
        let cte = choices[self.choose(choices.len() as u8)];
        if !cte.is_empty() {
            let name = CTE_NAME[self.choose(3)];
            self.put(format!("{name}: {cte}").as_bytes());
            self.eol();
            if self.byte().is_multiple_of(8) {
                // A second field: the first one counts.
                let second = choices[self.choose(choices.len() as u8)];
                self.put(format!("{name}: {second}").as_bytes());
                self.eol();
            }
        }
        let cte = cte.to_ascii_lowercase();
        let cte = cte.as_str();
        header_8bit |= self.extra_fields(1);
        self.eol();
        if heads == Heads::Message {
            self.head_end = Some(self.out.len());
        }
        if header_8bit {
            match heads {
                Heads::Message => self.expect.head_8bit = true,
                Heads::Forwarded => {
                    self.expect.obstacles.push(format!("the header of the message in {id} has 8-bit bytes"))
                }
                Heads::Part | Heads::ForwardedPart => {
                    self.expect.obstacles.push(format!("the header of {id} has 8-bit bytes"))
                }
            }
        }

        // The body.
        if kind == Kind::Multipart {
            self.multipart(heads, id, depth, &boundary, media_type == "multipart/digest");
            return;
        }
        let body_id = if heads == Heads::Forwarded { id.child(1) } else { id.clone() };
        if media_type == "message/rfc822" {
            let inner = if heads == Heads::Message { body_id.child(1) } else { body_id };
            self.entity(Heads::Forwarded, inner, depth + 1, false);
            return;
        }
        let encoded = matches!(cte, "quoted-printable" | "base64") && self.byte().is_multiple_of(2);
        if encoded {
            self.encoded_content(cte == "base64");
            return;
        }
        let content = self.content();
        self.note_nul(&content, &body_id);
        if content.is_ascii() {
            return;
        }
        let label = cte.to_ascii_lowercase();
        if !matches!(label.as_str(), "" | "7bit" | "8bit" | "binary") {
            self.expect.leaf_errors.push(format!("{body_id} is declared {label} but has 8-bit bytes"));
        } else if media_type.starts_with("message/") || media_type.starts_with("multipart/") {
            self.expect
                .leaf_errors
                .push(format!("{body_id} is {media_type}, whose body may not be re-encoded (RFC 2046)"));
        } else {
            let encoding = if media_type.starts_with("text/") { "quoted-printable" } else { "base64" };
            self.expect.conversions.push(format!("{body_id} as {encoding}"));
        }
    }

    fn multipart(&mut self, heads: Heads, id: Id, depth: usize, boundary: &[u8], digest: bool) {
        self.scope.push(boundary.to_vec());
        let child_heads =
            if matches!(heads, Heads::Forwarded | Heads::ForwardedPart) { Heads::ForwardedPart } else { Heads::Part };
        let preamble_8bit = |g: &mut Gen, bytes: &[u8]| {
            if !bytes.is_ascii() {
                g.expect.obstacles.push(format!("the preamble or epilogue of {id} has 8-bit bytes"));
            }
            g.note_nul(bytes, &id);
        };
        if self.byte().is_multiple_of(3) {
            let preamble = self.content();
            preamble_8bit(self, &preamble);
            self.eol();
        }
        let children = 1 + self.byte() % 3;
        for n in 1..=children {
            if n > 1 {
                self.eol();
            }
            self.delimiter(boundary, false);
            self.eol();
            self.entity(child_heads, id.child(u32::from(n)), depth + 1, digest);
        }
        if !self.byte().is_multiple_of(5) {
            self.eol();
            self.delimiter(boundary, true);
            if self.byte().is_multiple_of(3) {
                self.eol();
                let epilogue = self.content();
                preamble_8bit(self, &epilogue);
            }
        }
        self.scope.pop();
    }

    fn delimiter(&mut self, boundary: &[u8], closing: bool) {
        self.put(b"--");
        self.put(boundary);
        if closing {
            self.put(b"--");
        }
        let padding: &[u8] = match self.byte() % 8 {
            0 => b" ",
            1 => b"\t ",
            _ => b"",
        };
        self.put(padding);
    }
}

/// Base64 (RFC 4648) in lines of 72 characters.
fn base64_lines(data: &[u8]) -> Vec<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out.chunks(72).map(<[u8]>::to_vec).collect()
}

/// Quoted-printable: every byte but printable ASCII other than `=` as `=XX` (spaces too, so
/// no line ends with one), soft breaks keeping lines within 76 characters.
fn qp_lines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = vec![Vec::new()];
    for &b in data {
        let token = if (33..=126).contains(&b) && b != b'=' { vec![b] } else { format!("={b:02X}").into_bytes() };
        let line = lines.last_mut().expect("a line");
        if line.len() + token.len() > 75 {
            line.push(b'=');
            lines.push(token);
        } else {
            line.extend_from_slice(&token);
        }
    }
    lines
}
