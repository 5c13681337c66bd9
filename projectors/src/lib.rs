//! Read models built from the event log, one module per model, and the
//! runner that feeds them from JetStream (DESIGN.md "NATS").
//!
//! - `runner`: consumes the stream, applies a batch and its checkpoint in
//!   one transaction, acks after the commit; never applies past a missing
//!   event (it fills any hole from the events table first).
//! - `availability`: listings and the allocations of their units.
//! - `orders`: orders as placed, with status, parts, payments and refunds.
//! - `ledger`: the double-entry postings, account totals, vendor earnings.
//! - `analytics`: order, line, listing and payment-failure facts.
//! - `rebuild`: all of them again from the events table, into a fresh schema.
//! - `stall`: a failing consumer is retried, then reported stalled.
//!
//! Every consumer reads an event's payload through [`decode`], which
//! upcasts an older schema first (`domain::upcast`).

pub mod analytics;
pub mod availability;
pub mod checkpoints;
pub mod ledger;
pub mod orders;
pub mod rebuild;
pub mod runner;
pub mod stall;

pub use ledger_nats::EventEnvelope;
pub use runner::{Consumer, Runner, RunnerConfig};
pub use stall::RetryPolicy;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("nats: {0}")]
    Nats(String),
    #[error("event {position} ({event_type}) cannot be applied: {reason}")]
    Apply {
        position: i64,
        event_type: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn nats(err: impl std::fmt::Display) -> Self {
        Self::Nats(err.to_string())
    }

    pub fn apply(event: &EventEnvelope, reason: impl std::fmt::Display) -> Self {
        Self::Apply {
            position: event.position,
            event_type: event.event_type.clone(),
            reason: reason.to_string(),
        }
    }
}

impl From<ledger_nats::Error> for Error {
    fn from(err: ledger_nats::Error) -> Self {
        match err {
            ledger_nats::Error::Database(e) => Self::Database(e),
            other => Self::Nats(other.to_string()),
        }
    }
}

/// The event's payload as a domain event of type `E`, upcast first when it
/// was stored with an older schema (the stored row is never changed).
pub fn decode<E: serde::de::DeserializeOwned>(event: &EventEnvelope) -> Result<E, Error> {
    let decoded = if domain::upcast::is_outdated(&event.event_type, &event.event_version) {
        let upcast = domain::upcast::upcast(
            &event.event_type,
            &event.event_version,
            event.payload.clone(),
        )
        .1;
        <E as serde::Deserialize>::deserialize(upcast)
    } else {
        // Read in place: no copy of the payload.
        <E as serde::Deserialize>::deserialize(&event.payload)
    };
    decoded.map_err(|e| Error::apply(event, e))
}

/// The events after position `after` up to `until` (inclusive), in position
/// order, at most `limit` of them (`None`: all): the log as the runner's
/// catch-up, a rebuild and a swap read it.
pub async fn events_between<'e, X: sqlx::PgExecutor<'e>>(
    executor: X,
    after: i64,
    until: i64,
    limit: Option<i64>,
) -> Result<Vec<EventEnvelope>, Error> {
    let sql = format!(
        "SELECT {} FROM public.events
          WHERE global_position > $1 AND global_position <= $2
          ORDER BY global_position LIMIT $3",
        ledger_nats::envelope::ENVELOPE_COLUMNS
    );
    let rows = sqlx::query(&sql)
        .bind(after)
        .bind(until)
        .bind(limit)
        .fetch_all(executor)
        .await?;
    Ok(rows
        .iter()
        .map(EventEnvelope::from_row)
        .collect::<Result<Vec<_>, _>>()?)
}

/// Every read model `ledger project` runs, by name.
pub fn read_models() -> Vec<std::sync::Arc<dyn Consumer>> {
    vec![
        std::sync::Arc::new(availability::Availability),
        std::sync::Arc::new(orders::Orders),
        std::sync::Arc::new(ledger::Ledger),
        std::sync::Arc::new(analytics::Analytics),
    ]
}
