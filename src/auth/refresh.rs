//! Opaque refresh tokens: 256 random bits, base64url, stored only as
//! SHA-256.

use base64::Engine as _;
use sha2::Digest as _;

/// A new refresh token and the hash that is stored.
pub fn generate() -> Result<(String, Vec<u8>), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    Ok((token, hash))
}

/// The stored form of a presented token.
pub fn hash(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether a presented value can be a refresh token at all (43 base64url
/// characters); anything else is refused without a database round trip.
pub fn is_well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
