//! LOGIN (draft-murchison-sasl-login): the user name, then the password, each as its own
//! response. The challenge texts ("Username:", aiosmtpd's "User Name\0", ...) carry no
//! information and are ignored.

use super::Credentials;
use crate::secret::Secret;

/// The response for step `step` (0 or 1), or `None` past the two steps.
pub(super) fn response(step: u8, credentials: &Credentials) -> Option<Secret> {
    match step {
        0 => Some(Secret::from_text(&credentials.username)),
        1 => Some(credentials.password.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_then_password_then_nothing() {
        let credentials = Credentials { username: "alice".into(), password: Secret::from_text("s3cret") };
        assert_eq!(response(0, &credentials).unwrap().expose(), b"alice");
        assert_eq!(response(1, &credentials).unwrap().expose(), b"s3cret");
        assert!(response(2, &credentials).is_none());
    }
}
