//! Runs commands against aggregates stored in postgres-es's tables.
//!
//! cqrs-es's `CqrsFramework` throws away what it committed, but a command's
//! answer must carry the global position of its last event, so the bus
//! drives the store itself: load, handle, append.
//!
//! - Commands to one aggregate are serialised inside this process (striped
//!   locks), so a hot listing queues instead of failing on version
//!   conflicts; conflicts that other processes cause are retried.
//! - The state each command leaves behind is kept in a bounded cache, so
//!   the next command to that aggregate does not load it again (a listing
//!   with 10,000 bookings would otherwise read and parse its snapshot every
//!   time). The cache is never trusted to accept anything: the append
//!   carries the expected sequence, and a stale copy fails it with a
//!   conflict and is reloaded. A rejection or no-op decided on a cached copy
//!   is confirmed against the stored sequence first.
//! - The append is one statement: the events (in sequence order, so the
//!   hash-chain trigger sees each predecessor), the snapshot when one is
//!   due, and `RETURNING` the global positions — one round trip.
//!
//! Loads go through postgres-es's `PersistedEventStore` (snapshot, then
//! later events), and events stored with an older schema are upcast on
//! load (`domain::upcast`), never rewritten.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, EventStore};
use domain::DomainError;
use ledger_nats::CommitNotifier;
use lru::LruCache;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::context::CommandContext;
use crate::error::ApiError;

/// How often a command is retried after an optimistic-concurrency conflict.
const MAX_ATTEMPTS: u32 = 12;

/// Aggregates kept in memory per aggregate type (least recently used go).
const CACHE_CAPACITY: usize = 16_384;

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

/// An aggregate's state and the sequence of the last event it reflects.
struct Loaded<A> {
    aggregate: A,
    sequence: usize,
}

pub struct CommandBus<A>
where
    A: Aggregate,
{
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    locks: Arc<AggregateLocks>,
    /// Snapshot the aggregate every this many events (`None`: never).
    snapshot_every: Option<usize>,
    /// Only touched while holding the aggregate's stripe lock, so an entry is
    /// taken out for a command and put back after it.
    cache: std::sync::Mutex<LruCache<String, Loaded<A>>>,
    /// Wakes the relay after each append.
    notifier: CommitNotifier,
}

/// Why an append failed.
enum AppendError {
    /// Another writer recorded this sequence first.
    Conflict,
    Failed(ApiError),
}

impl<A> CommandBus<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone,
{
    /// A bus that replays every event of an aggregate on a cold load.
    pub fn new(pool: PgPool, locks: Arc<AggregateLocks>, notifier: CommitNotifier) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(
            PersistedEventStore::new_event_store(repo),
            pool,
            locks,
            notifier,
            None,
        )
    }

    /// A bus that snapshots the aggregate every `every` events.
    pub fn with_snapshots(
        pool: PgPool,
        locks: Arc<AggregateLocks>,
        notifier: CommitNotifier,
        every: usize,
    ) -> Self {
        let every = every.max(1);
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(
            PersistedEventStore::new_snapshot_store(repo, every),
            pool,
            locks,
            notifier,
            Some(every),
        )
    }

    fn build(
        store: PersistedEventStore<PostgresEventRepository, A>,
        pool: PgPool,
        locks: Arc<AggregateLocks>,
        notifier: CommitNotifier,
        snapshot_every: Option<usize>,
    ) -> Self {
        let capacity = NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            store: store.with_upcasters(domain::upcast::upcasters()),
            pool,
            locks,
            snapshot_every,
            cache: std::sync::Mutex::new(LruCache::new(capacity)),
            notifier,
        }
    }

    /// The aggregate's current state (a default one if it has no events).
    pub async fn load(&self, aggregate_id: &str) -> Result<A, ApiError> {
        Ok(self.load_stored(aggregate_id).await?.aggregate)
    }

    async fn load_stored(&self, aggregate_id: &str) -> Result<Loaded<A>, ApiError> {
        let context = self.store.load_aggregate(aggregate_id).await?;
        Ok(Loaded {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
        })
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
            let cached = self.cache_take(aggregate_id);
            let from_cache = cached.is_some();
            let mut loaded = match cached {
                Some(loaded) => loaded,
                None => self.load_stored(aggregate_id).await?,
            };
            let sink = cqrs_es::event_sink::EventSink::default();
            // Handling applies the new events to `loaded.aggregate`; every
            // aggregate decides before it writes, so a rejection leaves it
            // untouched.
            if let Err(rejection) = loaded.aggregate.handle(command.clone(), &(), &sink).await {
                if from_cache && self.stored_sequence(aggregate_id).await? != loaded.sequence {
                    continue;
                }
                self.cache_put(aggregate_id, loaded);
                *outcome = "rejected";
                return Err(rejection.into());
            }
            let events = sink.collect().await;
            if events.is_empty() {
                let (sequence, position) = self.latest(aggregate_id).await?;
                if from_cache && sequence != loaded.sequence {
                    continue;
                }
                self.cache_put(aggregate_id, loaded);
                *outcome = "accepted";
                return Ok(Committed {
                    events: Vec::new(),
                    position,
                });
            }
            match self.append(aggregate_id, &loaded, events, &metadata).await {
                Ok((events, position)) => {
                    self.notifier.committed();
                    loaded.sequence += events.len();
                    self.cache_put(aggregate_id, loaded);
                    *outcome = "accepted";
                    return Ok(Committed { events, position });
                }
                Err(AppendError::Conflict) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        from_cache,
                        "version conflict, retrying"
                    );
                    metrics::counter!(
                        "ledger_commands_total",
                        "aggregate_type" => A::TYPE,
                        "outcome" => "retried"
                    )
                    .increment(1);
                    // A stale cached copy is not contention: reload at once.
                    if !from_cache {
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                }
                Err(AppendError::Conflict) => {
                    *outcome = "conflict";
                    return Err(ApiError::from(
                        cqrs_es::AggregateError::<DomainError>::AggregateConflict,
                    ));
                }
                Err(AppendError::Failed(err)) => return Err(err),
            }
        }
    }

    /// Appends `events` after `loaded.sequence` (whose aggregate already
    /// reflects them), with the snapshot when one falls due, in one
    /// statement. Answers the envelopes and the last global position.
    async fn append(
        &self,
        aggregate_id: &str,
        loaded: &Loaded<A>,
        events: Vec<A::Event>,
        metadata: &HashMap<String, String>,
    ) -> Result<(Vec<EventEnvelope<A>>, i64), AppendError> {
        let failed = |e: serde_json::Error| AppendError::Failed(ApiError::internal(e));
        let metadata_json = serde_json::to_value(metadata).map_err(failed)?;
        let first = loaded.sequence + 1;
        let last = loaded.sequence + events.len();
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadatas = Vec::with_capacity(events.len());
        for (event, sequence) in events.iter().zip(first..) {
            sequences.push(sequence as i64);
            types.push(event.event_type());
            versions.push(event.event_version());
            payloads.push(serde_json::to_value(event).map_err(failed)?);
            metadatas.push(metadata_json.clone());
        }
        let snapshot = match self.snapshot_every {
            Some(every) if last / every > loaded.sequence / every => Some((
                (last / every) as i64,
                serde_json::to_value(&loaded.aggregate).map_err(failed)?,
            )),
            _ => None,
        };
        let (snapshot_number, snapshot_payload) = snapshot.unzip();
        let position: Option<i64> = sqlx::query_scalar(
            "WITH appended AS (
                 INSERT INTO events
                     (aggregate_type, aggregate_id, sequence, event_type, event_version,
                      payload, metadata)
                 SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
                   FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                        AS e(sequence, event_type, event_version, payload, metadata)
                 RETURNING global_position
             ), snapshot AS (
                 INSERT INTO snapshots
                     (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                 SELECT $1, $2, $8, $9, $10::jsonb WHERE $10::jsonb IS NOT NULL
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                    SET last_sequence = EXCLUDED.last_sequence,
                        current_snapshot = EXCLUDED.current_snapshot,
                        payload = EXCLUDED.payload
                  WHERE snapshots.last_sequence < EXCLUDED.last_sequence
             )
             SELECT max(global_position) FROM appended",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(&sequences)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadatas)
        .bind(last as i64)
        .bind(snapshot_number)
        .bind(snapshot_payload)
        .fetch_one(&self.pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => AppendError::Conflict,
            _ => AppendError::Failed(err.into()),
        })?;
        let position = position.ok_or_else(|| {
            AppendError::Failed(ApiError::internal("the append recorded no event"))
        })?;
        let envelopes = events
            .into_iter()
            .zip(first..)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: aggregate_id.to_owned(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        Ok((envelopes, position))
    }

    fn cache_take(&self, aggregate_id: &str) -> Option<Loaded<A>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop(aggregate_id)
    }

    fn cache_put(&self, aggregate_id: &str, loaded: Loaded<A>) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(aggregate_id.to_owned(), loaded);
    }

    /// The sequence of the aggregate's last stored event (0: none).
    async fn stored_sequence(&self, aggregate_id: &str) -> Result<usize, ApiError> {
        Ok(self.latest(aggregate_id).await?.0)
    }

    /// The sequence and global position of the aggregate's last stored
    /// event ((0, 0): none).
    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), ApiError> {
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
}

/// Jittered exponential backoff, capped at ~50 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base + 1);
    Duration::from_millis((base + jitter).min(50))
}
