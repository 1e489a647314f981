//! MIME header parameters (RFC 2045 §5.1): `value; name=token; name="quoted string"`, as
//! Content-Type and Content-Disposition write them.

/// A parameter: its name as written, its value with quotes and escapes undone.
pub type Parameter<'a> = (&'a [u8], Vec<u8>);

/// Splits a Content-Type or Content-Disposition value into its first word (the media
/// type, the disposition), trimmed, and its parameters in order. A parameter without
/// `=` is skipped.
pub fn split(value: &[u8]) -> (&[u8], Vec<Parameter<'_>>) {
    let first_end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let (first, mut rest) = value.split_at(first_end);
    let mut parameters = Vec::new();
    while let Some(after) = rest.strip_prefix(b";") {
        let after = after.trim_ascii_start();
        let Some(eq) = after.iter().position(|&b| b == b'=' || b == b';') else { break };
        let (name, after) = after.split_at(eq);
        if after.first() == Some(&b';') {
            // A parameter without a value: skipped.
            rest = after;
            continue;
        }
        let (value, next) = parameter_value(after.get(1..).unwrap_or_default().trim_ascii_start());
        parameters.push((name.trim_ascii(), value));
        rest = next.trim_ascii_start();
    }
    (first.trim_ascii(), parameters)
}

/// A parameter's value (a quoted string, unquoted, or a token) and what follows it.
fn parameter_value(text: &[u8]) -> (Vec<u8>, &[u8]) {
    let Some(quoted) = text.strip_prefix(b"\"") else {
        let end = text.iter().position(|&b| b == b';' || b.is_ascii_whitespace()).unwrap_or(text.len());
        let (value, rest) = text.split_at(end);
        return (value.to_vec(), rest);
    };
    let mut value = Vec::new();
    let mut bytes = quoted.iter().enumerate();
    while let Some((i, &b)) = bytes.next() {
        match b {
            b'"' => return (value, quoted.get(i + 1..).unwrap_or_default()),
            b'\\' => value.extend(bytes.next().map(|(_, &escaped)| escaped)),
            _ => value.push(b),
        }
    }
    (value, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_quoted_unquoted_and_escaped() {
        let (first, parameters) =
            split(b" Multipart/Mixed ;\n charset=x;BOUNDARY=\"a \\\"b\\\"; c\" ; name=\"r\xc3\xa9\"");
        assert_eq!(first, b"Multipart/Mixed");
        let parameters: Vec<(&[u8], &[u8])> = parameters.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        assert_eq!(parameters, [(&b"charset"[..], &b"x"[..]), (b"BOUNDARY", b"a \"b\"; c"), (b"name", b"r\xc3\xa9")]);
    }

    #[test]
    fn a_parameter_without_a_value_is_skipped() {
        assert_eq!(split(b"text/plain; junk; a=b; tail"), (&b"text/plain"[..], vec![(&b"a"[..], b"b".to_vec())]));
        assert_eq!(split(b"attachment"), (&b"attachment"[..], vec![]));
        assert_eq!(split(b"x; a=\"unterminated"), (&b"x"[..], vec![(&b"a"[..], b"unterminated".to_vec())]));
    }
}
