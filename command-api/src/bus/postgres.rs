//! The bus's event store in PostgreSQL: postgres-es's `events` and
//! `snapshots` tables. Every statement the bus runs on them is here, in
//! one place, so that it can move to the crate that owns the events table.
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
use tracing::Instrument;

use async_trait::async_trait;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, DomainEvent, EventStore};
use domain::DomainError;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;

use super::storage::{Appended, EventStorage, Stored};
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
        Ok(Stored {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
        })
    }

    async fn append(
        &self,
        aggregate_id: &str,
        after: usize,
        events: &[A::Event],
        metadata: &[&HashMap<String, String>],
    ) -> Result<Appended, CommandError> {
        let failed = |e: serde_json::Error| CommandError::Store(StoreError::failed(e));
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadatas = Vec::with_capacity(events.len());
        for ((event, sequence), metadata) in events.iter().zip(after + 1..).zip(metadata) {
            sequences.push(sequence as i64);
            types.push(event.event_type());
            versions.push(event.event_version());
            payloads.push(serde_json::to_value(event).map_err(failed)?);
            metadatas.push(serde_json::to_value(metadata).map_err(failed)?);
        }
        let outcome: Result<Vec<i64>, sqlx::Error> = sqlx::query_scalar(
            "WITH appended AS (
                 INSERT INTO events
                     (aggregate_type, aggregate_id, sequence, event_type, event_version,
                      payload, metadata)
                 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
                   FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                        AS e(sequence, event_type, event_version, payload, metadata)
                 RETURNING global_position
             )
             SELECT global_position FROM appended",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadatas)
        .fetch_all(&self.pool)
        .await;
        let mut positions = match outcome {
            Ok(positions) => positions,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Ok(Appended::Conflict)
            }
            Err(err) => return Err(err.into()),
        };
        if positions.len() != events.len() {
            return Err(CommandError::Store(StoreError::Failed(format!(
                "appended {} of {} events",
                positions.len(),
                events.len()
            ))));
        }
        // Positions are handed out in insertion order, which is sequence
        // order; RETURNING does not promise an order.
        positions.sort_unstable();
        Ok(Appended::At(positions))
    }

    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), CommandError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT sequence, global_position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence DESC LIMIT 1",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map_or((0, 0), |(sequence, position)| (sequence as usize, position)))
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
            let outcome = sqlx::query(
                "INSERT INTO snapshots
                     (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                 VALUES ($1, $2, $3, $4, $5::jsonb)
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                    SET last_sequence = EXCLUDED.last_sequence,
                        current_snapshot = EXCLUDED.current_snapshot,
                        payload = EXCLUDED.payload
                  WHERE snapshots.last_sequence < EXCLUDED.last_sequence",
            )
            .bind(A::TYPE)
            .bind(&aggregate_id)
            .bind(sequence as i64)
            .bind((sequence / every) as i64)
            // Text, never a `Value` tree: for an inventory with thousands of
            // bookings that would cost tens of MB, briefly.
            .bind(payload)
            .execute(&pool)
            .await;
            if let Err(err) = outcome {
                tracing::warn!(aggregate = A::TYPE, %aggregate_id, sequence, error = %err, "could not write a snapshot");
            }
        }
        .in_current_span());
    }
}
