//! Random tokens: DIGEST-MD5 client nonces, Message-IDs, MIME boundaries.

/// `len` random bytes from OpenSSL (the OS's random source), in lowercase hex.
pub fn hex(len: usize) -> Result<String, String> {
    let mut bytes = vec![0u8; len];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| e.to_string())?;
    Ok(crate::sasl::hex(&bytes))
}
