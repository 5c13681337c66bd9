//! What the auditors read: each event with its predecessor's hash (the
//! verifier walks the chain with it), and the hashes a seal digests.
//!
//! The chain hashes the JSON columns as PostgreSQL prints them, so the
//! verifier's row is its own (`audit::chain::StoredEvent`, the columns as
//! exact text); the statement that selects it lives here.

use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgExecutor};

/// The columns of an event as the chain hashes it (`global_position`,
/// `aggregate_type`, `aggregate_id`, `sequence`, `event_type`,
/// `event_version`, `payload` and `metadata` as text, `event_id`,
/// `recorded_at`, `hash`), with its predecessor's `previous_hash` and
/// `previous_position`.
const CHAINED_PAGE: &str = "
    SELECT e.global_position, e.aggregate_type, e.aggregate_id, e.sequence,
           e.event_type, e.event_version, e.payload::text AS payload,
           e.metadata::text AS metadata, e.event_id, e.recorded_at, e.hash,
           p.hash AS previous_hash, p.global_position AS previous_position
      FROM events e
      LEFT JOIN events p
        ON p.aggregate_type = e.aggregate_type
       AND p.aggregate_id = e.aggregate_id
       AND p.sequence = e.sequence - 1
     WHERE e.global_position > $1 AND e.global_position <= $2
     ORDER BY e.global_position
     LIMIT $3";

/// Events with positions in `(after, to]`, at most `limit`, in position
/// order, each with its predecessor's hash, read as `T` (see
/// [`CHAINED_PAGE`] for the columns).
pub async fn chained_page<'e, T>(
    executor: impl PgExecutor<'e>,
    after: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(CHAINED_PAGE)
        .bind(after)
        .bind(to)
        .bind(limit)
        .fetch_all(executor)
        .await
}

/// The position and hash of at most `limit` events in `[from, to]`, in
/// position order: what a seal digests.
pub async fn hashes_between<'e>(
    executor: impl PgExecutor<'e>,
    from: i64,
    to: i64,
    limit: i64,
) -> Result<Vec<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT global_position, hash FROM events
          WHERE global_position BETWEEN $1 AND $2
          ORDER BY global_position LIMIT $3",
    )
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(executor)
    .await
}

/// The id of the event at `position`, if there is one.
pub async fn event_id_at<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<Option<uuid::Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT event_id FROM events WHERE global_position = $1")
        .bind(position)
        .fetch_optional(executor)
        .await
}

/// The tenant of the event at `position`, if there is one.
pub async fn tenant_at<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT tenant FROM events WHERE global_position = $1")
        .bind(position)
        .fetch_optional(executor)
        .await
}
