//! An event as it travels on the stream: the stored row, whole, so that a
//! consumer never needs the database to interpret it.

use async_nats::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::Error;

/// Header with the event's global position.
pub const POSITION_HEADER: &str = "Ledger-Position";
/// Header with the event's type.
pub const EVENT_TYPE_HEADER: &str = "Ledger-Event-Type";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: serde_json::Value,
    pub metadata: serde_json::Value,
    pub recorded_at: DateTime<Utc>,
}

/// Columns of the events table that make an envelope, for `SELECT`s.
pub const ENVELOPE_COLUMNS: &str = "global_position, event_id, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload, metadata, recorded_at";

impl EventEnvelope {
    /// Reads a row selected with [`ENVELOPE_COLUMNS`].
    pub fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            position: row.try_get("global_position")?,
            event_id: row.try_get("event_id")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
        })
    }

    /// The inner object of an externally tagged payload
    /// (`{"HoldPlaced": {...}}` → `{...}`); unit variants give `Null`.
    pub fn body(&self) -> &serde_json::Value {
        match &self.payload {
            serde_json::Value::Object(map) if map.len() == 1 => {
                map.values().next().unwrap_or(&serde_json::Value::Null)
            }
            _ => &serde_json::Value::Null,
        }
    }

    pub fn subject(&self, stream: &str) -> String {
        subject(stream, &self.aggregate_type, &self.aggregate_id)
    }

    pub fn message_id(&self) -> String {
        message_id(&self.aggregate_type, &self.aggregate_id, self.sequence)
    }

    /// Headers of the message carrying this event.
    pub fn headers(&self) -> HeaderMap {
        headers(&self.message_id(), &self.event_type, self.position)
    }

    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(payload).map_err(|e| Error::Malformed(e.to_string()))
    }
}

/// Columns of the events table for an [`Outgoing`] message: the payload
/// and metadata as PostgreSQL prints them.
pub const OUTGOING_COLUMNS: &str = "global_position, event_id, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, payload::text AS payload, metadata::text AS metadata, \
     recorded_at";

/// An event as the relay publishes it: the message body is the
/// [`EventEnvelope`]'s JSON, built with the payload and metadata copied as
/// text, never parsed and encoded again (that was a third of the relay's
/// work).
pub struct Outgoing {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub body: Vec<u8>,
}

/// The wire form of an [`EventEnvelope`], field for field.
#[derive(Serialize)]
struct WireEnvelope<'a> {
    position: i64,
    event_id: Uuid,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    sequence: i64,
    event_type: &'a str,
    event_version: &'a str,
    payload: &'a serde_json::value::RawValue,
    metadata: &'a serde_json::value::RawValue,
    recorded_at: DateTime<Utc>,
}

impl Outgoing {
    /// Reads a row selected with [`OUTGOING_COLUMNS`].
    pub fn from_row(row: &PgRow) -> Result<Self, Error> {
        let raw = |column: &str| -> Result<Box<serde_json::value::RawValue>, Error> {
            let text: String = row.try_get(column)?;
            serde_json::value::RawValue::from_string(text)
                .map_err(|e| Error::Malformed(format!("{column}: {e}")))
        };
        let (payload, metadata) = (raw("payload")?, raw("metadata")?);
        let aggregate_type: String = row.try_get("aggregate_type")?;
        let aggregate_id: String = row.try_get("aggregate_id")?;
        let event_type: String = row.try_get("event_type")?;
        let event_version: String = row.try_get("event_version")?;
        let wire = WireEnvelope {
            position: row.try_get("global_position")?,
            event_id: row.try_get("event_id")?,
            aggregate_type: &aggregate_type,
            aggregate_id: &aggregate_id,
            sequence: row.try_get("sequence")?,
            event_type: &event_type,
            event_version: &event_version,
            payload: &payload,
            metadata: &metadata,
            recorded_at: row.try_get("recorded_at")?,
        };
        let body = serde_json::to_vec(&wire).map_err(|e| Error::Malformed(e.to_string()))?;
        Ok(Self {
            position: wire.position,
            sequence: wire.sequence,
            aggregate_type,
            aggregate_id,
            event_type,
            body,
        })
    }

    pub fn subject(&self, stream: &str) -> String {
        subject(stream, &self.aggregate_type, &self.aggregate_id)
    }

    /// Headers of the message, as [`EventEnvelope::headers`].
    pub fn headers(&self) -> HeaderMap {
        let id = message_id(&self.aggregate_type, &self.aggregate_id, self.sequence);
        headers(&id, &self.event_type, self.position)
    }
}

/// Headers of an event's message: its id (for JetStream's duplicate
/// window), type and position.
fn headers(message_id: &str, event_type: &str, position: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", message_id);
    headers.insert(EVENT_TYPE_HEADER, event_type);
    headers.insert(POSITION_HEADER, position.to_string().as_str());
    headers
}

/// The subject prefix of a stream: its lower-cased name, so that two
/// deployments on one NATS server never overlap.
pub fn subject_prefix(stream: &str) -> String {
    format!("{}.events", stream.to_ascii_lowercase())
}

/// Subject of an event: `<stream>.events.<aggregate_type>.<aggregate_id>`.
pub fn subject(stream: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{}.{aggregate_type}.{aggregate_id}", subject_prefix(stream))
}

/// `Nats-Msg-Id` of an event: unique per aggregate and sequence, so that
/// JetStream drops a republished copy inside its duplicate window.
pub fn message_id(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_stream_name() {
        assert_eq!(
            subject("LEDGER", "Order", "0190"),
            "ledger.events.Order.0190"
        );
        assert_ne!(
            subject("LEDGER", "Order", "1"),
            subject("LEDGER_B", "Order", "1")
        );
    }

    #[test]
    fn message_ids_name_aggregate_and_sequence() {
        assert_eq!(message_id("Order", "42", 3), "Order:42:3");
    }

    #[test]
    fn the_body_of_a_tagged_payload_is_its_inner_object() {
        let envelope = EventEnvelope {
            position: 1,
            event_id: Uuid::nil(),
            aggregate_type: "Inventory".into(),
            aggregate_id: "x".into(),
            sequence: 1,
            event_type: "HoldConfirmed".into(),
            event_version: "1.0".into(),
            payload: serde_json::json!({"HoldConfirmed": {"hold_id": "h"}}),
            metadata: serde_json::json!({}),
            recorded_at: Utc::now(),
        };
        assert_eq!(envelope.body()["hold_id"], "h");
    }
}
