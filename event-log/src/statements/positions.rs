//! How far the log goes, and which positions it holds.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The highest position in the table (0: empty). Not a horizon: a lower
/// position may still commit.
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(executor)
        .await
}

/// How many events the table holds.
pub async fn count<'e>(executor: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(executor)
        .await
}

/// How many events lie after `position`.
pub async fn count_after<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE global_position > $1")
        .bind(position)
        .fetch_one(executor)
        .await
}

/// Whether the table holds any event at all.
pub async fn any<'e>(executor: impl PgExecutor<'e>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events)")
        .fetch_one(executor)
        .await
}

/// Whether an event is (visibly) stored at `position`.
pub async fn exists<'e>(executor: impl PgExecutor<'e>, position: i64) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE global_position = $1)")
        .bind(position)
        .fetch_one(executor)
        .await
}

/// The first position after `after`, if any.
pub async fn first_after<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT min(global_position) FROM events WHERE global_position > $1")
        .bind(after)
        .fetch_one(executor)
        .await
}

/// The first position in `(after, upto]`, if any.
pub async fn first_between<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
    upto: i64,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(global_position) FROM events
          WHERE global_position > $1 AND global_position <= $2",
    )
    .bind(after)
    .bind(upto)
    .fetch_one(executor)
    .await
}

/// Every position present in `(after, upto]` (in no promised order): what a
/// consumer must have applied before it may store `upto`.
pub async fn present_between<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
    upto: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT global_position FROM events
          WHERE global_position > $1 AND global_position <= $2",
    )
    .bind(after)
    .bind(upto)
    .fetch_all(executor)
    .await
}

/// This database's name, the id of the event at `position` (if any) and
/// the head: what the stream's history check compares with the stream.
pub async fn database_event_and_head<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<(String, Option<Uuid>, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT current_database()::text,
                (SELECT event_id FROM events WHERE global_position = $1),
                (SELECT coalesce(max(global_position), 0) FROM events)",
    )
    .bind(position)
    .fetch_one(executor)
    .await
}

/// The relay's backlog on `stream`: the head, the published position, and
/// the age in seconds of the oldest event not yet published.
pub async fn relay_backlog<'e>(
    executor: impl PgExecutor<'e>,
    stream: &str,
) -> Result<(i64, i64, Option<f64>), sqlx::Error> {
    sqlx::query_as(
        "WITH p AS (SELECT coalesce((SELECT position FROM relay_positions WHERE stream = $1), 0) AS position)
         SELECT coalesce((SELECT max(global_position) FROM events), 0),
                (SELECT position FROM p),
                (SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8
                   FROM events WHERE global_position > (SELECT position FROM p)
                  ORDER BY global_position LIMIT 1)",
    )
    .bind(stream)
    .fetch_one(executor)
    .await
}

/// How far behind `head` each consumer is: its name, checkpoint, when it
/// moved, the events it lags by and when the first of them was recorded;
/// `known` names the consumers listed even before their first checkpoint.
pub async fn consumer_lags<'e>(
    executor: impl PgExecutor<'e>,
    known: &[String],
    head: i64,
) -> Result<Vec<ConsumerLag>, sqlx::Error> {
    sqlx::query_as(
        "WITH consumers AS (
             SELECT name, position, updated_at FROM consumer_checkpoints
             UNION ALL
             SELECT k.name, 0, now() FROM unnest($1::text[]) AS k(name)
              WHERE NOT EXISTS (SELECT 1 FROM consumer_checkpoints c WHERE c.name = k.name))
         SELECT c.name, c.position, c.updated_at,
                greatest($2 - c.position, 0),
                (SELECT e.recorded_at FROM events e WHERE e.global_position > c.position
                  ORDER BY e.global_position LIMIT 1)
           FROM consumers c ORDER BY c.name",
    )
    .bind(known)
    .bind(head)
    .fetch_all(executor)
    .await
}

/// A row of [`consumer_lags`]: name, checkpoint, updated at, events behind,
/// recorded at of the first event not applied.
pub type ConsumerLag = (
    String,
    i64,
    chrono::DateTime<chrono::Utc>,
    i64,
    Option<chrono::DateTime<chrono::Utc>>,
);
