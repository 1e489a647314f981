//! CRAM-MD5 (RFC 2195): `username SP hex(HMAC-MD5(password, challenge))`.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use super::{hex, Credentials};
use crate::secret::Secret;

/// MD5's block size, which is also the size of an HMAC-MD5 key block (RFC 2104).
const BLOCK_LEN: usize = 64;

/// The one response, for a challenge taken as raw bytes (normally `<msg-id>`; an empty one is
/// answered too, like any other).
pub(super) fn response(credentials: &Credentials, challenge: &[u8]) -> Secret {
    // RFC 2104's key block, built here so that no fallible call is needed: a key longer than
    // a block is replaced by its hash, then zero-padded.
    let password = credentials.password.expose();
    let hashed;
    let key: &[u8] = if password.len() > BLOCK_LEN {
        hashed = Md5::digest(password);
        &hashed
    } else {
        password
    };
    let mut block = [0u8; BLOCK_LEN];
    for (slot, byte) in block.iter_mut().zip(key) {
        *slot = *byte;
    }
    let mut mac = <Hmac<Md5> as KeyInit>::new(&block.into());
    block.fill(0);
    std::hint::black_box(&block);
    mac.update(challenge);
    let digest = hex(&mac.finalize().into_bytes());

    let username = credentials.username.as_bytes();
    let mut line = Vec::with_capacity(username.len() + 1 + digest.len());
    line.extend_from_slice(username);
    line.push(b' ');
    line.extend_from_slice(digest.as_bytes());
    Secret::new(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(password: &[u8], challenge: &[u8]) -> String {
        let credentials = Credentials { username: "tim".into(), password: Secret::new(password) };
        String::from_utf8(response(&credentials, challenge).expose().to_vec()).unwrap()
    }

    #[test]
    fn rfc_2195_example() {
        assert_eq!(
            answer(b"tanstaaftanstaaf", b"<1896.697170952@postoffice.reston.mci.net>"),
            "tim b913a602c7eda7a495b4e6e7334d3890"
        );
    }

    #[test]
    fn rfc_2202_hmac_md5_long_key() {
        // RFC 2202 test case 6: an 80-byte key, longer than the block, is hashed first.
        assert_eq!(
            answer(&[0xaa; 80], b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "tim 6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd"
        );
    }

    #[test]
    fn rfc_2202_hmac_md5_block_sized_and_short_keys() {
        assert_eq!(answer(b"Jefe", b"what do ya want for nothing?"), "tim 750c783e6ab0b503eaa86e310a5db738");
        let mut key = vec![0x0b; 16];
        assert_eq!(answer(&key, b"Hi There"), "tim 9294727a3638bb1c13f48ef8158bfc9d");
        key.resize(64, 0);
        assert_eq!(answer(&key, b"Hi There"), "tim 9294727a3638bb1c13f48ef8158bfc9d");
    }
}
