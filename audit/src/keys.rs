//! Ed25519 keys for seals, written as hex: a signing key as its 32-byte
//! seed (64 hex digits), a public key as its 32-byte compressed point.

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Key id recorded in seals made with [`dev_signing_key`].
pub const DEV_KEY_ID: &str = "dev";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("an Ed25519 key is 64 hex digits (32 bytes): {0}")]
    Malformed(String),
    #[error("not a valid Ed25519 public key")]
    InvalidPoint,
}

fn key_bytes(hex_text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(hex_text.trim()).map_err(|e| KeyError::Malformed(e.to_string()))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| KeyError::Malformed(format!("got {} bytes", bytes.len())))
}

/// A signing key from the hex of its 32-byte seed.
pub fn parse_signing_key(hex_text: &str) -> Result<SigningKey, KeyError> {
    Ok(SigningKey::from_bytes(&key_bytes(hex_text)?))
}

/// A public key from the hex of its 32 bytes.
pub fn parse_verifying_key(hex_text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(&key_bytes(hex_text)?).map_err(|_| KeyError::InvalidPoint)
}

/// The hex form [`parse_signing_key`] reads.
pub fn signing_key_hex(key: &SigningKey) -> String {
    hex::encode(key.to_bytes())
}

/// The hex form [`parse_verifying_key`] reads.
pub fn verifying_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.to_bytes())
}

/// A fresh random signing key (operating-system randomness).
pub fn generate_signing_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// A short id for a public key: the first 8 bytes of its SHA-256, in hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A fixed key for development and tests. Everybody knows it: never use it
/// for a real deployment.
pub fn dev_signing_key() -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(b"ledger development audit key, not secret").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_hex() {
        let key = generate_signing_key();
        let parsed = parse_signing_key(&signing_key_hex(&key)).unwrap();
        assert_eq!(parsed.to_bytes(), key.to_bytes());
        let public = parse_verifying_key(&verifying_key_hex(&key.verifying_key())).unwrap();
        assert_eq!(public, key.verifying_key());
        assert_eq!(key_id(&public).len(), 16);
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(parse_signing_key("abcd").is_err());
        assert!(parse_verifying_key("zz").is_err());
        assert!(parse_signing_key(&"0".repeat(66)).is_err());
    }

    #[test]
    fn the_dev_key_is_stable() {
        assert_eq!(dev_signing_key().to_bytes(), dev_signing_key().to_bytes());
    }
}

#[cfg(test)]
mod dev_key {
    use super::*;

    /// scripts/serve.sh hard-codes this key's hex for development.
    #[test]
    fn the_dev_key_is_the_one_the_serve_script_uses() {
        assert_eq!(
            signing_key_hex(&dev_signing_key()),
            "7fda9afb94b5b5657718e5a1f025c63662feca246ff34ee5311eb249dd53d9ca"
        );
    }
}
