//! Runs commands against aggregates stored by postgres-es.
//!
//! cqrs-es's `CqrsFramework` throws away what it committed, but a command's
//! answer must carry the global position of its last event, so the bus
//! drives the same `EventStore` itself: load, handle, commit. It also
//! serialises commands to one aggregate inside this process (striped
//! locks) so that a hot listing queues instead of failing on version
//! conflicts, and retries the conflicts that other processes still cause.
//! Events stored with an older schema are upcast on load
//! (`domain::upcast`), never rewritten.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};
use domain::DomainError;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::context::CommandContext;
use crate::error::ApiError;

/// How often a command is retried after an optimistic-concurrency conflict.
const MAX_ATTEMPTS: u32 = 12;

/// A fixed set of mutexes; an aggregate maps to one by hash. Bounded memory,
/// no clean-up, and unrelated aggregates rarely share a stripe.
pub struct AggregateLocks {
    stripes: Vec<Mutex<()>>,
}

impl AggregateLocks {
    pub fn new(stripes: usize) -> Self {
        Self {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, aggregate_type: &str, aggregate_id: &str) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        (aggregate_type, aggregate_id).hash(&mut hasher);
        &self.stripes[(hasher.finish() % self.stripes.len() as u64) as usize]
    }
}

/// What a command recorded.
pub struct Committed<A: Aggregate> {
    pub events: Vec<EventEnvelope<A>>,
    /// Global position of the last recorded event; when the command recorded
    /// nothing (an idempotent repeat), the aggregate's latest position.
    pub position: i64,
}

pub struct CommandBus<A>
where
    A: Aggregate,
{
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    locks: Arc<AggregateLocks>,
    /// Whether the store snapshots the aggregate (see `execute`).
    snapshots: bool,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone,
{
    /// A bus that replays every event of an aggregate on load.
    pub fn new(pool: PgPool, locks: Arc<AggregateLocks>) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self {
            store: PersistedEventStore::new_event_store(repo)
                .with_upcasters(domain::upcast::upcasters()),
            pool,
            locks,
            snapshots: false,
        }
    }

    /// A bus that snapshots the aggregate every `every` events.
    pub fn with_snapshots(pool: PgPool, locks: Arc<AggregateLocks>, every: usize) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self {
            store: PersistedEventStore::new_snapshot_store(repo, every.max(1))
                .with_upcasters(domain::upcast::upcasters()),
            pool,
            locks,
            snapshots: true,
        }
    }

    /// The aggregate's current state (a default one if it has no events).
    pub async fn load(&self, aggregate_id: &str) -> Result<A, ApiError> {
        let mut context = self.store.load_aggregate(aggregate_id).await?;
        Ok(std::mem::take(context.aggregate()))
    }

    /// Handles `command` and records its events, retrying on conflicts.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, ApiError> {
        // accepted | rejected (the domain said no) | conflict (retries
        // exhausted) | error (a dependency failed); each retry counts too.
        let mut outcome = "error";
        let result = self
            .execute_attempts(aggregate_id, command, context, command_name, &mut outcome)
            .await;
        metrics::counter!(
            "ledger_commands_total",
            "aggregate_type" => A::TYPE,
            "outcome" => outcome
        )
        .increment(1);
        result
    }

    async fn execute_attempts(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
        outcome: &mut &'static str,
    ) -> Result<Committed<A>, ApiError> {
        let _guard = self.locks.stripe(A::TYPE, aggregate_id).lock().await;
        let metadata = context.metadata(command_name);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut loaded = self.store.load_aggregate(aggregate_id).await?;
            let sink = cqrs_es::event_sink::EventSink::default();
            // cqrs-es 0.5's sink applies each event to the aggregate it is
            // given, and a snapshot store applies the committed events to
            // the context's aggregate once more before saving the snapshot:
            // handling on the context itself would count them twice. With
            // snapshots, handle on a copy and commit the context untouched.
            if self.snapshots {
                let mut working = loaded.aggregate().clone();
                working
                    .handle(command.clone(), &(), &sink)
                    .await
                    .map_err(|e| {
                        *outcome = "rejected";
                        ApiError::from(e)
                    })?;
            } else {
                loaded
                    .aggregate()
                    .handle(command.clone(), &(), &sink)
                    .await
                    .map_err(|e| {
                        *outcome = "rejected";
                        ApiError::from(e)
                    })?;
            }
            let events = sink.collect().await;
            if events.is_empty() {
                let position = self.latest_position(aggregate_id).await?;
                *outcome = "accepted";
                return Ok(Committed {
                    events: Vec::new(),
                    position,
                });
            }
            match self.store.commit(events, loaded, metadata.clone()).await {
                Ok(events) => {
                    let last = events.last().map_or(0, |e| e.sequence);
                    let position = self.position_of(aggregate_id, last).await?;
                    *outcome = "accepted";
                    return Ok(Committed { events, position });
                }
                Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "version conflict, retrying"
                    );
                    metrics::counter!(
                        "ledger_commands_total",
                        "aggregate_type" => A::TYPE,
                        "outcome" => "retried"
                    )
                    .increment(1);
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(err) => {
                    if matches!(err, AggregateError::AggregateConflict) {
                        *outcome = "conflict";
                    }
                    return Err(err.into());
                }
            }
        }
    }

    async fn position_of(&self, aggregate_id: &str, sequence: usize) -> Result<i64, ApiError> {
        let position: i64 = sqlx::query_scalar(
            "SELECT global_position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(sequence as i64)
        .fetch_one(&self.pool)
        .await?;
        Ok(position)
    }

    async fn latest_position(&self, aggregate_id: &str) -> Result<i64, ApiError> {
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT global_position FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence DESC LIMIT 1",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(position.unwrap_or(0))
    }
}

/// Jittered exponential backoff, capped at ~50 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base + 1);
    Duration::from_millis((base + jitter).min(50))
}
