//! The per-aggregate hash chain: the canonical content of an event and its
//! hash, byte for byte what the `events_chain_hash` trigger of migration
//! `0006_audit.sql` computes.
//!
//! ```text
//! hash      = sha256(previous ‖ canonical)
//! previous  = hash of sequence − 1 in the same aggregate, or empty
//! canonical = text aggregate_type ‖ text aggregate_id ‖ int8 sequence
//!           ‖ text event_type ‖ text event_version ‖ text payload::text
//!           ‖ text metadata::text ‖ event_id (16 bytes)
//!           ‖ int8 recorded_at (µs since the Unix epoch) ‖ int8 global_position
//! text x    = u32 big-endian byte length of x's UTF-8 ‖ those bytes
//! int8 n    = i64 big-endian
//! ```

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::report::{Failure, FailureKind};

/// One event as stored, with the JSON columns as their exact stored text.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub global_position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub event_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    pub hash: Vec<u8>,
}

/// An event with what the chain links it to: the stored hash and position
/// of the event with sequence − 1 in its aggregate, when there is one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainedEvent {
    #[sqlx(flatten)]
    pub event: StoredEvent,
    pub previous_hash: Option<Vec<u8>>,
    pub previous_position: Option<i64>,
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    let len = u32::try_from(text.len()).expect("a field shorter than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl StoredEvent {
    /// The canonical content (see the module documentation).
    pub fn canonical_content(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            96 + self.aggregate_type.len()
                + self.aggregate_id.len()
                + self.event_type.len()
                + self.event_version.len()
                + self.payload.len()
                + self.metadata.len(),
        );
        put_text(&mut out, &self.aggregate_type);
        put_text(&mut out, &self.aggregate_id);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        put_text(&mut out, &self.event_type);
        put_text(&mut out, &self.event_version);
        put_text(&mut out, &self.payload);
        put_text(&mut out, &self.metadata);
        out.extend_from_slice(self.event_id.as_bytes());
        out.extend_from_slice(&self.recorded_at.timestamp_micros().to_be_bytes());
        out.extend_from_slice(&self.global_position.to_be_bytes());
        out
    }

    /// The hash this event must carry, chained to `previous` (the hash of
    /// sequence − 1 in its aggregate; None for the aggregate's first event).
    pub fn chain_hash(&self, previous: Option<&[u8]>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(previous.unwrap_or_default());
        hasher.update(self.canonical_content());
        hasher.finalize().into()
    }
}

/// Events with positions in `(after, to]`, at most `limit`, in position
/// order, each with its predecessor's hash.
pub async fn chained_page(
    pool: &PgPool,
    after: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<ChainedEvent>, sqlx::Error> {
    event_log::statements::audit::chained_page(pool, after, to, limit).await
}

/// Checks an event's stored hash against its content and predecessor.
pub fn check_chain(chained: &ChainedEvent) -> Option<Failure> {
    let event = &chained.event;
    let position = event.global_position;
    let fail = |kind, reason: String| Some(Failure::at(position, kind, reason, None));
    let name = format!(
        "{}/{} sequence {}",
        event.aggregate_type, event.aggregate_id, event.sequence
    );
    if let Some(previous) = chained.previous_position {
        if previous >= position {
            return fail(
                FailureKind::OutOfOrder,
                format!("{name} comes before its predecessor (at position {previous}) in the log"),
            );
        }
    }
    if event
        .chain_hash(chained.previous_hash.as_deref())
        .as_slice()
        == event.hash.as_slice()
    {
        return None;
    }
    if chained.previous_hash.is_none() && event.sequence > 1 {
        return fail(
            FailureKind::ChainBroken,
            format!(
                "{name} does not chain: sequence {} of its aggregate is missing \
                 (or this event was changed)",
                event.sequence - 1
            ),
        );
    }
    fail(
        FailureKind::HashMismatch,
        format!(
            "{name}: the stored hash does not match the event's content (the event was changed)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> StoredEvent {
        StoredEvent {
            global_position: 7,
            aggregate_type: "Order".to_owned(),
            aggregate_id: "a".to_owned(),
            sequence: 2,
            event_type: "OrderPlaced".to_owned(),
            event_version: "1.0".to_owned(),
            payload: "{\"x\": 1}".to_owned(),
            metadata: "{}".to_owned(),
            event_id: Uuid::nil(),
            recorded_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            hash: Vec::new(),
        }
    }

    #[test]
    fn canonical_content_is_length_prefixed_and_big_endian() {
        let bytes = event().canonical_content();
        assert_eq!(&bytes[..9], b"\0\0\0\x05Order");
        assert_eq!(&bytes[9..14], b"\0\0\0\x01a");
        assert_eq!(&bytes[14..22], &2i64.to_be_bytes());
        let tail = &bytes[bytes.len() - 16..];
        assert_eq!(&tail[..8], &1_700_000_000_123_456i64.to_be_bytes());
        assert_eq!(&tail[8..], &7i64.to_be_bytes());
    }

    #[test]
    fn fields_cannot_bleed_into_each_other() {
        let mut a = event();
        let mut b = event();
        a.aggregate_type = "Ord".to_owned();
        a.aggregate_id = "era".to_owned();
        b.aggregate_id = "a".to_owned();
        assert_ne!(a.chain_hash(None), b.chain_hash(None));
    }

    #[test]
    fn the_chain_depends_on_the_previous_hash() {
        let e = event();
        assert_ne!(e.chain_hash(None), e.chain_hash(Some(&[0u8; 32])));
        assert_eq!(e.chain_hash(None), e.chain_hash(Some(&[])));
    }
}
