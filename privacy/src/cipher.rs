//! Sealing and opening one text under a subject's key (pure: no I/O).
//!
//! A sealed text is `pii:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`
//! (docs/AUDIT.md §6): ChaCha20-Poly1305 (RFC 8439), a 32-byte key, a
//! random 12-byte nonce per text, and `pii:v1:<key id>` as associated data,
//! so that a sealed text opens only as what it says it is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use domain::personal::{sealed_parts, PersonalText, SEALED_PREFIX};
use uuid::Uuid;

use crate::Error;

const NONCE: usize = 12;

/// One key of one data subject.
#[derive(Clone)]
pub struct SubjectKey {
    id: Uuid,
    bytes: [u8; 32],
}

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SubjectKey({})", self.id.simple())
    }
}

impl SubjectKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self {
            id: Uuid::new_v4(),
            bytes: rand::random(),
        }
    }

    /// A key as stored.
    pub fn from_bytes(id: Uuid, bytes: &[u8]) -> Result<Self, Error> {
        let bytes = bytes.try_into().map_err(|_| Error::BadKey {
            key_id: id,
            reason: format!("{} bytes, not 32", bytes.len()),
        })?;
        Ok(Self { id, bytes })
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// `text` sealed under this key, with a random nonce.
    pub fn seal(&self, text: &str) -> PersonalText {
        self.seal_with_nonce(text, rand::random())
    }

    /// `text` sealed with the given nonce (a nonce must never be used
    /// twice with one key: only for worked examples and tests).
    pub fn seal_with_nonce(&self, text: &str, nonce: [u8; NONCE]) -> PersonalText {
        let header = header(&self.id);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.bytes));
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: text.as_bytes(),
                    aad: header.as_bytes(),
                },
            )
            // Only a text longer than 256 GiB fails.
            .unwrap_or_default();
        let mut body = nonce.to_vec();
        body.extend_from_slice(&sealed);
        PersonalText::from_stored(format!("{header}:{}", URL_SAFE_NO_PAD.encode(body)))
    }

    /// The text of a value sealed under this key.
    pub fn open(&self, sealed: &str) -> Result<String, Error> {
        let (key, body) =
            sealed_parts(sealed).ok_or_else(|| Error::Unreadable("not a sealed text".into()))?;
        if key != self.id.simple().to_string() {
            return Err(Error::Unreadable("sealed under another key".into()));
        }
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|e| Error::Unreadable(format!("base64: {e}")))?;
        if body.len() < NONCE + 16 {
            return Err(Error::Unreadable("too short".into()));
        }
        let (nonce, sealed) = body.split_at(NONCE);
        let header = header(&self.id);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.bytes));
        let clear = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: header.as_bytes(),
                },
            )
            .map_err(|_| Error::Unreadable("authentication failed".into()))?;
        String::from_utf8(clear).map_err(|_| Error::Unreadable("not UTF-8".into()))
    }
}

/// `pii:v1:<key id>`: the start of every text sealed under the key, and
/// the associated data its tag covers.
fn header(key_id: &Uuid) -> String {
    format!("{SEALED_PREFIX}{}", key_id.simple())
}

/// The deployment's key-encryption key (`LEDGER_PERSONAL_DATA_KEK`): when
/// configured, subject keys are stored wrapped by it, so that a copy of
/// the database alone (a backup, a replica) opens nothing.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// From 64 hex digits.
    pub fn from_hex(hex_text: &str) -> Result<Self, Error> {
        let bytes = hex::decode(hex_text.trim())
            .map_err(|e| Error::BadKeyEncryptionKey(format!("not hex: {e}")))?;
        let bytes = bytes.try_into().map_err(|b: Vec<u8>| {
            Error::BadKeyEncryptionKey(format!("{} bytes, not 32", b.len()))
        })?;
        Ok(Self(bytes))
    }

    /// A subject key as stored: nonce ‖ sealed key ‖ tag (60 bytes), with
    /// the key id as associated data.
    pub fn wrap(&self, key: &SubjectKey) -> Vec<u8> {
        let nonce: [u8; NONCE] = rand::random();
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: key.bytes(),
                    aad: key.id().as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        stored
    }

    /// The subject key stored as `stored` under `key_id`.
    pub fn unwrap_key(&self, key_id: Uuid, stored: &[u8]) -> Result<SubjectKey, Error> {
        let bad = |reason: &str| Error::BadKey {
            key_id,
            reason: reason.to_owned(),
        };
        if stored.len() != NONCE + 32 + 16 {
            return Err(bad("not a wrapped key"));
        }
        let (nonce, sealed) = stored.split_at(NONCE);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&self.0));
        let bytes = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: key_id.as_bytes(),
                },
            )
            .map_err(|_| bad("wrapped by another key-encryption key"))?;
        SubjectKey::from_bytes(key_id, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_opens_with_its_key_only() {
        let key = SubjectKey::generate();
        let sealed = key.seal("Ada's Bikes");
        assert!(sealed.is_sealed());
        assert!(!sealed.as_stored().contains("Ada"));
        assert_eq!(
            sealed.key_id(),
            Some(key.id().simple().to_string().as_str())
        );
        assert_eq!(key.open(sealed.as_stored()).unwrap(), "Ada's Bikes");

        let other = SubjectKey::generate();
        assert!(other.open(sealed.as_stored()).is_err());
        // The same key bytes under another id: the header is authenticated.
        let renamed = SubjectKey::from_bytes(other.id(), key.bytes()).unwrap();
        let moved = sealed.as_stored().replace(
            &key.id().simple().to_string(),
            &other.id().simple().to_string(),
        );
        assert!(renamed.open(&moved).is_err());
    }

    #[test]
    fn each_sealing_uses_a_fresh_nonce() {
        let key = SubjectKey::generate();
        let (a, b) = (key.seal("same"), key.seal("same"));
        assert_ne!(a, b);
        assert_eq!(
            key.open(a.as_stored()).unwrap(),
            key.open(b.as_stored()).unwrap()
        );
    }

    #[test]
    fn a_changed_sealed_text_does_not_open() {
        let key = SubjectKey::generate();
        let sealed = key.seal("damaged on return").as_stored().to_owned();
        let (head, last) = sealed.split_at(sealed.len() - 1);
        let flipped = format!("{head}{}", if last == "A" { "B" } else { "A" });
        assert!(key.open(&flipped).is_err());
        assert!(key.open(head).is_err());
        assert!(key.open("not sealed").is_err());
    }

    #[test]
    fn empty_and_non_ascii_texts_round_trip() {
        let key = SubjectKey::generate();
        for text in ["", "Zoë — 東京 🚲", &"x".repeat(5_000)] {
            assert_eq!(key.open(key.seal(text).as_stored()).unwrap(), text);
        }
    }

    #[test]
    fn a_wrapped_key_unwraps_with_its_kek_and_id_only() {
        let kek = KeyEncryptionKey::from_hex(&"11".repeat(32)).unwrap();
        let key = SubjectKey::generate();
        let stored = kek.wrap(&key);
        assert_eq!(stored.len(), 60);
        assert_eq!(
            kek.unwrap_key(key.id(), &stored).unwrap().bytes(),
            key.bytes()
        );
        assert!(kek.unwrap_key(Uuid::new_v4(), &stored).is_err());
        let other = KeyEncryptionKey::from_hex(&"22".repeat(32)).unwrap();
        assert!(other.unwrap_key(key.id(), &stored).is_err());
        assert!(KeyEncryptionKey::from_hex("abcd").is_err());
        assert!(KeyEncryptionKey::from_hex("zz").is_err());
    }
}
