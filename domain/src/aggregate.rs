//! The one way every aggregate of this crate handles a command: it decides
//! first, on its current state and without changing it, and only then
//! records the events it decided (each applied as it is written).
//!
//! So a rejected command leaves the aggregate exactly as it was: the command
//! bus (command-api `bus.rs`) relies on this when it decides a batch of
//! commands one after the other on the same loaded aggregate.
//!
//! `cqrs_es::Aggregate` is a foreign trait, so the orphan rule forbids a
//! blanket `impl<T: Decide> Aggregate for T`; each aggregate's `Aggregate`
//! impl writes its `handle` with `handle_by_deciding!()` instead.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;

/// The pure half of handling a command: what events the command yields on
/// the current state, or why it is rejected. An empty list is a no-op (an
/// idempotent retry, a command already satisfied).
pub trait Decide: Aggregate {
    fn decide(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
}

/// Decides `command` on `aggregate`, then writes every event to `sink`
/// (which applies it). Nothing is written, and nothing applied, unless the
/// whole decision succeeded.
pub async fn decide_then_write<A: Decide>(
    aggregate: &mut A,
    command: A::Command,
    sink: &EventSink<A>,
) -> Result<(), A::Error> {
    let events = aggregate.decide(command)?;
    for event in events {
        sink.write(event, aggregate).await;
    }
    Ok(())
}

/// Writes `cqrs_es::Aggregate::handle` inside an `impl Aggregate` block, as
/// [`decide_then_write`] with the aggregate's [`Decide`] impl.
macro_rules! handle_by_deciding {
    () => {
        async fn handle(
            &mut self,
            command: Self::Command,
            _services: &Self::Services,
            sink: &::cqrs_es::event_sink::EventSink<Self>,
        ) -> Result<(), Self::Error> {
            $crate::aggregate::decide_then_write(self, command, sink).await
        }
    };
}
pub(crate) use handle_by_deciding;
