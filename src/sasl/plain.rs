//! PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, with an empty authzid (act as oneself).

use super::Credentials;
use crate::secret::Secret;

/// The one response: `\0username\0password`, UTF-8 as RFC 4616 requires.
pub(super) fn response(credentials: &Credentials) -> Secret {
    let username = credentials.username.as_bytes();
    let password = credentials.password.expose();
    let mut message = Vec::with_capacity(2 + username.len() + password.len());
    message.push(0);
    message.extend_from_slice(username);
    message.push(0);
    message.extend_from_slice(password);
    Secret::new(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_authzid_then_user_then_password() {
        let credentials = Credentials { username: "alice".into(), password: Secret::from_text("s3cret") };
        assert_eq!(response(&credentials).expose(), b"\0alice\0s3cret");
    }

    #[test]
    fn non_ascii_is_utf8() {
        let credentials = Credentials { username: "ä".into(), password: Secret::from_text("ä") };
        assert_eq!(response(&credentials).expose(), b"\0\xc3\xa4\0\xc3\xa4");
    }
}
