//! Personal data in the log (DESIGN.md invariant 11, docs/PRIVACY.md).
//!
//! Events are immutable and hash-chained, so personal data cannot be
//! deleted from them. Instead each personal field
//! ([`domain::PersonalText`]) is stored sealed: encrypted with
//! ChaCha20-Poly1305 under a key of its data subject (a customer, a
//! vendor, the person a token names). Erasing the subject destroys its
//! keys: the sealed text stays in the log, unchanged (the hash chain and
//! the seals still verify), but nobody can open it any more, and every
//! reader shows [`domain::personal::ERASED`] in its place.
//!
//! - `cipher`: [`SubjectKey`], sealing and opening one text (pure);
//! - `keyring`: [`Keyring`], the keys table (`personal_data_keys`): a
//!   subject's key made on first use, the keys a reader needs, erasure;
//! - `opener`: [`Opener`], the keys of one answer in hand, which replaces
//!   every sealed string of a JSON document by its text (or `[erased]`).
//!
//! Where each part runs: the command routes seal what a request brings
//! before they make the command (the domain never sees a key); the
//! command bus seals the acting person's subject in each event's
//! metadata; everything that shows events or read models to a reader (the
//! read API, the live feeds, outgoing webhooks, exports) opens them at
//! the last moment. The relay, the stream, the projectors and the read
//! models carry only sealed text.

pub mod cipher;
pub mod keyring;
pub mod opener;

pub use cipher::{KeyEncryptionKey, SubjectKey};
pub use domain::personal::{PersonalText, ERASED};
pub use keyring::{Erasure, Keyring};
pub use opener::{Opener, UNREADABLE};

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored key that cannot be used (wrong length, or wrapped by a
    /// key-encryption key that is not configured or not the one in use).
    #[error("unusable personal data key {key_id}: {reason}")]
    BadKey { key_id: uuid::Uuid, reason: String },
    /// A sealed text that does not open with its key.
    #[error("sealed text does not open: {0}")]
    Unreadable(String),
    /// A key-encryption key that is not 32 bytes of hex.
    #[error("key-encryption key: {0}")]
    BadKeyEncryptionKey(String),
}
