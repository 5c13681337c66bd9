//! Sealed checkpoints: signed statements over contiguous ranges of global
//! positions.
//!
//! A seal numbered `n` covers `[from_position, to_position]`, starts right
//! after seal `n − 1` (seal 1 at position 1) and records:
//! - `positions`: the global positions of the events in the range;
//! - `digest = sha256(previous_digest ‖ for each event in position order:
//!   int8 global_position ‖ 32-byte hash)`, `previous_digest` being seal
//!   `n − 1`'s digest (empty for seal 1);
//! - `merkle_root`: the root of the Merkle tree over the same events
//!   (`crate::merkle`), so one event can be proven sealed on its own
//!   (absent from seals made before it existed);
//! - an Ed25519 `signature` over [`signed_message`].
//!
//! The [`Sealer`](crate::Sealer) writes them.

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

const MESSAGE_TAG_V1: &str = "ledger-audit-seal-v1";
const MESSAGE_TAG_V2: &str = "ledger-audit-seal-v2";

/// One row of `audit_seals`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Seal {
    pub seal_id: i64,
    pub from_position: i64,
    pub to_position: i64,
    pub event_count: i64,
    pub positions: Vec<i64>,
    pub previous_digest: Vec<u8>,
    pub digest: Vec<u8>,
    pub merkle_root: Option<Vec<u8>>,
    pub key_id: String,
    pub signature: Vec<u8>,
    pub sealed_at: DateTime<Utc>,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).expect("a field shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The bytes a seal's signature covers: every field but the signature,
/// length-prefixed (u32 big-endian) or fixed-width (i64 big-endian):
///
/// ```text
/// text "ledger-audit-seal-v1" ‖ int8 seal_id ‖ int8 from_position
/// ‖ int8 to_position ‖ int8 event_count
/// ‖ u32 number of positions ‖ int8 each position
/// ‖ bytes previous_digest ‖ bytes digest ‖ text key_id
/// ‖ int8 sealed_at (µs since the Unix epoch)
/// ```
///
/// A seal with a Merkle root is tagged `ledger-audit-seal-v2` instead and
/// ends with `‖ bytes merkle_root`.
pub fn signed_message(seal: &Seal) -> Vec<u8> {
    let mut out = Vec::with_capacity(200 + 8 * seal.positions.len());
    let tag = match seal.merkle_root {
        Some(_) => MESSAGE_TAG_V2,
        None => MESSAGE_TAG_V1,
    };
    put_bytes(&mut out, tag.as_bytes());
    for n in [
        seal.seal_id,
        seal.from_position,
        seal.to_position,
        seal.event_count,
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    let count = u32::try_from(seal.positions.len()).expect("fewer than 2^32 positions");
    out.extend_from_slice(&count.to_be_bytes());
    for position in &seal.positions {
        out.extend_from_slice(&position.to_be_bytes());
    }
    put_bytes(&mut out, &seal.previous_digest);
    put_bytes(&mut out, &seal.digest);
    put_bytes(&mut out, seal.key_id.as_bytes());
    out.extend_from_slice(&seal.sealed_at.timestamp_micros().to_be_bytes());
    if let Some(root) = &seal.merkle_root {
        put_bytes(&mut out, root);
    }
    out
}

impl Seal {
    /// Signs the seal (every field but `signature` must be final).
    pub fn sign(&mut self, key: &SigningKey) {
        self.signature = key.sign(&signed_message(self)).to_bytes().to_vec();
    }

    /// Whether `key` signed exactly this seal.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        Signature::from_slice(&self.signature)
            .is_ok_and(|signature| key.verify_strict(&signed_message(self), &signature).is_ok())
    }
}

/// Folds a range's events into a seal digest.
#[derive(Clone)]
pub struct DigestBuilder(Sha256);

impl DigestBuilder {
    pub fn new(previous_digest: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(previous_digest);
        Self(hasher)
    }

    pub fn push(&mut self, position: i64, hash: &[u8]) {
        self.0.update(position.to_be_bytes());
        self.0.update(hash);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0.finalize().to_vec()
    }
}

/// The seal numbered `seal_id`, if any.
pub async fn load(pool: &PgPool, seal_id: i64) -> Result<Option<Seal>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_seals WHERE seal_id = $1")
        .bind(seal_id)
        .fetch_optional(pool)
        .await
}

/// The first seal after `seal_id` (by number).
pub async fn next_after(pool: &PgPool, seal_id: i64) -> Result<Option<Seal>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_seals WHERE seal_id > $1 ORDER BY seal_id LIMIT 1")
        .bind(seal_id)
        .fetch_optional(pool)
        .await
}

/// The seal (by number, first) whose range contains or follows `position`.
pub async fn first_reaching(pool: &PgPool, position: i64) -> Result<Option<Seal>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_seals WHERE to_position >= $1 ORDER BY seal_id LIMIT 1")
        .bind(position)
        .fetch_optional(pool)
        .await
}

/// Up to `limit` seals numbered after `after`, by number.
pub async fn after(pool: &PgPool, after: i64, limit: i64) -> Result<Vec<Seal>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_seals WHERE seal_id > $1 ORDER BY seal_id LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await
}

/// The newest seal, if any.
pub async fn newest(pool: &PgPool) -> Result<Option<Seal>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_seals ORDER BY seal_id DESC LIMIT 1")
        .fetch_optional(pool)
        .await
}

/// A seal as JSON (API.md "Audit"): what `GET /v1/audit/seals` serves,
/// what the seal stream carries and what `--save-anchor` writes. Byte
/// strings are lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealRecord {
    pub seal_id: i64,
    pub from: i64,
    pub to: i64,
    pub event_count: i64,
    /// The sealed events' positions (the signature covers them).
    pub positions: Vec<i64>,
    pub digest: String,
    pub previous_digest: String,
    /// Absent for seals made before Merkle roots were.
    pub merkle_root: Option<String>,
    pub key_id: String,
    pub signature: String,
    pub sealed_at: DateTime<Utc>,
}

/// A [`SealRecord`] that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("seal record: {0}")]
pub struct RecordError(String);

impl RecordError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl From<&Seal> for SealRecord {
    fn from(seal: &Seal) -> Self {
        Self {
            seal_id: seal.seal_id,
            from: seal.from_position,
            to: seal.to_position,
            event_count: seal.event_count,
            positions: seal.positions.clone(),
            digest: hex::encode(&seal.digest),
            previous_digest: hex::encode(&seal.previous_digest),
            merkle_root: seal.merkle_root.as_ref().map(hex::encode),
            key_id: seal.key_id.clone(),
            signature: hex::encode(&seal.signature),
            sealed_at: seal.sealed_at,
        }
    }
}

impl TryFrom<&SealRecord> for Seal {
    type Error = RecordError;

    fn try_from(record: &SealRecord) -> Result<Self, RecordError> {
        let bytes = |field: &str, text: &str| {
            hex::decode(text).map_err(|e| RecordError(format!("{field}: {e}")))
        };
        Ok(Seal {
            seal_id: record.seal_id,
            from_position: record.from,
            to_position: record.to,
            event_count: record.event_count,
            positions: record.positions.clone(),
            previous_digest: bytes("previous_digest", &record.previous_digest)?,
            digest: bytes("digest", &record.digest)?,
            merkle_root: record
                .merkle_root
                .as_deref()
                .map(|root| bytes("merkle_root", root))
                .transpose()?,
            key_id: record.key_id.clone(),
            signature: bytes("signature", &record.signature)?,
            sealed_at: record.sealed_at,
        })
    }
}

impl SealRecord {
    /// Reads a record from its JSON.
    pub fn decode(json: &[u8]) -> Result<Seal, RecordError> {
        let record: SealRecord =
            serde_json::from_slice(json).map_err(|e| RecordError(e.to_string()))?;
        Seal::try_from(&record)
    }
}

/// The seals whose ranges meet `[from, to]`, by number: those that cover
/// an export of those positions.
pub async fn covering(pool: &PgPool, from: i64, to: i64) -> Result<Vec<Seal>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_seals WHERE to_position >= $1 AND from_position <= $2
          ORDER BY seal_id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}
