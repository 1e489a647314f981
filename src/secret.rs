//! [`Secret`]: bytes that must not leak into logs, error messages or freed memory.

use std::fmt;

/// A credential or anything derived from one (a password, a SASL response that contains or
/// is computed from a password, its base64 form).
///
/// Why a type: so that a secret cannot be printed by accident (`Debug` prints `***` and there
/// is no `Display`), so that every read of it is a visible [`Secret::expose`] call, and so that
/// its bytes are overwritten with zeros when it is dropped instead of lingering in freed memory.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Takes ownership of the bytes (a `String` or `Vec<u8>` is moved in without a copy).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    /// The UTF-8 bytes of a text credential, e.g. a password given as a Tcl string.
    ///
    /// Named `from_text` rather than `from_text` so it is not mistaken for `FromStr`, which
    /// would be fallible.
    pub fn from_text(s: &str) -> Secret {
        Secret(s.as_bytes().to_vec())
    }

    /// The bytes themselves: the one way to read a secret, so that every use is easy to find.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, to fill in place (a key derived into a buffer that is a secret from the
    /// start).
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Whether there are no bytes (e.g. an empty password, or the empty SASL response that
    /// acknowledges DIGEST-MD5's `rspauth`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    /// Never the bytes: a secret inside a struct that derives `Debug` stays hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        for b in &mut self.0 {
            *b = 0;
        }
        // Makes the zeroed buffer observable so the writes are not removed as dead stores.
        std::hint::black_box(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn debug_prints_stars_only() {
        let secret = Secret::from_text("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{:?}", Some(secret)), "Some(***)");
    }

    #[test]
    fn from_text_is_utf8() {
        assert_eq!(Secret::from_text("ä").expose(), &[0xC3, 0xA4]);
    }

    #[test]
    fn new_takes_bytes_and_strings() {
        assert_eq!(Secret::new(vec![1u8, 2]).expose(), &[1, 2]);
        assert_eq!(Secret::new(String::from("ab")).expose(), b"ab");
    }

    #[test]
    fn empty_and_default() {
        assert!(Secret::default().is_empty());
        assert!(Secret::new(Vec::new()).is_empty());
        assert!(!Secret::from_text("x").is_empty());
    }
}
