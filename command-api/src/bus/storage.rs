//! What the bus needs from an event store, and no more: load an
//! aggregate's stored state, append events after an expected sequence
//! (answering their global positions, or that another writer was first),
//! read the latest sequence and position, write a snapshot.
//!
//! `postgres` is the store of record; `memory` lets the application layer
//! be tested without a database.

use std::collections::HashMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;

use super::CommandError;

/// An aggregate as stored: its state and the sequence of the last event
/// it reflects (0 and the default state when it has none).
pub struct Stored<A> {
    pub aggregate: A,
    pub sequence: usize,
}

/// What an append came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// The events are recorded at these global positions, in order.
    At(Vec<i64>),
    /// Another writer recorded one of these sequences first: nothing of
    /// this append is recorded.
    Conflict,
}

#[async_trait]
pub trait EventStorage<A: Aggregate>: Send + Sync {
    /// The aggregate's stored state, events of older schemas upcast.
    async fn load(&self, aggregate_id: &str) -> Result<Stored<A>, CommandError>;

    /// Appends `events` (each with its metadata) right after sequence
    /// `after`, all or nothing.
    async fn append(
        &self,
        aggregate_id: &str,
        after: usize,
        events: &[A::Event],
        metadata: &[&HashMap<String, String>],
    ) -> Result<Appended, CommandError>;

    /// The sequence and global position of the aggregate's last stored
    /// event ((0, 0): none).
    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), CommandError>;

    /// Stores `aggregate`, the state after event `sequence` (committed), as
    /// the aggregate's snapshot, off the caller's path. Best effort: a lost
    /// snapshot only costs a cold load some replay.
    fn write_snapshot(&self, aggregate_id: &str, aggregate: A, sequence: usize);
}
