//! Header blocks as they go on the wire, the message's own and every MIME part's:
//! mime's known rendering artefacts repaired, then each block checked to hold nothing but
//! well-formed fields and folds, each field one that the mime token or the options set.
//!
//! Lines are split as the DATA encoder splits them (CRLF, LF and a bare CR each end a
//! line: [`wire_lines`](crate::smtp::wire_lines)), so what is checked is what the
//! server reads. The check is the backstop behind
//! the input checks ([`super::check_message_field`]): whatever path mime takes to write
//! header text (a value, the content type, a parameter), a line break inside it shows
//! up here as a line that is no field or fold, or as a field nobody set.

use super::Error;
use crate::smtp::wire_lines as lines;

fn is_fold(content: &[u8]) -> bool {
    matches!(content.first(), Some(b' ' | b'\t'))
}

/// The name of the field that `content` starts, if it starts a well-formed one: printable
/// ASCII other than `:` (RFC 5322 ftext), then `:`.
fn field_name(content: &[u8]) -> Option<&str> {
    let colon = content.iter().position(|&b| b == b':')?;
    let name = content.get(..colon)?;
    if name.is_empty() || !name.iter().all(|b| (33..=126).contains(b)) {
        return None;
    }
    std::str::from_utf8(name).ok()
}

/// Whether `content` (a fold line) is one parameter `boundary=…` of a Content-Type.
fn is_boundary_parameter(content: &[u8]) -> bool {
    let trimmed = content.trim_ascii_start();
    trimmed.len() >= 9 && trimmed.get(..9).is_some_and(|p| p.eq_ignore_ascii_case(b"boundary="))
}

/// Whether `content` starts a Content-Type field of a multipart type.
fn is_multipart_content_type(content: &[u8]) -> bool {
    let Some(name) = field_name(content) else { return false };
    let value = content.get(name.len() + 1..).unwrap_or_default().trim_ascii_start();
    name.eq_ignore_ascii_case("content-type") && value.len() >= 10 && value[..10].eq_ignore_ascii_case(b"multipart/")
}

/// Repairs what tcllib's mime 1.7.0 (tcllib 1.21) writes wrongly into a header block, or
/// returns `None` when there is nothing to repair (the bytes then stay as they are):
///
/// - A multipart Content-Type gets its boundary twice: `mime::getContentType` appends a
///   boundary of its own to the field, then `mime::copymessageaux` writes a line `;` and a
///   fold `boundary="…"` with the boundary that the body then uses (the two differ when
///   the clock's second turns between them). The `;` line is neither a field nor a fold
///   (strict servers end the header section there), so the repair makes one field: the
///   field's own boundary fold dropped, the second one, which the body uses, appended.
/// - A leaf part gets its Content-Transfer-Encoding field twice (once from the token's
///   header, once from `copymessageaux`): an exact repeat is dropped.
///
/// Only these exact shapes are touched: a `;` line after any other field, or two
/// different Content-Transfer-Encodings, are left for [`check`] to judge.
pub fn repair(block: &[u8]) -> Option<Vec<u8>> {
    let all: Vec<(&[u8], &[u8])> = lines(block).collect();
    let mut keep: Vec<(&[u8], &[u8])> = Vec::with_capacity(all.len());
    // Appended to the line before a moved boundary: the `;` that separates it.
    let mut semicolon_at: Vec<usize> = Vec::new();
    let mut encodings: Vec<&[u8]> = Vec::new();
    let mut repaired = false;
    let mut i = 0;
    while let Some(&(content, end)) = all.get(i) {
        let artefact_boundary = all.get(i + 1).filter(|(next, _)| is_fold(next) && is_boundary_parameter(next));
        if let (b";", Some(&boundary)) = (content, artefact_boundary) {
            // The field this `;` follows: back over its folds to its first line.
            let start = keep.iter().rposition(|(c, _)| !is_fold(c));
            if let Some(start) = start.filter(|&s| keep.get(s).is_some_and(|(c, _)| is_multipart_content_type(c))) {
                let mut own = keep.split_off(start);
                own.retain(|(c, _)| !(is_fold(c) && is_boundary_parameter(c)));
                if own.last().is_some_and(|(c, _)| !c.trim_ascii_end().ends_with(b";")) {
                    semicolon_at.push(keep.len() + own.len() - 1);
                }
                keep.extend(own);
                keep.push(boundary);
                repaired = true;
                i += 2;
                continue;
            }
        }
        if let Some(name) = field_name(content).filter(|n| n.eq_ignore_ascii_case("content-transfer-encoding")) {
            let value = content.get(name.len() + 1..).unwrap_or_default().trim_ascii();
            let single_line = all.get(i + 1).is_none_or(|(next, _)| !is_fold(next));
            if single_line && encodings.iter().any(|e| e.eq_ignore_ascii_case(value)) {
                repaired = true;
                i += 1;
                continue;
            }
            encodings.push(value);
        }
        keep.push((content, end));
        i += 1;
    }
    if !repaired {
        return None;
    }
    let mut out = Vec::with_capacity(block.len());
    for (n, (content, end)) in keep.iter().enumerate() {
        out.extend_from_slice(content);
        if semicolon_at.contains(&n) {
            out.push(b';');
        }
        out.extend_from_slice(end);
    }
    Some(out)
}

/// Checks that the header block `block` of `part` (`the message`, `part 1.2`) holds only
/// well-formed fields and folds (a fold holds more than white space), up to the empty
/// line that ends it, and that every field's name is one `declared` accepts.
pub fn check(block: &[u8], part: &str, declared: impl Fn(&str) -> bool) -> Result<(), Error> {
    let mut field: Option<&str> = None;
    let malformed = |field: Option<&str>, content: &[u8]| Error::MalformedHeader {
        part: part.to_string(),
        after: field.map(str::to_string),
        line: String::from_utf8_lossy(content).into_owned(),
    };
    for (content, _) in lines(block) {
        if content.is_empty() {
            break;
        }
        if content.contains(&0) {
            return Err(malformed(field, content));
        }
        if is_fold(content) {
            if field.is_none() || content.trim_ascii().is_empty() {
                return Err(malformed(field, content));
            }
            continue;
        }
        let name = field_name(content).ok_or_else(|| malformed(field, content))?;
        if !declared(name) {
            return Err(Error::UndeclaredField { part: part.to_string(), field: name.to_string() });
        }
        field = Some(name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multipart Content-Type as mime 1.7.0 renders it, with boundaries `first` and `second`.
    fn mime_170(params: &str, first: Option<&str>, second: &str) -> String {
        let mut field = "Content-Type: multipart/mixed".to_string();
        for p in params.split(' ').filter(|p| !p.is_empty()) {
            field.push_str(&format!(";\n              {p}"));
        }
        if let Some(b) = first {
            field.push_str(&format!(";\n              boundary=\"{b}\""));
        }
        format!("MIME-Version: 1.0\n{field}\n;\n              boundary=\"{second}\"\n\n")
    }

    fn repaired(block: &str) -> String {
        String::from_utf8(repair(block.as_bytes()).expect("a repair")).unwrap()
    }

    #[test]
    fn the_doubled_boundary_becomes_one_field_with_the_body_s_boundary() {
        assert_eq!(
            repaired(&mime_170("", Some("A"), "B")),
            "MIME-Version: 1.0\nContent-Type: multipart/mixed;\n              boundary=\"B\"\n\n"
        );
        assert_eq!(
            repaired(&mime_170("", Some("B"), "B")),
            "MIME-Version: 1.0\nContent-Type: multipart/mixed;\n              boundary=\"B\"\n\n"
        );
    }

    #[test]
    fn other_parameters_are_kept_and_separated() {
        // With parameters, mime's getContentType adds no boundary of its own.
        let fold = "\n              ";
        assert_eq!(
            repaired(&mime_170("type=\"text/html\"", None, "B")),
            format!(
                "MIME-Version: 1.0\nContent-Type: multipart/mixed;{fold}type=\"text/html\";{fold}boundary=\"B\"\n\n"
            )
        );
        assert_eq!(
            repaired(&mime_170("a=\"1\" b=\"2\"", Some("A"), "B")),
            format!(
                "MIME-Version: 1.0\nContent-Type: multipart/mixed;{fold}a=\"1\";{fold}b=\"2\";{fold}boundary=\"B\"\n\n"
            )
        );
    }

    #[test]
    fn line_ends_are_kept_as_they_were() {
        let block = mime_170("", Some("A"), "B").replace('\n', "\r\n");
        assert_eq!(
            repaired(&block),
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n              boundary=\"B\"\r\n\r\n"
        );
    }

    #[test]
    fn a_repeated_transfer_encoding_is_dropped_and_a_different_one_kept() {
        let block = "Content-Transfer-Encoding: base64\nContent-Type: x/y\nContent-Transfer-Encoding: base64\n\n";
        assert_eq!(repaired(block), "Content-Transfer-Encoding: base64\nContent-Type: x/y\n\n");
        assert_eq!(repair(b"Content-Transfer-Encoding: base64\nContent-Transfer-Encoding: 7bit\n\n"), None);
    }

    #[test]
    fn correct_or_foreign_blocks_are_left_alone() {
        for block in [
            "Content-Type: multipart/mixed;\n  boundary=\"B\"\n\n",
            // A `;` line after a field that is not a multipart Content-Type.
            "Subject: x\n;\n  boundary=\"B\"\n\n",
            "Content-Type: text/plain\n;\n  boundary=\"B\"\n\n",
            // A `;` line not followed by a boundary fold.
            "Content-Type: multipart/mixed\n;\n  charset=x\n\n",
            "Content-Type: multipart/mixed\n;\n\n",
        ] {
            assert_eq!(repair(block.as_bytes()), None, "{block:?}");
        }
    }

    #[test]
    fn repaired_blocks_pass_the_check() {
        let block = repair(mime_170("", Some("A"), "B").as_bytes()).unwrap();
        assert_eq!(check(&block, "part 1", |_| true), Ok(()));
        let unrepaired = mime_170("", Some("A"), "B");
        assert!(matches!(check(unrepaired.as_bytes(), "part 1", |_| true), Err(Error::MalformedHeader { .. })));
    }

    #[test]
    fn fields_and_folds_pass_and_the_block_ends_at_the_empty_line() {
        let block = b"A: 1\r\n  folded\r\nB:\r\n\tx\r\n\r\nnot: checked\r\n;\r\n";
        assert_eq!(check(block, "the message", |_| true), Ok(()));
    }

    #[test]
    fn every_way_out_of_a_field_is_refused() {
        for (block, line) in [
            (&b"Subject: a\r\nX-Inj 1\r\n\r\n"[..], "X-Inj 1"),
            (b"Subject: a\rX-Inj\r\n\r\n", "X-Inj"),
            (b"Subject: a\r\n \r\n\r\n", " "),
            (b"Subject: a\r\n\t \t\r\n\r\n", "\t \t"),
            (b"Subject: a\0b\r\n\r\n", "Subject: a\0b"),
            (b"Subject: a\r\n;\r\n\r\n", ";"),
            (b" leading fold\r\n\r\n", " leading fold"),
            (b": no name\r\n\r\n", ": no name"),
            (b"Bad Name: x\r\n\r\n", "Bad Name: x"),
        ] {
            let err = check(block, "part 2", |_| true).unwrap_err();
            match err {
                Error::MalformedHeader { part, line: l, .. } => {
                    assert_eq!((part.as_str(), l.as_str()), ("part 2", line), "{block:?}")
                }
                other => panic!("{block:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_error_names_the_field_the_bad_line_follows() {
        let err = check(b"Content-Type: text/plain\r\n \r\n\r\n", "part 1.2", |_| true).unwrap_err();
        assert_eq!(
            err,
            Error::MalformedHeader { part: "part 1.2".into(), after: Some("Content-Type".into()), line: " ".into() }
        );
    }

    #[test]
    fn a_well_formed_field_nobody_set_is_refused() {
        let declared = |name: &str| name.eq_ignore_ascii_case("content-type");
        let block = b"Content-Type: text/plain;\r\n   charset=\"x\r\nX-Inj: 1\"\r\n\r\n";
        assert_eq!(
            check(block, "part 1", declared),
            Err(Error::UndeclaredField { part: "part 1".into(), field: "X-Inj".into() })
        );
    }
}
