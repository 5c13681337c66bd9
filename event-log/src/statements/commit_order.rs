//! Which transactions still write to the events table: the relay settles a
//! gap in the positions (a transaction that has not committed yet, or one
//! that rolled back for good) by waiting until every writer that was
//! running when it saw the gap has ended.

use sqlx::PgExecutor;

/// Transactions of this database (other than the caller's) now holding a
/// write lock on `events`.
pub async fn writers<'e>(executor: impl PgExecutor<'e>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT virtualtransaction FROM pg_locks
          WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND granted
            AND relation = 'events'::regclass
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND pid <> pg_backend_pid()",
    )
    .fetch_all(executor)
    .await
}

/// Whether any of `writers` (from [`writers`]) is still running.
pub async fn any_running<'e>(
    executor: impl PgExecutor<'e>,
    writers: &[String],
) -> Result<bool, sqlx::Error> {
    if writers.is_empty() {
        return Ok(false);
    }
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE virtualtransaction = ANY($1))")
        .bind(writers)
        .fetch_one(executor)
        .await
}
