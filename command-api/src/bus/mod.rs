//! Runs commands against aggregates stored in postgres-es's tables.
//!
//! cqrs-es's `CqrsFramework` throws away what it committed, but a command's
//! answer must carry the global position of its last event, so the bus
//! drives the store itself: load, handle, append.
//!
//! - **One writer per aggregate in this process.** Commands to an aggregate
//!   queue for a worker task that exists while the queue is not empty. The
//!   worker takes every queued command as one batch: it handles them one
//!   after the other on the aggregate's state and appends all their events
//!   in one statement, so a hot listing costs one commit per batch instead
//!   of one per command, and never fails on version conflicts with itself.
//!   Nothing is answered before the batch is durable. Conflicts that other
//!   processes cause are retried with a fresh load.
//! - **A bounded cache of states.** The state a batch leaves behind is kept,
//!   so the next batch does not load the aggregate again (a listing with
//!   10,000 bookings would otherwise read and parse its snapshot every
//!   time). The cache is never trusted to accept anything: the append
//!   carries the expected sequences, and a stale copy fails it with a
//!   conflict and is reloaded. A rejection or no-op decided on a cached
//!   copy is confirmed against the stored sequence first.
//! - **One round trip per append.** The events (in sequence order, so the
//!   hash-chain trigger sees each predecessor), `RETURNING` the global
//!   positions.
//! - **Snapshots off the worker's path.** When one falls due, a copy of the
//!   state is encoded and written by a task of its own after the append:
//!   for an inventory with tens of thousands of bookings that is megabytes
//!   of JSON, which stalled every command queued on the aggregate for up
//!   to 200 ms. A snapshot only spares a cold load some replay, so one
//!   lost in a crash costs nothing, and an older one never replaces a newer.
//!
//! Loads go through postgres-es's `PersistedEventStore` (snapshot, then
//! later events), and events stored with an older schema are upcast on
//! load (`domain::upcast`), never rewritten.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, EventStore};
use domain::DomainError;
use ledger_nats::CommitNotifier;
use lru::LruCache;
use postgres_es::PostgresEventRepository;
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::context::CommandContext;

mod error;

pub use error::{CommandError, StoreError};

/// How often a batch is retried after an optimistic-concurrency conflict.
const MAX_ATTEMPTS: u32 = 12;

/// Most commands handled and appended together.
const MAX_BATCH: usize = 64;

/// Aggregates kept in memory per aggregate type (least recently used go).
const CACHE_CAPACITY: usize = 4_096;

/// What a command recorded.
pub struct Committed<A: Aggregate> {
    pub events: Vec<EventEnvelope<A>>,
    /// Global position of the last recorded event; when the command recorded
    /// nothing (an idempotent repeat), the aggregate's latest position.
    pub position: i64,
}

/// A command waiting for its aggregate's worker.
struct Pending<A: Aggregate> {
    command: A::Command,
    metadata: HashMap<String, String>,
    reply: oneshot::Sender<Result<Committed<A>, CommandError>>,
}

/// An aggregate's state and the sequence of the last event it reflects.
struct Loaded<A> {
    aggregate: A,
    sequence: usize,
    /// Sequence of the last snapshot this process knows of (on a load:
    /// the loaded sequence, which errs towards a later snapshot).
    snapshot_at: usize,
}

/// How one command of a batch came out, before the batch is appended.
enum Decided<A: Aggregate> {
    Rejected(DomainError),
    /// Its events, in order (none for a no-op).
    Accepted(Vec<A::Event>),
}

/// How one try at a batch came out.
enum Attempt<A: Aggregate> {
    /// Every command decided and its events durable: one answer each.
    Answered(Vec<Result<Committed<A>, CommandError>>),
    /// Another writer recorded these sequences first: try again later.
    Conflict,
    /// The cached copy was behind the store: try again now, from the store.
    Stale,
    /// The store failed; every command of the batch gets this error.
    Failed(CommandError),
}

/// What an append came to.
enum Appended {
    /// The events are recorded, at these global positions (in order).
    At(Vec<i64>),
    /// Another writer recorded one of these sequences first.
    Conflict,
}

pub struct CommandBus<A: Aggregate> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Aggregate> {
    store: PersistedEventStore<PostgresEventRepository, A>,
    pool: PgPool,
    /// Snapshot the aggregate at least this many events apart (`None`:
    /// never); see [`snapshot_due`].
    snapshot_every: Option<usize>,
    /// Only the aggregate's worker touches its entry: taken at the start of
    /// a batch, put back after it.
    cache: Mutex<LruCache<String, Loaded<A>>>,
    /// Commands waiting, per aggregate; an aggregate has a worker exactly
    /// while it has an entry here.
    queues: Mutex<HashMap<String, VecDeque<Pending<A>>>>,
    /// Wakes the relay after each append.
    notifier: CommitNotifier,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// A bus that replays every event of an aggregate on a cold load.
    pub fn new(pool: PgPool, notifier: CommitNotifier) -> Self {
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(
            PersistedEventStore::new_event_store(repo),
            pool,
            notifier,
            None,
        )
    }

    /// A bus that snapshots the aggregate every `every` events.
    pub fn with_snapshots(pool: PgPool, notifier: CommitNotifier, every: usize) -> Self {
        let every = every.max(1);
        let repo = PostgresEventRepository::new(pool.clone());
        Self::build(
            PersistedEventStore::new_snapshot_store(repo, every),
            pool,
            notifier,
            Some(every),
        )
    }

    fn build(
        store: PersistedEventStore<PostgresEventRepository, A>,
        pool: PgPool,
        notifier: CommitNotifier,
        snapshot_every: Option<usize>,
    ) -> Self {
        let capacity = NonZeroUsize::new(CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            inner: Arc::new(Inner {
                store: store.with_upcasters(domain::upcast::upcasters()),
                pool,
                snapshot_every,
                cache: Mutex::new(LruCache::new(capacity)),
                queues: Mutex::new(HashMap::new()),
                notifier,
            }),
        }
    }

    /// The aggregate's current state (a default one if it has no events).
    pub async fn load(&self, aggregate_id: &str) -> Result<A, CommandError> {
        Ok(self.inner.load_stored(aggregate_id).await?.aggregate)
    }

    /// [`execute`](Self::execute) for an aggregate id this process has just
    /// made up (a new UUIDv7): no event can exist under it, so the worker
    /// starts from the empty aggregate instead of reading the store (one
    /// statement less per order). Were the id taken after all, the append
    /// would conflict on its first sequence, like any stale cached copy,
    /// and the worker would load the stored state and decide again.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        self.inner.cache_put_if_absent(
            aggregate_id,
            Loaded {
                aggregate: A::default(),
                sequence: 0,
                snapshot_at: 0,
            },
        );
        self.execute(aggregate_id, command, context, command_name)
            .await
    }

    /// Handles `command` and records its events. The command runs to its
    /// end even if the caller stops waiting.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            command,
            metadata: context.metadata(command_name),
            reply,
        };
        let start_worker = {
            let mut queues = self
                .inner
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match queues.get_mut(aggregate_id) {
                Some(queue) => {
                    queue.push_back(pending);
                    false
                }
                None => {
                    queues.insert(aggregate_id.to_owned(), VecDeque::from([pending]));
                    true
                }
            }
        };
        if start_worker {
            tokio::spawn(Inner::work(self.inner.clone(), aggregate_id.to_owned()));
        }
        answer.await.unwrap_or(Err(CommandError::Stopped))
    }
}

/// Removes the aggregate's queue if its worker unwinds, so that the next
/// command starts a new worker (the commands still queued are answered
/// with an error when their senders drop).
struct WorkerGuard<'a, A: Aggregate> {
    inner: &'a Inner<A>,
    aggregate_id: &'a str,
    finished: bool,
}

impl<A: Aggregate> Drop for WorkerGuard<'_, A> {
    fn drop(&mut self) {
        if !self.finished {
            self.inner
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(self.aggregate_id);
        }
    }
}

impl<A> Inner<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// The aggregate's worker: batches until its queue is empty.
    async fn work(self: Arc<Self>, aggregate_id: String) {
        let mut guard = WorkerGuard {
            inner: &self,
            aggregate_id: &aggregate_id,
            finished: false,
        };
        loop {
            let batch: Vec<Pending<A>> = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(queue) = queues.get_mut(&aggregate_id) else {
                    break;
                };
                if queue.is_empty() {
                    queues.remove(&aggregate_id);
                    break;
                }
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            self.run_batch(&aggregate_id, batch).await;
        }
        guard.finished = true;
    }

    /// Decides and appends one batch, retrying conflicts, and answers each
    /// command.
    async fn run_batch(&self, aggregate_id: &str, batch: Vec<Pending<A>>) {
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self.attempt(aggregate_id, &batch).await {
                Attempt::Answered(answers) => break Ok(answers),
                Attempt::Stale => continue,
                Attempt::Conflict if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "version conflict, retrying"
                    );
                    count::<A>(batch.len(), "retried");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Attempt::Conflict => {
                    count::<A>(batch.len(), "conflict");
                    break Err(CommandError::Conflict);
                }
                Attempt::Failed(err) => {
                    count::<A>(batch.len(), "error");
                    break Err(err);
                }
            }
        };
        match outcome {
            Ok(answers) => {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    count::<A>(
                        1,
                        if answer.is_ok() {
                            "accepted"
                        } else {
                            "rejected"
                        },
                    );
                    // A caller that stopped waiting needs no answer.
                    let _ = pending.reply.send(answer);
                }
            }
            Err(err) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(err.clone()));
                }
            }
        }
    }

    /// One try at a batch: decide every command on the current state, then
    /// append all their events at once.
    async fn attempt(&self, aggregate_id: &str, batch: &[Pending<A>]) -> Attempt<A> {
        let cached = self.cache_take(aggregate_id);
        let from_cache = cached.is_some();
        let mut loaded = match cached {
            Some(loaded) => loaded,
            None => match self.load_stored(aggregate_id).await {
                Ok(loaded) => loaded,
                Err(err) => return Attempt::Failed(err),
            },
        };
        let mut decided: Vec<Decided<A>> = Vec::with_capacity(batch.len());
        for pending in batch {
            let sink = cqrs_es::event_sink::EventSink::default();
            // Handling applies the new events to `loaded.aggregate`; every
            // aggregate decides before it writes, so a rejection leaves it
            // untouched.
            decided.push(
                match loaded
                    .aggregate
                    .handle(pending.command.clone(), &(), &sink)
                    .await
                {
                    Ok(()) => Decided::Accepted(sink.collect().await),
                    Err(rejection) => Decided::Rejected(rejection),
                },
            );
        }
        let unconfirmed = decided.iter().any(|d| match d {
            Decided::Rejected(_) => true,
            Decided::Accepted(events) => events.is_empty(),
        });
        let appending = decided.iter().any(|d| match d {
            Decided::Accepted(events) => !events.is_empty(),
            Decided::Rejected(_) => false,
        });

        let (positions, position) = if appending {
            // A stale copy makes the append conflict, which also covers
            // the rejections and no-ops decided on it.
            let mut events = Vec::new();
            let mut metadata = Vec::new();
            for (d, pending) in decided.iter().zip(batch) {
                if let Decided::Accepted(new) = d {
                    events.extend(new.iter().cloned());
                    metadata.extend(std::iter::repeat_n(&pending.metadata, new.len()));
                }
            }
            match self.append(aggregate_id, &loaded, &events, &metadata).await {
                Ok(Appended::At(positions)) => {
                    self.notifier.committed();
                    let last = positions.last().copied().unwrap_or(0);
                    (positions, last)
                }
                // Not contention but a copy behind the store.
                Ok(Appended::Conflict) if from_cache => return Attempt::Stale,
                Ok(Appended::Conflict) => return Attempt::Conflict,
                Err(err) => return Attempt::Failed(err),
            }
        } else {
            let (sequence, position) = match self.latest(aggregate_id).await {
                Ok(latest) => latest,
                Err(err) => return Attempt::Failed(err),
            };
            if unconfirmed && from_cache && sequence != loaded.sequence {
                return Attempt::Stale;
            }
            (Vec::new(), position)
        };

        // Every command is final: answer each with its own events.
        let mut answers = Vec::with_capacity(batch.len());
        let mut next = 0;
        for (d, pending) in decided.into_iter().zip(batch) {
            answers.push(match d {
                Decided::Rejected(rejection) => Err(CommandError::Rejected(rejection)),
                Decided::Accepted(new) => {
                    let count = new.len();
                    let envelopes: Vec<EventEnvelope<A>> = new
                        .into_iter()
                        .zip(loaded.sequence + next + 1..)
                        .map(|(payload, sequence)| EventEnvelope {
                            aggregate_id: aggregate_id.to_owned(),
                            sequence,
                            payload,
                            metadata: pending.metadata.clone(),
                        })
                        .collect();
                    next += count;
                    Ok(Committed {
                        events: envelopes,
                        position: if count == 0 {
                            position
                        } else {
                            positions[next - 1]
                        },
                    })
                }
            });
        }
        let last = loaded.sequence + next;
        loaded.sequence = last;
        if let Some(every) = self.snapshot_every {
            if next > 0 && snapshot_due(every, loaded.snapshot_at, last) {
                loaded.snapshot_at = last;
                self.write_snapshot(aggregate_id, loaded.aggregate.clone(), last, every);
            }
        }
        self.cache_put(aggregate_id, loaded);
        Attempt::Answered(answers)
    }

    async fn load_stored(&self, aggregate_id: &str) -> Result<Loaded<A>, CommandError> {
        let context = self.store.load_aggregate(aggregate_id).await?;
        Ok(Loaded {
            aggregate: context.aggregate,
            sequence: context.current_sequence,
            snapshot_at: context.current_sequence,
        })
    }

    /// Appends `events` after `loaded.sequence` (whose aggregate already
    /// reflects them) in one statement. Answers each event's global
    /// position.
    async fn append(
        &self,
        aggregate_id: &str,
        loaded: &Loaded<A>,
        events: &[A::Event],
        metadata: &[&HashMap<String, String>],
    ) -> Result<Appended, CommandError> {
        let failed = |e: serde_json::Error| CommandError::Store(StoreError::failed(e));
        let first = loaded.sequence + 1;
        let mut sequences = Vec::with_capacity(events.len());
        let mut types = Vec::with_capacity(events.len());
        let mut versions = Vec::with_capacity(events.len());
        let mut payloads = Vec::with_capacity(events.len());
        let mut metadatas = Vec::with_capacity(events.len());
        for ((event, sequence), metadata) in events.iter().zip(first..).zip(metadata) {
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

    /// Writes `aggregate` (the state after event `sequence`, committed) as
    /// the aggregate's snapshot, in a task of its own; see the module's
    /// notes. Failures are logged: the next snapshot falls due later.
    fn write_snapshot(&self, aggregate_id: &str, aggregate: A, sequence: usize, every: usize) {
        let pool = self.pool.clone();
        let aggregate_id = aggregate_id.to_owned();
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
        });
    }

    fn cache_take(&self, aggregate_id: &str) -> Option<Loaded<A>> {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop(aggregate_id)
    }

    fn cache_put(&self, aggregate_id: &str, loaded: Loaded<A>) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(aggregate_id.to_owned(), loaded);
    }

    fn cache_put_if_absent(&self, aggregate_id: &str, loaded: Loaded<A>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if !cache.contains(aggregate_id) {
            cache.put(aggregate_id.to_owned(), loaded);
        }
    }

    /// The sequence and global position of the aggregate's last stored
    /// event ((0, 0): none).
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
}

/// Whether appending up to `last` calls for a new snapshot: `every` events
/// after the last one at least, and a tenth of the history on long ones, so
/// that writing snapshots (which grow with the history: a listing's
/// inventory keeps every booking) costs a bounded share of each append,
/// while a cold load still replays at most a tenth of the events on top of
/// its snapshot.
fn snapshot_due(every: usize, snapshot_at: usize, last: usize) -> bool {
    last.saturating_sub(snapshot_at) >= every.max(last / 10)
}

/// Counts commands by outcome: accepted | rejected (the domain said no) |
/// conflict (retries exhausted) | error (a dependency failed) | retried.
fn count<A: Aggregate>(commands: usize, outcome: &'static str) {
    metrics::counter!(
        "ledger_commands_total",
        "aggregate_type" => A::TYPE,
        "outcome" => outcome
    )
    .increment(commands as u64);
}

/// Jittered exponential backoff, capped at ~50 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 1u64 << attempt.min(5);
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (base + 1);
    Duration::from_millis((base + jitter).min(50))
}

#[cfg(test)]
mod tests {
    use super::snapshot_due;

    #[test]
    fn snapshots_fall_due_every_so_many_events_then_every_tenth_of_the_history() {
        assert!(!snapshot_due(50, 0, 49));
        assert!(snapshot_due(50, 0, 50));
        assert!(snapshot_due(50, 450, 500));
        // 20,000 events in: the next snapshot after 2,000 more.
        assert!(!snapshot_due(50, 20_000, 21_999));
        assert!(snapshot_due(50, 20_000, 22_300));
    }
}
