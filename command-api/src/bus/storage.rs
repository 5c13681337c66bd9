//! What the bus needs from an event store, and no more: load an
//! aggregate's stored state, append events after an expected sequence
//! (answering their global positions, or that another writer was first),
//! read the latest sequence and position, write a snapshot.
//!
//! `postgres` is the store of record; `memory` lets the application layer
//! be tested without a database.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use event_log::{Guard, NewEvents};

use super::CommandError;

/// An aggregate as stored: its state and the sequence of the last event
/// it reflects (0 and the default state when it has none).
pub struct Stored<A> {
    pub aggregate: A,
    pub sequence: usize,
    /// The tenant its events belong to (`None`: it has none yet).
    pub tenant: Option<String>,
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

/// One aggregate's part of a joint append.
pub struct JointPart<'a, A: Aggregate> {
    pub aggregate_id: &'a str,
    /// The sequence its events follow.
    pub after: usize,
    pub events: &'a [A::Event],
    pub metadata: &'a [&'a HashMap<String, String>],
}

/// What a joint append came to.
#[derive(Debug, PartialEq, Eq)]
pub enum JointAppended {
    /// Every part's positions, then every companion's, in sequence order.
    At {
        parts: Vec<Vec<i64>>,
        companions: Vec<Vec<i64>>,
    },
    /// One of the aggregates moved on first: nothing is recorded.
    Conflict,
    /// These companions (by their place) were decided on terms that changed
    /// since (their guards saw a newer event): nothing is recorded.
    Stale(Vec<usize>),
}

/// Events of another aggregate type, decided before the command they ride
/// with, that are recorded in the same transaction as that command's events
/// or not at all: a placed order beside the holds it took (issue 18: a
/// crash can no longer leave holds without their order).
#[async_trait]
pub trait Companion: Send + Sync {
    fn aggregate_type(&self) -> &'static str;
    fn aggregate_id(&self) -> &str;
    /// The sequence its events follow.
    fn after(&self) -> usize;
    /// Its events, encoded for the log.
    fn encoded(&self) -> &NewEvents;
    /// What it was decided on, which must not have changed since.
    fn guards(&self) -> &[Guard] {
        &[]
    }
    /// Records its events on their own (a store without transactions: the
    /// memory store of tests).
    async fn append_alone(&self) -> Result<Appended, CommandError>;
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

    /// Appends several aggregates' events, each right after its expected
    /// sequence, and the companions' events: all or nothing.
    async fn append_joint(
        &self,
        parts: &[JointPart<'_, A>],
        companions: &[Arc<dyn Companion>],
    ) -> Result<JointAppended, CommandError>;

    /// The sequence and global position of the aggregate's last stored
    /// event ((0, 0): none).
    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), CommandError>;

    /// Stores `aggregate`, the state after event `sequence` (committed), as
    /// the aggregate's snapshot, off the caller's path. Best effort: a lost
    /// snapshot only costs a cold load some replay.
    fn write_snapshot(&self, aggregate_id: &str, aggregate: A, sequence: usize);
}
