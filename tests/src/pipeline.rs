//! The way from the log to the read models, watched and driven by tests:
//! the relay as a task of the test, its stored position, the consumers'
//! checkpoints, probe events written straight into the events table, and
//! the waits until everything has caught up with the head of the log.

use std::future::Future;
use std::time::Duration;

use ledger_nats::envelope::ENVELOPE_COLUMNS;
use ledger_nats::{EventEnvelope, Relay, RelayConfig, StreamSettings};
use reqwest::StatusCode;
use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::events::head;
use crate::TestApp;

/// A relay running as a task, as `ledger relay` would run it.
pub struct RelayTask {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RelayTask {
    pub fn start(pool: &PgPool, client: &async_nats::Client, stream: &str) -> RelayTask {
        Self::start_with(pool, client, RelayConfig::new(StreamSettings::new(stream)))
    }

    pub fn start_with(
        pool: &PgPool,
        client: &async_nats::Client,
        config: RelayConfig,
    ) -> RelayTask {
        let shutdown = CancellationToken::new();
        let receiver = shutdown.clone();
        let relay = Relay::new(pool.clone(), client.clone(), config);
        let task = tokio::spawn(relay.run(receiver));
        RelayTask { shutdown, task }
    }

    /// Asks the relay to stop and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the relay stops within 10 s")
            .expect("the relay task does not panic");
    }

    /// Kills the relay wherever it is (a crash): the task is dropped
    /// mid-flight and its connections close.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Polls `check` every 25 ms until it is true; false on timeout.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The relay's stored position for `stream` (None before it started).
pub async fn relay_position(pool: &PgPool, stream: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT position FROM relay_positions WHERE stream = $1")
        .bind(stream)
        .fetch_optional(pool)
        .await
        .expect("read relay_positions")
}

/// What the relay has published of the log to `stream` (0 before it
/// started), as the consumers read it.
pub async fn published(pool: &PgPool, stream: &str) -> i64 {
    projectors::checkpoints::published(pool, stream)
        .await
        .expect("read the relay's position")
}

/// Sets the relay's stored position (as a crash before storing it, or an
/// operator, would leave it).
pub async fn set_relay_position(pool: &PgPool, stream: &str, position: i64) {
    sqlx::query(
        "INSERT INTO relay_positions (stream, position) VALUES ($1, $2)
         ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position",
    )
    .bind(stream)
    .bind(position)
    .execute(pool)
    .await
    .expect("set relay_positions");
}

/// Consumers whose checkpoints must reach the head of the log: every read
/// model, and the policies (which record events of their own).
pub fn consumers() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = projectors::read_models().iter().map(|m| m.name()).collect();
    names.push(command_api::policies::NAME);
    names
}

/// One consumer's checkpoint (0 before its first event).
pub async fn checkpoint(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT position FROM consumer_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await
        .expect("read consumer_checkpoints")
        .unwrap_or(0)
}

/// Every consumer's checkpoint, by name.
pub async fn checkpoints(pool: &PgPool) -> Vec<(String, i64)> {
    sqlx::query_as("SELECT name, position FROM consumer_checkpoints ORDER BY name")
        .fetch_all(pool)
        .await
        .expect("read the checkpoints")
}

/// Whether the relay has published the whole log to `stream` and each of
/// `consumers` has applied it.
pub async fn caught_up(pool: &PgPool, stream: &str, consumers: &[&str]) -> bool {
    let head = head(pool).await;
    if published(pool, stream).await < head {
        return false;
    }
    for name in consumers {
        if checkpoint(pool, name).await < head {
            return false;
        }
    }
    true
}

/// Waits until the relay has published the whole log to `stream` and every
/// consumer has applied it, and the log has stopped growing (three polls
/// in a row). Returns the head; fails after `timeout`.
pub async fn wait_converged(pool: &PgPool, stream: &str, timeout: Duration) -> i64 {
    let deadline = std::time::Instant::now() + timeout;
    let (mut stable, mut last_head) = (0, -1);
    loop {
        let head = head(pool).await;
        let relay = published(pool, stream).await;
        let checkpoints = checkpoints(pool).await;
        let reached = consumers()
            .iter()
            .all(|name| checkpoints.iter().any(|(n, p)| n == name && *p == head));
        if relay == head && reached && head == last_head {
            stable += 1;
            if stable >= 3 {
                return head;
            }
        } else {
            stable = 0;
        }
        last_head = head;
        assert!(
            std::time::Instant::now() < deadline,
            "the pipeline did not catch up within {timeout:?}: head {head}, relay {relay}, \
             checkpoints {checkpoints:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Aggregate type of the events these tests write behind the domain.
pub const PROBE: &str = "Probe";

/// Inserts one probe event the way postgres-es does; returns its global
/// position and event id (both assigned by the database).
pub async fn insert_probe(
    conn: &mut PgConnection,
    aggregate_id: &str,
    sequence: i64,
) -> Result<(i64, Uuid), sqlx::Error> {
    let row = sqlx::query_as(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ($1, $2, $3, 'Probed', '1.0', $4, '{}')
         RETURNING global_position, event_id",
    )
    .bind(PROBE)
    .bind(aggregate_id)
    .bind(sequence)
    .bind(serde_json::json!({"Probed": {"n": sequence}}))
    .fetch_one(&mut *conn)
    .await?;
    // Writers wake the relay themselves (ledger_nats::wakeup); inside a
    // transaction the notification goes out at its commit.
    ledger_nats::notify_relays(&mut *conn).await?;
    Ok(row)
}

/// Commits `count` probe events of one aggregate (sequences 1..=count),
/// one transaction each; returns their positions.
pub async fn commit_probes(
    pool: &PgPool,
    aggregate_id: &str,
    first_sequence: i64,
    count: i64,
) -> Vec<i64> {
    let mut conn = pool.acquire().await.expect("a connection");
    let mut positions = Vec::new();
    for sequence in first_sequence..first_sequence + count {
        let (position, _) = insert_probe(&mut conn, aggregate_id, sequence)
            .await
            .expect("insert a probe event");
        positions.push(position);
    }
    positions
}

/// The envelopes of the events table with positions in `from..=to`.
pub async fn envelopes(pool: &PgPool, from: i64, to: i64) -> Vec<EventEnvelope> {
    let sql = format!(
        "SELECT {ENVELOPE_COLUMNS} FROM events
          WHERE global_position BETWEEN $1 AND $2 ORDER BY global_position"
    );
    sqlx::query(&sql)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .expect("read events")
        .iter()
        .map(|row| EventEnvelope::from_row(row).expect("an envelope"))
        .collect()
}

/// Waits until every projector and the policies stand at the head of the
/// log and the head stays put (no policy has anything left to do), as
/// `GET /v1/projections` tells an admin; returns the head. Fails after
/// `timeout`.
pub async fn settle(app: &TestApp, timeout: Duration) -> anyhow::Result<i64> {
    let admin = app.admin();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_head = -1;
    loop {
        let answer = app.get("/v1/projections", &admin).await;
        anyhow::ensure!(
            answer.status == StatusCode::OK,
            "GET /v1/projections: {} {:?}",
            answer.status,
            answer.body
        );
        let list = answer.body;
        let rows = list.as_array().cloned().unwrap_or_default();
        let head = rows
            .iter()
            .filter_map(|p| p["head"].as_i64())
            .max()
            .unwrap_or(0);
        let caught_up = !rows.is_empty()
            && rows
                .iter()
                .all(|p| p["position"].as_i64() == Some(head) && p["lag_events"] == 0);
        if caught_up && head == last_head {
            return Ok(head);
        }
        last_head = if caught_up { head } else { -1 };
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the read models did not settle: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
