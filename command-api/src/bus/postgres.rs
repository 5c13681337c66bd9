//! The bus's event store in PostgreSQL: postgres-es's `events` and
//! `snapshots` tables, through the statements of `event_log` (the one
//! owner of every statement on the log).
//!
//! - Loads go through postgres-es's `PersistedEventStore` (snapshot, then
//!   later events); events stored with an older schema are upcast on load
//!   (`domain::upcast`), never rewritten.
//! - An append is one round trip: the events (in sequence order, so the
//!   hash-chain trigger sees each predecessor), `RETURNING` the global
//!   positions. A unique violation on (aggregate, sequence) means another
//!   writer was first.
//! - A snapshot is encoded and written by a task of its own: for an
//!   inventory with tens of thousands of bookings that is megabytes of
//!   JSON, which stalled every command queued on the aggregate for up to
//!   200 ms. An older snapshot never replaces a newer.

use std::collections::HashMap;
use std::sync::Arc;
use tracing::Instrument;

use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, DomainEvent, EventStore};
use domain::DomainError;
use event_log::statements::append::{self as statements, AppendPart, JointAppend, NewEvents};
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

use super::storage::{Appended, Companion, EventStorage, JointAppended, JointPart, Stored};
use super::{CommandError, StoreError};

pub struct PostgresStorage<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    /// The snapshot interval the store was made with (`current_snapshot`
    /// counts in these); `None`: no snapshots.
    snapshot_every: Option<usize>,
}

impl<A> PostgresStorage<A>
where
    A: Aggregate<Error = DomainError>,
{
    /// A store that replays every event of an aggregate on a load.
    pub fn new(pool: PgPool) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(PersistedEventStore::new_event_store(repo), pool, None)
    }

    /// A store that loads from the aggregate's snapshot, written every
    /// `every` events or so.
    pub fn with_snapshots(pool: PgPool, every: usize) -> Self {
        let every = every.max(1);
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(
            PersistedEventStore::new_snapshot_store(repo, every),
            pool,
            Some(every),
        )
    }

    fn build(
        store: PersistedEventStore<PostgresEventRepository, A>,
        pool: PgPool,
        snapshot_every: Option<usize>,
    ) -> Self {
        Self {
            store: store.with_upcasters(domain::upcast::upcasters()),
            pool,
            snapshot_every,
        }
    }
}

#[async_trait]
impl<A> EventStorage<A> for PostgresStorage<A>
where
    A: Aggregate<Error = DomainError> + 'static,
{
    async fn load(&self, aggregate_id: &str) -> Result<Stored<A>, CommandError> {
        let context = self.store.load_aggregate(aggregate_id).await?;
        // An aggregate's tenant never changes: asked once per cold load.
        let tenant = if context.current_sequence == 0 {
            None
        } else {
            event_log::statements::reads::tenant_of(&self.pool, A::TYPE, aggregate_id).await?
        };
        Ok(Stored {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
            tenant,
        })
    }

    async fn append(
        &self,
        aggregate_id: &str,
        after: usize,
        events: &[A::Event],
        metadata: &[&HashMap<String, String>],
    ) -> Result<Appended, CommandError> {
        let encoded = encode::<A>(events, metadata)?;
        match statements::append(
            &self.pool,
            A::TYPE,
            aggregate_id,
            after as i64 + 1,
            &encoded,
        )
        .await
        {
            Ok(positions) => Ok(Appended::At(positions)),
            Err(event_log::Error::Conflict) => Ok(Appended::Conflict),
            Err(event_log::Error::Database(err)) => Err(err.into()),
            Err(other) => Err(CommandError::Store(StoreError::failed(other))),
        }
    }

    /// One statement, so one transaction, for every part and companion.
    async fn append_joint(
        &self,
        parts: &[JointPart<'_, A>],
        companions: &[Arc<dyn Companion>],
    ) -> Result<JointAppended, CommandError> {
        let encoded: Vec<NewEvents> = parts
            .iter()
            .map(|part| encode::<A>(part.events, part.metadata))
            .collect::<Result<_, _>>()?;
        let mut rows: Vec<AppendPart<'_>> = parts
            .iter()
            .zip(&encoded)
            .map(|(part, events)| AppendPart {
                aggregate_type: A::TYPE,
                aggregate_id: part.aggregate_id,
                first_sequence: part.after as i64 + 1,
                events,
            })
            .collect();
        rows.extend(companions.iter().map(|companion| AppendPart {
            aggregate_type: companion.aggregate_type(),
            aggregate_id: companion.aggregate_id(),
            first_sequence: companion.after() as i64 + 1,
            events: companion.encoded(),
        }));
        // Each guard with the companion it belongs to.
        let mut guards = Vec::new();
        let mut owners = Vec::new();
        for (at, companion) in companions.iter().enumerate() {
            guards.extend(companion.guards().iter().cloned());
            owners.extend(std::iter::repeat_n(at, companion.guards().len()));
        }
        match statements::append_joint(&self.pool, &rows, &guards).await {
            Ok(JointAppend::Recorded(mut positions)) => {
                let companions = positions.split_off(parts.len());
                Ok(JointAppended::At {
                    parts: positions,
                    companions,
                })
            }
            Ok(JointAppend::Stale(failed)) => {
                let mut stale: Vec<usize> = failed
                    .iter()
                    .filter_map(|&g| owners.get(g).copied())
                    .collect();
                stale.dedup();
                Ok(JointAppended::Stale(stale))
            }
            Err(event_log::Error::Conflict) => Ok(JointAppended::Conflict),
            Err(event_log::Error::Database(err)) => Err(err.into()),
            Err(other) => Err(CommandError::Store(StoreError::failed(other))),
        }
    }

    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), CommandError> {
        let latest = statements::latest(&self.pool, A::TYPE, aggregate_id).await?;
        Ok((latest.sequence as usize, latest.position))
    }

    /// Failures are logged: the next snapshot falls due later.
    fn write_snapshot(&self, aggregate_id: &str, aggregate: A, sequence: usize) {
        let Some(every) = self.snapshot_every else {
            return;
        };
        let pool = self.pool.clone();
        let aggregate_id = aggregate_id.to_owned();
        // In the worker's span, which names the aggregate.
        tokio::spawn(async move {
            // Encoding megabytes is CPU work: off the async workers.
            let payload = match tokio::task::spawn_blocking(move || {
                serde_json::to_string(&aggregate)
            })
            .await
            {
                Ok(Ok(payload)) => payload,
                Ok(Err(err)) => {
                    tracing::warn!(aggregate = A::TYPE, %aggregate_id, error = %err, "could not encode a snapshot");
                    return;
                }
                Err(_) => return,
            };
            let outcome = statements::upsert_snapshot(
                &pool,
                A::TYPE,
                &aggregate_id,
                sequence as i64,
                (sequence / every) as i64,
                &payload,
            )
            .await;
            if let Err(err) = outcome {
                tracing::warn!(aggregate = A::TYPE, %aggregate_id, sequence, error = %err, "could not write a snapshot");
            }
        }
        .in_current_span());
    }
}

/// Events with their metadata, encoded as the log stores them.
pub(super) fn encode<A: Aggregate>(
    events: &[A::Event],
    metadata: &[&HashMap<String, String>],
) -> Result<NewEvents, CommandError> {
    let failed = |e: serde_json::Error| CommandError::Store(StoreError::failed(e));
    let mut encoded = NewEvents::with_capacity(events.len());
    for (event, metadata) in events.iter().zip(metadata) {
        encoded.push(
            event.event_type(),
            event.event_version(),
            serde_json::to_value(event).map_err(failed)?,
            serde_json::to_value(metadata).map_err(failed)?,
        );
    }
    Ok(encoded)
}
