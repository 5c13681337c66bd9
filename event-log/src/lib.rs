//! The events table (DESIGN.md "Event store"), seen from Rust: the one
//! model of a stored event, every SQL statement on the table, and the one
//! typed event every consumer decodes it into.
//!
//! - `stored`: [`StoredEvent`], an event as the table holds it (its columns,
//!   read from a row), which is also its JSON on the stream and in exports;
//! - `typed`: [`Event`], the domain event it carries, upcast first when it
//!   was stored with an older schema, decoded once by the aggregate it
//!   belongs to ([`Aggregate`]);
//! - `statements`: every statement that reads or writes `events` (and the
//!   snapshots beside it), so that the commit-order rules, the column lists
//!   and the indexes they rely on are read in one place.
//!
//! Nothing here speaks HTTP or NATS: the command bus, the relay, the
//! consumers, the read API, the auditors and the CLI all call in.

pub mod statements;
pub mod stored;
pub mod typed;

pub use statements::append::{
    append, append_joint, latest, upsert_snapshot, AppendPart, Guard, JointAppend, Latest,
    NewEvents,
};
pub use stored::{RawEvent, StoredEvent, DEFAULT_TENANT};
pub use typed::{Aggregate, Event};

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A payload that does not decode as its aggregate's event (the serde
    /// error, as is: consumers report it as the reason).
    #[error("{0}")]
    Decode(#[from] serde_json::Error),
    /// A row or message that is not a stored event.
    #[error("malformed stored event: {0}")]
    Malformed(String),
    /// An append met an event already stored at one of its sequences: the
    /// aggregate moved on since it was loaded.
    #[error("an event is already stored at one of the appended sequences")]
    Conflict,
    #[error("appended {appended} of {expected} events")]
    Incomplete { appended: usize, expected: usize },
}
