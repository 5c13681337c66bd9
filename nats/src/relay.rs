//! The relay: the only publisher, moving the events table to JetStream in
//! commit order.
//!
//! **One active instance.** A relay publishes only while it holds a
//! session advisory lock keyed by the stream's name; others wait as
//! standbys and take over when the holder's connection goes away.
//!
//! **Commit order.** Global positions are handed out at insert time, so a
//! transaction can commit position 11 while position 10 is still in
//! flight. The relay publishes strictly in position order and never past a
//! missing position until it is sure that position will never appear: it
//! notes which transactions hold a write lock on the events table when it
//! first sees the gap (the transaction that took the missing position must
//! be one of them, because it took the position before the later one was
//! committed), waits until all of them have ended, reads again, and only
//! then treats a still-missing position as rolled back.
//!
//! **Exactly once, in order, on the stream.** Events go out with
//! `Nats-Msg-Id` and a bounded window of outstanding acks; the position is
//! stored only after every ack. Each publish also expects the stream's
//! previous sequence, so the stream only ever grows by the relay's next
//! event: if JetStream lost acknowledged messages (a crash before its
//! fsync), or anything else wrote to the stream, the next publish is
//! refused, and the relay resumes from the last message the stream really
//! holds and publishes the lost tail again, in order. A restart does the
//! same; JetStream's dedup window is a second line of defence.
//!
//! It wakes on `LISTEN ledger_events` (writers notify after they commit,
//! see `wakeup`), with a slow poll as a safety net for notifications lost
//! during a reconnect or a writer's crash.
//!
//! **Only onto this database's stream.** Once active, the relay checks
//! that the stream belongs to this database's history (`history`): after a
//! restore behind the stream it refuses, with an ERROR and a
//! `stream_mismatch` fault, and publishes nothing until `ledger stream
//! reset` has replaced the stream; then it goes on by itself.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use async_nats::jetstream::{self};
use sqlx::postgres::PgListener;
use sqlx::{Acquire, PgPool};
use tokio_util::sync::CancellationToken;

use event_log::statements::{commit_order, positions, reads};

use crate::envelope::{Outgoing, POSITION_HEADER};
use crate::faults::relay_component;
use crate::history::wait_until_ours;
use crate::stream::{provision, StreamSettings};
use crate::Error;

pub use crate::wakeup::NOTIFY_CHANNEL;

#[derive(Clone, Debug)]
pub struct RelayConfig {
    pub stream: StreamSettings,
    /// Rows read from the events table per round.
    pub batch_size: i64,
    /// Most publishes awaiting their ack at once.
    pub max_in_flight: usize,
    /// Poll this often even without a notification.
    pub idle_poll: Duration,
}

impl RelayConfig {
    pub fn new(stream: StreamSettings) -> Self {
        Self {
            stream,
            batch_size: 2_000,
            max_in_flight: 4_096,
            idle_poll: Duration::from_millis(500),
        }
    }
}

pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    /// The NATS servers, as last told by the client: it cannot tell them
    /// while it is reconnecting, which is when the logs need them.
    nats_servers: Mutex<Option<String>>,
}

/// An ack must confirm the message was stored at the sequence the relay
/// expected; anything else means the stream is not what the relay thinks.
fn check_ack(
    expected: u64,
    ack: Result<
        async_nats::jetstream::publish::PublishAck,
        async_nats::jetstream::context::PublishError,
    >,
) -> Result<(), Error> {
    let ack = ack.map_err(|e| {
        Error::Nats(format!(
            "publish refused ({e}); resynchronising with the stream"
        ))
    })?;
    if ack.duplicate || ack.sequence != expected {
        return Err(Error::Nats(format!(
            "stream stored sequence {} (duplicate: {}) where {expected} was expected; resynchronising",
            ack.sequence, ack.duplicate
        )));
    }
    Ok(())
}

/// Publishes awaiting their ack, oldest first (the stream sequence each
/// must be stored at, and its position), and the last acknowledged position.
struct Window {
    acks: VecDeque<(u64, i64, PublishAckFuture)>,
    acked: i64,
}

impl Window {
    fn new(acked: i64) -> Self {
        Self {
            acks: VecDeque::new(),
            acked,
        }
    }

    async fn settle_one(&mut self) -> Result<(), Error> {
        if let Some((at, position, ack)) = self.acks.pop_front() {
            check_ack(at, ack.await)?;
            self.acked = position;
            metrics::counter!("ledger_relay_published_total").increment(1);
        }
        Ok(())
    }

    async fn settle_all(&mut self) -> Result<(), Error> {
        while !self.acks.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }
}

/// A run of missing positions, and the writers that might still fill it.
struct Gap {
    first: i64,
    last: i64,
    writers: Vec<String>,
    /// Every writer has ended; one more probe decides.
    settled: bool,
}

/// Backoff while waiting for an in-flight transaction to fill a gap.
const MIN_GAP_PAUSE: Duration = Duration::from_millis(1);
const MAX_GAP_PAUSE: Duration = Duration::from_millis(20);

impl Relay {
    pub fn new(pool: PgPool, client: async_nats::Client, config: RelayConfig) -> Self {
        Self {
            pool,
            js: jetstream::new(client),
            config,
            nats_servers: Mutex::new(None),
        }
    }

    /// Runs until `shutdown` is cancelled, standing by while another instance
    /// is active and starting over after any failure.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match self.lead(&shutdown).await {
                Ok(()) => return,
                Err(err) => self.log_failure(&err).await,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    /// Advisory-lock key of this stream's relay: FNV-1a of its name, so
    /// every build agrees on it.
    fn lock_key(&self) -> i64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in format!("ledger-relay:{}", self.config.stream.name).bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash as i64
    }

    /// A failure, at WARN, with the address of the server that failed.
    async fn log_failure(&self, err: &Error) {
        let stream = &self.config.stream.name;
        match err {
            Error::Database(_) => {
                let options = self.pool.connect_options();
                let database = format!(
                    "{}:{}/{}",
                    options.get_host(),
                    options.get_port(),
                    options.get_database().unwrap_or_default()
                );
                tracing::warn!(stream, database, error = %err, "relay stopped: PostgreSQL failed; starting over");
            }
            Error::Nats(_) => {
                let nats = self.nats_servers().await;
                tracing::warn!(stream, nats, error = %err, "relay stopped: NATS failed; starting over");
            }
            Error::Malformed(_) | Error::Apply { .. } | Error::Other(_) => {
                tracing::warn!(stream, error = %err, "relay stopped; starting over")
            }
        }
    }

    /// The NATS servers the client knows, or the last ones it told.
    async fn nats_servers(&self) -> String {
        let asked =
            tokio::time::timeout(Duration::from_millis(200), self.js.client().server_pool()).await;
        let mut known = self
            .nats_servers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(Ok(servers)) = asked {
            let listed: Vec<String> = servers.iter().map(ToString::to_string).collect();
            *known = Some(listed.join(","));
        }
        known
            .clone()
            .unwrap_or_else(|| "unknown (never connected)".to_owned())
    }

    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), Error> {
        // The lock lives as long as this connection: it is ours alone.
        let mut lock_conn = self.pool.acquire().await?.detach();
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(self.lock_key())
                .fetch_one(&mut lock_conn)
                .await?;
            if locked {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        tracing::info!(stream = %self.config.stream.name, "relay is the active instance");

        let stream = provision(&self.js, &self.config.stream).await?;
        // Learnt while NATS answers, for the logs when it no longer does.
        let _ = self.nats_servers().await;
        let component = relay_component(&self.config.stream.name);
        wait_until_ours(&self.pool, &stream, &component, shutdown).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        // Still ours after the wait (the lock went with its connection if
        // that broke meanwhile).
        sqlx::query("SELECT 1").execute(&mut lock_conn).await?;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(NOTIFY_CHANNEL).await?;
        let (mut position, mut stream_sequence) = self.resume(&stream).await?;
        // Publishes stay in flight across rounds: the next rows are read
        // while the stream acknowledges the last ones. The stored position
        // only ever moves to what the stream has acknowledged.
        let mut window = Window::new(position);
        let mut stored = position;
        let mut gap: Option<Gap> = None;
        let mut pause = MIN_GAP_PAUSE;
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            if let Some(g) = gap.as_mut() {
                // Probe the missing position alone instead of re-reading.
                if self.exists(g.first).await? {
                    gap = None;
                } else if g.settled {
                    // Every transaction that could hold these positions has
                    // ended: what is still missing was rolled back for good.
                    // Skip up to the first one that did commit, if any.
                    let committed: Option<i64> =
                        positions::first_between(&self.pool, g.first, g.last).await?;
                    let skip_to = committed.map_or(g.last, |p| p - 1);
                    tracing::debug!(
                        from = g.first,
                        to = skip_to,
                        "skipping rolled-back positions"
                    );
                    position = skip_to;
                    gap = None;
                } else {
                    g.settled = !self.any_running(&g.writers).await?;
                    // A writer's commit notifies: probe again at once then,
                    // rather than after the whole pause.
                    tokio::select! {
                        _ = tokio::time::timeout(pause, listener.recv()) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                    while listener.next_buffered().is_some() {}
                    pause = (pause * 2).min(MAX_GAP_PAUSE);
                    continue;
                }
            }
            pause = MIN_GAP_PAUSE;
            let rows = self.read_after(position).await?;
            let full = rows.len() as i64 == self.config.batch_size;
            let mut ready = Vec::with_capacity(rows.len());
            let mut next = position;
            for row in rows {
                if row.position != next + 1 {
                    // Positions next+1 .. row-1 were taken before `row`
                    // committed, so by transactions writing right now.
                    gap = Some(Gap {
                        first: next + 1,
                        last: row.position - 1,
                        writers: self.writers().await?,
                        settled: false,
                    });
                    break;
                }
                next = row.position;
                ready.push(row);
            }
            if !ready.is_empty() {
                self.publish(ready, &mut stream_sequence, &mut window)
                    .await?;
                position = next;
                if full || gap.is_some() {
                    self.store_acknowledged(&window, &mut stored).await?;
                    continue;
                }
            }
            if gap.is_none() {
                window.settle_all().await?;
                self.store_acknowledged(&window, &mut stored).await?;
                // Caught up: wait for a commit (or the safety-net poll), and
                // make sure the lock is still held.
                tokio::select! {
                    _ = tokio::time::timeout(self.config.idle_poll, listener.recv()) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                while listener.next_buffered().is_some() {}
                sqlx::query("SELECT 1").execute(&mut lock_conn).await?;
            }
        }
    }

    async fn exists(&self, position: i64) -> Result<bool, Error> {
        Ok(positions::exists(&self.pool, position).await?)
    }

    /// Where to go on from, and the stream's last sequence. The stream is
    /// the truth: the relay is its only publisher and every publish expects
    /// the previous sequence, so the stream holds every position up to its
    /// last message's, in order. When that cannot be told, the stored
    /// position is used.
    async fn resume(&self, stream: &Stream) -> Result<(i64, u64), Error> {
        let stored: i64 = sqlx::query_scalar(
            "INSERT INTO relay_positions (stream, position) VALUES ($1, 0)
             ON CONFLICT (stream) DO UPDATE SET stream = EXCLUDED.stream
             RETURNING position",
        )
        .bind(&self.config.stream.name)
        .fetch_one(&self.pool)
        .await?;
        let (on_stream, last_sequence) = self.stream_tail(stream).await?;
        let position = match on_stream {
            Some(on_stream) => {
                if on_stream < stored {
                    tracing::warn!(
                        stored,
                        on_stream,
                        "the stream lost messages; republishing them"
                    );
                }
                on_stream
            }
            None => stored,
        };
        Ok((position, last_sequence))
    }

    /// Position of the last message the stream still holds (`Some(0)` for
    /// an empty stream, `None` if it cannot be told) and the stream's last
    /// sequence. Messages at the end may have been deleted (their sequence
    /// numbers stay used), so it walks back to the last message that is there.
    async fn stream_tail(&self, stream: &Stream) -> Result<(Option<i64>, u64), Error> {
        let mut stream = stream.clone();
        let info = stream.info().await.map_err(Error::nats)?;
        let last_sequence = info.state.last_sequence;
        if info.state.messages == 0 {
            return Ok((Some(0), last_sequence));
        }
        let first = info.state.first_sequence.max(1);
        let mut sequence = last_sequence;
        while sequence >= first {
            match stream.get_raw_message(sequence).await {
                Ok(message) => {
                    let position = message
                        .headers
                        .get(POSITION_HEADER)
                        .and_then(|v| v.as_str().parse::<i64>().ok());
                    return Ok((position, last_sequence));
                }
                Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => sequence -= 1,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the stream's last message");
                    return Ok((None, last_sequence));
                }
            }
        }
        Ok((Some(0), last_sequence))
    }

    async fn read_after(&self, position: i64) -> Result<Vec<Outgoing>, Error> {
        let events = reads::after_verbatim(&self.pool, position, self.config.batch_size).await?;
        events.into_iter().map(Outgoing::from_stored).collect()
    }

    /// Transactions of this database now holding a write lock on events.
    async fn writers(&self) -> Result<Vec<String>, Error> {
        Ok(commit_order::writers(&self.pool).await?)
    }

    async fn any_running(&self, writers: &[String]) -> Result<bool, Error> {
        Ok(commit_order::any_running(&self.pool, writers).await?)
    }

    /// Records the position the stream has acknowledged, if it moved.
    async fn store_acknowledged(&self, window: &Window, stored: &mut i64) -> Result<(), Error> {
        if window.acked > *stored {
            self.store_position(window.acked).await?;
            metrics::gauge!("ledger_relay_position").set(window.acked as f64);
            *stored = window.acked;
        }
        Ok(())
    }

    /// Publishes in order, keeping at most `max_in_flight` acks outstanding
    /// in `window` (they may still be outstanding on return). Each message expects the
    /// stream's previous sequence (`Nats-Expected-Last-Sequence`): if the
    /// stream lost messages (a crash before its fsync) or anyone else wrote
    /// to it, the publish is refused and the relay starts over from what the
    /// stream really holds, so the stream never has a hole or a reordering.
    async fn publish(
        &self,
        events: Vec<Outgoing>,
        sequence: &mut u64,
        window: &mut Window,
    ) -> Result<(), Error> {
        let mut expected = *sequence;
        for event in events {
            if window.acks.len() >= self.config.max_in_flight {
                window.settle_one().await?;
            }
            let position = event.position;
            let subject = event.subject(&self.config.stream.name);
            let message = PublishMessage::build()
                .headers(event.headers())
                .payload(event.body.into())
                .expected_last_sequence(expected);
            let ack = self
                .js
                .send_publish(subject, message)
                .await
                .map_err(Error::nats)?;
            expected += 1;
            window.acks.push_back((expected, position, ack));
        }
        *sequence = expected;
        Ok(())
    }

    async fn store_position(&self, position: i64) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        let conn = conn.acquire().await?;
        // Not worth a disk flush per round: after a crash that lost it, the
        // relay resumes from what the stream holds anyway.
        sqlx::query(
            "WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO relay_positions (stream, position) SELECT $1, $2 FROM async
             ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
        )
        .bind(&self.config.stream.name)
        .bind(position)
        .execute(conn)
        .await?;
        Ok(())
    }
}
