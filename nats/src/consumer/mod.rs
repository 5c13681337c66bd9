//! The other end of the stream: what feeds a consumer (a read model or a
//! policy) from JetStream, beside the relay that fills it (DESIGN.md
//! "NATS").
//!
//! - `runner`: consumes the stream, applies a batch and its checkpoint in
//!   one transaction, acks after the commit; never applies past a missing
//!   event (it fills any hole from the events table first), and catches up
//!   from the table when quiet or far behind;
//! - `checkpoints`: how far each consumer has applied the log, and how far
//!   the relay has published it;
//! - `stall`: a failing consumer is retried, then reported stalled.
//!
//! A consumer reads each event's domain event through [`decode`], which
//! upcasts an older schema first (`event_log::typed`).

pub mod checkpoints;
pub mod runner;
pub mod stall;

use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use sqlx::PgConnection;

pub use runner::{apply_guarded, Runner, RunnerConfig};
pub use stall::RetryPolicy;

use crate::{Error, EventEnvelope};

/// Something that applies the log in order: a projector or a policy.
pub trait Consumer: Send + Sync + 'static {
    /// Stable name: the checkpoint's key and part of the durable consumer's.
    fn name(&self) -> &'static str;

    /// The tables this consumer writes (a read model's; none for a policy).
    /// A rebuild recreates exactly these.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Applies `events` (in position order, none applied before) inside
    /// `tx`, which commits together with the checkpoint.
    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>>;
}

/// The domain event of `event` when it belongs to one of `wanted` (others
/// are skipped undecoded), upcast first; an event that does not decode is
/// the consumer's error at that event.
pub fn decode(event: &EventEnvelope, wanted: &[Aggregate]) -> Result<Option<Event>, Error> {
    event
        .event_among(wanted)
        .map_err(|e| Error::apply(event, e))
}
