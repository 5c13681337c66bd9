//! An event as it travels on the stream: the stored event, whole
//! ([`event_log::StoredEvent`], its JSON the message body), so that a
//! consumer never needs the database to interpret it; its subject, its
//! `Nats-Msg-Id` and headers.

use async_nats::HeaderMap;
use event_log::RawEvent;

use crate::Error;

/// Columns of the events table that make an [`EventEnvelope`].
pub use event_log::stored::COLUMNS as ENVELOPE_COLUMNS;
/// The event a message carries: the stored event itself, under the name
/// the stream's code has always used for it.
pub use event_log::StoredEvent as EventEnvelope;

/// Header with the event's global position.
pub const POSITION_HEADER: &str = "Ledger-Position";
/// Header with the event's type.
pub const EVENT_TYPE_HEADER: &str = "Ledger-Event-Type";
/// Header with the event's tenant (API.md "Tenants"), so that a subscriber
/// can route or filter without reading the body.
pub const TENANT_HEADER: &str = "Ledger-Tenant";

/// An event as the relay publishes it: the body is the stored event's
/// JSON, built from the verbatim form ([`RawEvent`]: the payload and
/// metadata copied as text, never parsed and encoded again).
pub struct Outgoing {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub tenant: String,
    pub body: Vec<u8>,
}

impl Outgoing {
    pub fn from_stored(event: RawEvent) -> Result<Self, Error> {
        let body = serde_json::to_vec(&event).map_err(|e| Error::Malformed(e.to_string()))?;
        Ok(Self {
            position: event.position,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            sequence: event.sequence,
            event_type: event.event_type,
            tenant: event.tenant,
            body,
        })
    }

    pub fn subject(&self, stream: &str) -> String {
        subject(stream, &self.aggregate_type, &self.aggregate_id)
    }

    /// Headers of the message: its id (for JetStream's duplicate window),
    /// type, position and tenant.
    pub fn headers(&self) -> HeaderMap {
        let id = message_id(&self.aggregate_type, &self.aggregate_id, self.sequence);
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        headers.insert(EVENT_TYPE_HEADER, self.event_type.as_str());
        headers.insert(POSITION_HEADER, self.position.to_string().as_str());
        headers.insert(TENANT_HEADER, self.tenant.as_str());
        headers
    }
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
    fn a_message_carries_the_stored_event_with_its_id_type_and_position() {
        let raw = |text: &str| serde_json::value::RawValue::from_string(text.into()).expect("raw");
        let event = RawEvent {
            position: 9,
            event_id: uuid::Uuid::nil(),
            aggregate_type: "Inventory".into(),
            aggregate_id: "x".into(),
            sequence: 3,
            event_type: "HoldConfirmed".into(),
            event_version: "1.0".into(),
            payload: raw(r#"{"HoldConfirmed": {"hold_id": "h"}}"#),
            metadata: raw("{}"),
            recorded_at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            tenant: event_log::DEFAULT_TENANT.into(),
        };
        let outgoing = Outgoing::from_stored(event).expect("encodes");
        let headers = outgoing.headers();
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some("Inventory:x:3")
        );
        assert_eq!(
            headers.get(EVENT_TYPE_HEADER).map(|v| v.as_str()),
            Some("HoldConfirmed")
        );
        assert_eq!(headers.get(POSITION_HEADER).map(|v| v.as_str()), Some("9"));
        assert_eq!(
            headers.get(TENANT_HEADER).map(|v| v.as_str()),
            Some(event_log::DEFAULT_TENANT)
        );
        let carried = EventEnvelope::decode(&outgoing.body).expect("decodes");
        assert_eq!(carried.position, 9);
        assert_eq!(carried.body()["hold_id"], "h");
        assert_eq!(outgoing.subject("LEDGER"), "ledger.events.Inventory.x");
    }
}
