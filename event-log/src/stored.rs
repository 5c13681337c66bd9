//! An event as the events table holds it: the one model of a stored event.
//!
//! Its JSON (field for field, `position` for `global_position`) is the
//! message body on the stream and the shape the relay, the consumers and
//! the exports share. Two forms of the JSON columns exist for one reason
//! each: parsed ([`StoredEvent`], what consumers read) and verbatim as
//! PostgreSQL prints them ([`RawEvent`], what the relay copies onto the
//! stream without parsing and encoding it again: that was a third of its
//! work).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::Error;

/// One stored event. `J` is how its payload and metadata are held: parsed
/// (the default) or verbatim ([`RawEvent`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent<J = Value> {
    pub position: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: J,
    pub metadata: J,
    pub recorded_at: DateTime<Utc>,
    /// The tenant the event belongs to (the `tenant` of its metadata;
    /// [`DEFAULT_TENANT`] for events from before tenants, and for messages
    /// from before the field).
    #[serde(default = "default_tenant")]
    pub tenant: String,
}

/// The tenant of everything recorded without one (API.md "Tenants").
pub const DEFAULT_TENANT: &str = "default";

fn default_tenant() -> String {
    DEFAULT_TENANT.to_owned()
}

/// A stored event with its payload and metadata as their stored text.
pub type RawEvent = StoredEvent<Box<RawValue>>;

/// The `SELECT` list of a [`StoredEvent`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "global_position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata, recorded_at, tenant"
    };
}
pub(crate) use columns;

/// The `SELECT` list of a [`RawEvent`]: the JSON columns as text.
macro_rules! raw_columns {
    () => {
        "global_position, event_id, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload::text AS payload, metadata::text AS metadata, recorded_at, \
         tenant"
    };
}
pub(crate) use raw_columns;

/// Columns of the events table that make a [`StoredEvent`], for `SELECT`s.
pub const COLUMNS: &str = columns!();

/// Columns that make a [`RawEvent`]: the JSON columns as text.
pub const RAW_COLUMNS: &str = raw_columns!();

impl StoredEvent {
    /// Reads a row selected with [`COLUMNS`].
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
            tenant: row.try_get("tenant")?,
        })
    }

    /// Reads the event's JSON (a message on the stream, a line of an
    /// export).
    pub fn decode(json: &[u8]) -> Result<Self, Error> {
        serde_json::from_slice(json).map_err(|e| Error::Malformed(e.to_string()))
    }

    /// The inner object of an externally tagged payload
    /// (`{"HoldPlaced": {...}}` → `{...}`); unit variants give `Null`.
    pub fn body(&self) -> &Value {
        match &self.payload {
            Value::Object(map) if map.len() == 1 => map.values().next().unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    /// The payload at its current schema and that schema's version, when
    /// the event was stored with an older one (`domain::upcast`); `None`
    /// when it is current. The stored row is never changed.
    pub fn upcast(&self) -> Option<(String, Value)> {
        domain::upcast::is_outdated(&self.event_type, &self.event_version).then(|| {
            domain::upcast::upcast(&self.event_type, &self.event_version, self.payload.clone())
        })
    }
}

impl RawEvent {
    /// Reads a row selected with [`RAW_COLUMNS`].
    pub fn from_text_row(row: &PgRow) -> Result<Self, Error> {
        let raw = |column: &str| -> Result<Box<RawValue>, Error> {
            let text: String = row.try_get(column)?;
            RawValue::from_string(text).map_err(|e| Error::Malformed(format!("{column}: {e}")))
        };
        Ok(Self {
            position: row.try_get("global_position")?,
            event_id: row.try_get("event_id")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: raw("payload")?,
            metadata: raw("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
            tenant: row.try_get("tenant")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> StoredEvent {
        StoredEvent {
            position: 7,
            event_id: Uuid::nil(),
            aggregate_type: "Inventory".into(),
            aggregate_id: "x".into(),
            sequence: 2,
            event_type: "HoldConfirmed".into(),
            event_version: "1.0".into(),
            payload: serde_json::json!({"HoldConfirmed": {"hold_id": "h"}}),
            metadata: serde_json::json!({"correlation_id": "c"}),
            recorded_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            tenant: DEFAULT_TENANT.into(),
        }
    }

    #[test]
    fn the_body_of_a_tagged_payload_is_its_inner_object() {
        assert_eq!(event().body()["hold_id"], "h");
    }

    #[test]
    fn parsed_and_verbatim_forms_encode_to_the_same_json() {
        let parsed = event();
        let raw = RawEvent {
            payload: RawValue::from_string(parsed.payload.to_string()).expect("raw"),
            metadata: RawValue::from_string(parsed.metadata.to_string()).expect("raw"),
            position: parsed.position,
            event_id: parsed.event_id,
            aggregate_type: parsed.aggregate_type.clone(),
            aggregate_id: parsed.aggregate_id.clone(),
            sequence: parsed.sequence,
            event_type: parsed.event_type.clone(),
            event_version: parsed.event_version.clone(),
            recorded_at: parsed.recorded_at,
            tenant: parsed.tenant.clone(),
        };
        let raw_json = serde_json::to_vec(&raw).expect("json");
        assert_eq!(raw_json, serde_json::to_vec(&parsed).expect("json"));
        assert_eq!(StoredEvent::decode(&raw_json).expect("decodes"), parsed);
    }

    #[test]
    fn the_json_names_the_position_as_the_stream_does() {
        let json = serde_json::to_value(event()).expect("json");
        let mut keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aggregate_id",
                "aggregate_type",
                "event_id",
                "event_type",
                "event_version",
                "metadata",
                "payload",
                "position",
                "recorded_at",
                "sequence",
                "tenant"
            ]
        );
    }
}
