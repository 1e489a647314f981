//! The syntax of DIGEST-MD5 challenges (RFC 2831 §7.1 and RFC 2616 §2.1's `#rule`): a comma
//! separated list of `name=token` or `name="quoted string"`, whitespace allowed around `,` and
//! `=`, empty list elements allowed. Only syntax lives here; meaning is in `digest`.
//!
//! Works on bytes so that it can neither panic on nor be confused by garbage: every read goes
//! through `slice::get`, and the work is linear in the input.

/// One `name=value` pair; `value` has its quotes and backslash escapes removed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Directive<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: Vec<u8>,
}

/// Splits a challenge into its directives, or says (without quoting the input) why it cannot.
pub(super) fn parse(input: &[u8]) -> Result<Vec<Directive<'_>>, &'static str> {
    let mut cursor = Cursor { input, pos: 0 };
    let mut directives = Vec::new();
    loop {
        cursor.skip_whitespace();
        match cursor.peek() {
            None => return Ok(directives),
            Some(b',') => {
                cursor.bump();
                continue;
            }
            Some(_) => {}
        }
        let name = cursor.take_while(is_token_byte);
        if name.is_empty() {
            return Err("expected a directive name");
        }
        cursor.skip_whitespace();
        if cursor.peek() != Some(b'=') {
            return Err("expected '=' after a directive name");
        }
        cursor.bump();
        cursor.skip_whitespace();
        let value = if cursor.peek() == Some(b'"') {
            cursor.quoted_string()?
        } else {
            let token = cursor.take_while(is_unquoted_value_byte);
            if token.is_empty() {
                return Err("missing directive value");
            }
            token.to_vec()
        };
        directives.push(Directive { name, value });
        cursor.skip_whitespace();
        match cursor.peek() {
            None | Some(b',') => {}
            Some(_) => return Err("expected ',' between directives"),
        }
    }
}

struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek();
        self.bump();
        byte
    }

    fn take_while(&mut self, accept: fn(u8) -> bool) -> &'a [u8] {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let len = rest.iter().take_while(|&&b| accept(b)).count();
        self.pos = self.pos.saturating_add(len);
        rest.get(..len).unwrap_or_default()
    }

    fn skip_whitespace(&mut self) {
        self.take_while(is_whitespace);
    }

    /// `quoted-string = <"> *(qdtext | quoted-pair) <">`, the cursor on the opening quote.
    fn quoted_string(&mut self) -> Result<Vec<u8>, &'static str> {
        self.bump();
        let mut value = Vec::new();
        loop {
            match self.next() {
                None => return Err("unterminated quoted string"),
                Some(b'"') => return Ok(value),
                Some(b'\\') => match self.next() {
                    None => return Err("unterminated quoted string"),
                    Some(escaped) => value.push(escaped),
                },
                Some(b) if is_control(b) => return Err("control character in a quoted string"),
                Some(b) => value.push(b),
            }
        }
    }
}

/// RFC 2616's LWS, with line folding reduced to "any of these bytes".
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7F
}

/// RFC 2616's `token` characters: visible ASCII except separators.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An unquoted value ends at a comma or whitespace. Lenient beyond `token` (it admits `/`,
/// `=`, `:` ...) so that a server sending, say, an unquoted base64 nonce still works.
fn is_unquoted_value_byte(b: u8) -> bool {
    !is_whitespace(b) && !is_control(b) && b != b',' && b != b'"'
}

#[cfg(test)]
mod tests {
    use super::{parse, Directive};

    fn pairs(input: &[u8]) -> Vec<(String, String)> {
        parse(input)
            .unwrap()
            .into_iter()
            .map(|Directive { name, value }| {
                (String::from_utf8(name.to_vec()).unwrap(), String::from_utf8(value).unwrap())
            })
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn tokens_and_quoted_strings() {
        assert_eq!(
            pairs(br#"nonce="abc",qop="auth",charset=utf-8,algorithm=md5-sess"#),
            vec![pair("nonce", "abc"), pair("qop", "auth"), pair("charset", "utf-8"), pair("algorithm", "md5-sess")]
        );
    }

    #[test]
    fn escaped_quotes_and_commas_inside_quoted_strings() {
        assert_eq!(
            pairs(br#"realm="a \"b\", c\\d",nonce="x""#),
            vec![pair("realm", r#"a "b", c\d"#), pair("nonce", "x")]
        );
    }

    #[test]
    fn whitespace_around_separators_and_empty_elements() {
        assert_eq!(
            pairs(b" , nonce = \"n\" ,\t,\r\n qop\t=\"auth\" , "),
            vec![pair("nonce", "n"), pair("qop", "auth")]
        );
    }

    #[test]
    fn empty_input_has_no_directives() {
        assert_eq!(parse(b"").unwrap(), vec![]);
        assert_eq!(parse(b" ,, ").unwrap(), vec![]);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        for input in [
            &b"nonce=\"abc"[..],
            b"nonce=\"abc\\",
            b"nonce",
            b"nonce=",
            b"nonce=,qop=auth",
            b"=abc",
            b"nonce=\"a\"b",
            b"nonce=a b",
            b"nonce=\"a\x00b\"",
            b"\xff\xfe",
            b"no\xffnce=a",
        ] {
            assert!(parse(input).is_err(), "accepted {input:?}");
        }
    }

    #[test]
    fn non_ascii_bytes_are_kept_in_quoted_values() {
        let parsed = parse(b"realm=\"r\xe4\"").unwrap();
        assert_eq!(parsed[0].value, b"r\xe4");
    }
}
