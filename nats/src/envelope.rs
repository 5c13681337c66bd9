//! An event as it travels on the stream: the stored row, whole, so that a
//! consumer never needs the database to interpret it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// Subject of an event: `<stream prefix>.events.<aggregate_type>.<aggregate_id>`,
/// the prefix being the lower-cased stream name so that two deployments on
/// one NATS server never overlap.
pub fn subject(stream: &str, aggregate_type: &str, aggregate_id: &str) -> String {
    format!(
        "{}.events.{aggregate_type}.{aggregate_id}",
        stream.to_ascii_lowercase()
    )
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
}
