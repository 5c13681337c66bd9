//! The bridge from the events table to NATS JetStream (DESIGN.md "NATS").
//! So far: how an event is named and identified on the wire. The stream
//! provisioning and the relay build on these names.

pub mod envelope;

pub use envelope::{message_id, subject, EventEnvelope};
