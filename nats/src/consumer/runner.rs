//! Feeds a consumer (a projector or a policy) from the stream.
//!
//! Each consumer is a durable JetStream pull consumer. The runner takes
//! what has arrived (at most a batch), and in ONE database transaction
//! locks the consumer's checkpoint, drops what is at or below it, applies
//! the rest in position order and stores the new checkpoint; it acks only
//! after the commit. A crash anywhere therefore either applied a batch with
//! its checkpoint or neither, and redelivery is skipped by the checkpoint.
//!
//! "Order is the trap" (DESIGN.md): JetStream may redeliver an old message
//! after newer ones, or lose messages it acknowledged if it crashed before
//! syncing them. The runner never applies an event while an earlier one is
//! missing: the relay only publishes a position once every earlier position
//! is final, so before applying up to position P the runner asks the events
//! table which positions exist between its checkpoint and P and reads any
//! the batch lacks from the table. When the stream is quiet it also checks
//! the relay's published position and catches up from the table, so a read
//! model converges even if the stream dropped the tail of the log.
//!
//! A consumer far behind the stream's tail (a new read model, a checkpoint
//! a rebuild moved forward, a backlog the relay published faster than the
//! consumer took it) reads the backlog from the events table, as a rebuild
//! does, and starts its durable consumer again at the tail. Receiving and
//! skipping millions of messages through NATS is many times slower, and
//! the table holds everything the stream does.
//!
//! A consumer that fails (an event it cannot apply, a panic in its code,
//! the database or NATS away) is retried with backoff and, once the retries
//! are used up, reported stalled at the event it stopped at (see
//! [`super::stall`]); a batch that fails is applied again event by event,
//! so that what precedes the culprit is applied and the culprit is named.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use event_log::statements::{positions, reads};
use futures::{FutureExt, StreamExt};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::stall::{Health, RetryPolicy};
use super::{checkpoints, Consumer};
use crate::stream::{provision, StreamSettings};
use crate::{Error, EventEnvelope};

#[derive(Clone, Debug)]
pub struct RunnerConfig {
    pub stream: StreamSettings,
    /// Most events applied in one transaction.
    pub batch: usize,
    /// After this long without messages, catch up from the events table.
    pub idle_check: Duration,
    /// Idle heartbeat of pull requests: a stalled consumer errors out and
    /// is recreated.
    pub heartbeat: Duration,
    /// With more messages than this still to deliver, the consumer catches
    /// up from the table and restarts its durable consumer at the tail.
    pub reposition_pending: u64,
    /// How failing attempts are retried before the consumer is stalled.
    pub retry: RetryPolicy,
}

impl RunnerConfig {
    pub fn new(stream: StreamSettings) -> Self {
        Self {
            stream,
            batch: 1_000,
            idle_check: Duration::from_millis(500),
            heartbeat: Duration::from_secs(5),
            reposition_pending: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

/// Why [`Runner::consume`] returned without an error.
enum Exit {
    Shutdown,
    /// Far behind the stream: start over with a catch-up from the table.
    FellBehind,
}

pub struct Runner {
    pool: PgPool,
    js: jetstream::Context,
    config: RunnerConfig,
    consumer: Arc<dyn Consumer>,
    health: Health,
}

/// Applies `events` with `consumer`, a panic in its code turned into an
/// error: the event's, when it is one event, else one naming the range.
pub async fn apply_guarded(
    consumer: &dyn Consumer,
    tx: &mut PgConnection,
    events: &[EventEnvelope],
) -> Result<(), Error> {
    match AssertUnwindSafe(consumer.apply(tx, events))
        .catch_unwind()
        .await
    {
        Ok(applied) => applied,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            Err(match events {
                [event] => Error::apply(event, format!("{} panicked: {message}", consumer.name())),
                [first, .., last] => Error::Other(format!(
                    "{} panicked applying events {} to {}: {message}",
                    consumer.name(),
                    first.position,
                    last.position
                )),
                [] => Error::Other(format!("{} panicked: {message}", consumer.name())),
            })
        }
    }
}

/// A batch that failed, and its events (in order, holes filled) when the
/// failure came while applying them.
struct BatchFailure {
    error: Error,
    events: Vec<EventEnvelope>,
}

impl From<Error> for BatchFailure {
    fn from(error: Error) -> Self {
        Self {
            error,
            events: Vec::new(),
        }
    }
}

impl From<sqlx::Error> for BatchFailure {
    fn from(error: sqlx::Error) -> Self {
        Error::from(error).into()
    }
}

impl Runner {
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        config: RunnerConfig,
        consumer: Arc<dyn Consumer>,
    ) -> Self {
        Self {
            pool,
            js: jetstream::new(client),
            health: Health::new(consumer.name()),
            config,
            consumer,
        }
    }

    /// Runs until `shutdown` is cancelled, starting over after any failure:
    /// after a backoff, and once the retries are used up, reported stalled
    /// and retried slowly until it applies again.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let wait = match self.consume(&shutdown).await {
                Ok(Exit::Shutdown) => return,
                Ok(Exit::FellBehind) => continue,
                Err(err) => {
                    let position = self.failed_position(&err).await;
                    self.health
                        .failed(&self.pool, &self.config.retry, &err, position)
                        .await
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// The position of the event the consumer failed on: the one named by
    /// the error, else the first after its checkpoint (when the database
    /// answers).
    async fn failed_position(&self, err: &Error) -> Option<i64> {
        if let Error::Apply { position, .. } = err {
            return Some(*position);
        }
        let checkpoint = checkpoints::get(&self.pool, self.consumer.name())
            .await
            .ok()?;
        positions::first_after(&self.pool, checkpoint)
            .await
            .ok()
            .flatten()
    }

    fn durable_name(&self) -> String {
        format!("{}_{}", self.config.stream.name, self.consumer.name())
    }

    async fn consume(&self, shutdown: &CancellationToken) -> Result<Exit, Error> {
        let stream = provision(&self.js, &self.config.stream).await?;
        // Nothing from a stream of another history (a restored database).
        let component = crate::faults::consumer_component(self.consumer.name());
        crate::history::wait_until_ours(&self.pool, &stream, &component, shutdown).await?;
        // The tail before catching up: what the stream holds up to here is
        // also in the table, and the catch-up applies it.
        let tail = stream
            .get_info()
            .await
            .map_err(Error::nats)?
            .state
            .last_sequence;
        self.catch_up_unless_stopped(shutdown).await?;
        if shutdown.is_cancelled() {
            return Ok(Exit::Shutdown);
        }
        let pull = self.positioned_consumer(&stream, tail).await?;
        let mut messages = pull
            .stream()
            .max_messages_per_batch(self.config.batch)
            .heartbeat(self.config.heartbeat)
            .expires(self.config.heartbeat * 4)
            .messages()
            .await
            .map_err(Error::nats)?;
        loop {
            let first = tokio::select! {
                next = tokio::time::timeout(self.config.idle_check, messages.next()) => next,
                _ = shutdown.cancelled() => return Ok(Exit::Shutdown),
            };
            let first = match first {
                Err(_idle) => {
                    self.catch_up_unless_stopped(shutdown).await?;
                    continue;
                }
                Ok(None) => return Err(Error::Nats("the message stream ended".into())),
                Ok(Some(message)) => message.map_err(Error::nats)?,
            };
            let mut batch = vec![first];
            while batch.len() < self.config.batch {
                match messages.next().now_or_never() {
                    Some(Some(Ok(message))) => batch.push(message),
                    Some(Some(Err(err))) => return Err(Error::nats(err)),
                    _ => break,
                }
            }
            let events: Vec<EventEnvelope> = batch
                .iter()
                .filter_map(|m| match EventEnvelope::decode(&m.payload) {
                    Ok(event) => Some(event),
                    Err(err) => {
                        // Only the relay publishes; the table fills the hole.
                        tracing::error!(error = %err, "undecodable message on the stream");
                        None
                    }
                })
                .collect();
            self.apply_batch(events).await?;
            if let Some(last) = batch.last() {
                // AckAll: acknowledges the whole batch, after the commit.
                last.ack().await.map_err(Error::nats)?;
                let still_to_deliver = last.info().map(|info| info.pending).unwrap_or(0);
                if still_to_deliver > self.config.reposition_pending {
                    tracing::info!(
                        consumer = self.consumer.name(),
                        still_to_deliver,
                        "far behind the stream: catching up from the table"
                    );
                    return Ok(Exit::FellBehind);
                }
            }
        }
    }

    /// The durable consumer, delivering from after `tail` when it is new or
    /// when it would redeliver more than `reposition_pending` messages that
    /// the catch-up has already applied. Whatever it then does not deliver
    /// is in the table: a later batch fills it in, or the idle catch-up.
    async fn positioned_consumer(
        &self,
        stream: &jetstream::stream::Stream,
        tail: u64,
    ) -> Result<consumer::PullConsumer, Error> {
        let durable = self.durable_name();
        let config = consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 50_000,
            deliver_policy: match tail {
                0 => consumer::DeliverPolicy::All,
                _ => consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: tail + 1,
                },
            },
            ..Default::default()
        };
        let mut pull: consumer::PullConsumer = stream
            .get_or_create_consumer(&durable, config.clone())
            .await
            .map_err(Error::nats)?;
        let stale = pull.cached_info().num_pending;
        if stale > self.config.reposition_pending {
            tracing::info!(
                consumer = self.consumer.name(),
                stale,
                start_sequence = tail + 1,
                "durable consumer far behind the checkpoint: starting it at the tail"
            );
            stream
                .delete_consumer(&durable)
                .await
                .map_err(Error::nats)?;
            pull = stream.create_consumer(config).await.map_err(Error::nats)?;
            metrics::counter!("ledger_consumer_repositioned_total", "consumer" => self.consumer.name())
                .increment(1);
        }
        Ok(pull)
    }

    /// Applies what the table holds between the checkpoint and the relay's
    /// published position.
    pub async fn catch_up(&self) -> Result<(), Error> {
        self.catch_up_unless_stopped(&CancellationToken::new())
            .await
    }

    /// [`catch_up`](Self::catch_up), returning between batches once
    /// `shutdown` is cancelled (a backlog of millions must not hold up a
    /// graceful shutdown).
    async fn catch_up_unless_stopped(&self, shutdown: &CancellationToken) -> Result<(), Error> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let published = checkpoints::published(&self.pool, &self.config.stream.name).await?;
            let checkpoint = checkpoints::get(&self.pool, self.consumer.name()).await?;
            metrics::gauge!("ledger_consumer_lag_events", "consumer" => self.consumer.name())
                .set((published - checkpoint).max(0) as f64);
            if checkpoint >= published {
                self.health.succeeded(&self.pool).await;
                return Ok(());
            }
            let events = reads::between(
                &self.pool,
                checkpoint,
                published,
                Some(self.config.batch as i64),
            )
            .await?;
            if events.is_empty() {
                // Only rolled-back positions up to `published`.
                let mut tx = self.pool.begin().await?;
                let locked = checkpoints::lock(&mut tx, self.consumer.name()).await?;
                if locked < published {
                    checkpoints::store(&mut tx, self.consumer.name(), published).await?;
                }
                tx.commit().await?;
                self.health.succeeded(&self.pool).await;
                return Ok(());
            }
            self.apply_batch(events).await?;
        }
    }

    /// Applies a batch exactly once, in order, with no event missing before
    /// it. Returns the new checkpoint. A batch that fails is applied again
    /// one event at a time: the events before the one that fails are
    /// applied, and the error is that event's.
    pub async fn apply_batch(&self, incoming: Vec<EventEnvelope>) -> Result<i64, Error> {
        let failure = match self.apply_in_one_transaction(incoming).await {
            Ok(reached) => {
                self.health.succeeded(&self.pool).await;
                return Ok(reached);
            }
            Err(failure) if failure.events.len() > 1 => failure,
            Err(failure) => return Err(failure.error),
        };
        tracing::warn!(
            consumer = self.consumer.name(),
            first = failure.events.first().map(|e| e.position),
            last = failure.events.last().map(|e| e.position),
            error = %failure.error,
            "a batch failed; applying its events one at a time"
        );
        let mut reached = 0;
        for event in failure.events {
            reached = self
                .apply_in_one_transaction(vec![event])
                .await
                .map_err(|f| f.error)?;
        }
        // Each applied on its own: what failed was the batch, not an event.
        self.health.succeeded(&self.pool).await;
        Ok(reached)
    }

    async fn apply_in_one_transaction(
        &self,
        incoming: Vec<EventEnvelope>,
    ) -> Result<i64, BatchFailure> {
        let name = self.consumer.name();
        let mut tx = self.pool.begin().await?;
        // The batch does not wait for its commit to reach the disk: a crash
        // can only lose the last batches with their checkpoint, and those
        // are applied again from the checkpoint (the table fills whatever
        // the stream no longer redelivers).
        let checkpoint = checkpoints::lock_unflushed(&mut tx, name).await?;
        let mut events: BTreeMap<i64, EventEnvelope> = incoming
            .into_iter()
            .filter(|e| e.position > checkpoint)
            .map(|e| (e.position, e))
            .collect();
        let Some(&last) = events.keys().next_back() else {
            return Ok(checkpoint);
        };
        let present = positions::present_between(&mut *tx, checkpoint, last).await?;
        let missing: Vec<i64> = present
            .into_iter()
            .filter(|p| !events.contains_key(p))
            .collect();
        if !missing.is_empty() {
            tracing::info!(
                consumer = name,
                count = missing.len(),
                "filling events missing from the stream"
            );
            for event in reads::at_positions(&mut *tx, &missing).await? {
                events.insert(event.position, event);
            }
        }
        let ordered: Vec<EventEnvelope> = events.into_values().collect();
        let applied = async {
            apply_guarded(self.consumer.as_ref(), &mut tx, &ordered).await?;
            checkpoints::store(&mut tx, name, last).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        if let Err(error) = applied {
            return Err(BatchFailure {
                error,
                events: ordered,
            });
        }
        metrics::gauge!("ledger_consumer_position", "consumer" => name).set(last as f64);
        metrics::counter!("ledger_consumer_applied_total", "consumer" => name)
            .increment(ordered.len() as u64);
        Ok(last)
    }
}
