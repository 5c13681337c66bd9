//! The bridge from the events table to NATS JetStream (DESIGN.md "NATS").
//!
//! - `envelope`: an event as it travels on the wire, its subject and its
//!   `Nats-Msg-Id`, and how it is read from the events table;
//! - `stream`: provisioning the stream from configuration;
//! - `relay`: the only publisher, moving committed events to the stream in
//!   commit order;
//! - `wakeup`: how writers wake the relay after they commit;
//! - `faults`: what a component of the pipeline found wrong, for every
//!   replica to report;
//! - `history`: whether the stream belongs to this database's history (it
//!   does not after a restore behind it), checked before anyone uses it.

pub mod envelope;
pub mod faults;
pub mod history;
pub mod relay;
pub mod stream;
pub mod wakeup;

pub use envelope::{message_id, subject, EventEnvelope};
pub use relay::{Relay, RelayConfig};
pub use stream::StreamSettings;
pub use wakeup::{notify_relays, CommitNotifier};

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("malformed event on the stream: {0}")]
    Malformed(String),
}

impl Error {
    pub fn nats(err: impl std::fmt::Display) -> Self {
        Self::Nats(err.to_string())
    }
}
