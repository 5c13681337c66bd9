//! The bridge from the events table to NATS JetStream and back to its
//! consumers (DESIGN.md "NATS").
//!
//! - `envelope`: an event as it travels on the wire (the stored event of
//!   `event_log`), its subject, its `Nats-Msg-Id` and headers;
//! - `stream`: provisioning the stream from configuration;
//! - `relay`: the only publisher, moving committed events to the stream in
//!   commit order;
//! - `wakeup`: how writers wake the relay after they commit;
//! - `seals`: the audit seals' own stream (`<stream>_SEALS`), their copy
//!   outside the database;
//! - `faults`: what a component of the pipeline found wrong, for every
//!   replica to report;
//! - `history`: whether the stream belongs to this database's history (it
//!   does not after a restore behind it), checked before anyone uses it;
//! - `consumer`: the other end, feeding read models and policies from the
//!   stream (runner, checkpoints, stall reporting).

pub mod consumer;
pub mod envelope;
pub mod faults;
pub mod history;
pub mod relay;
pub mod seals;
pub mod stream;
pub mod wakeup;

pub use consumer::{Consumer, RetryPolicy, Runner, RunnerConfig};
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
    /// A consumer could not apply an event (it does not decode, breaks a
    /// read model's rule, or the consumer's code panicked on it).
    #[error("event {position} ({event_type}) cannot be applied: {reason}")]
    Apply {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

impl From<event_log::Error> for Error {
    fn from(err: event_log::Error) -> Self {
        match err {
            event_log::Error::Database(e) => Self::Database(e),
            other => Self::Malformed(other.to_string()),
        }
    }
}

impl Error {
    pub fn nats(err: impl std::fmt::Display) -> Self {
        Self::Nats(err.to_string())
    }

    /// `event` cannot be applied, for `reason`.
    pub fn apply(event: &EventEnvelope, reason: impl std::fmt::Display) -> Self {
        Self::Apply {
            position: event.position,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}
