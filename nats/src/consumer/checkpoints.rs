//! How far each consumer has applied the log, and how far the log goes.

use sqlx::{PgConnection, PgPool};

/// The consumer's checkpoint, locked for the rest of the transaction so
/// that two instances of one consumer never apply the same batch. One
/// statement (issue 18: statements per batch): the row is made on first
/// use, and the conflict's no-op update locks an existing one as `FOR
/// UPDATE` would, answering its position as it stands.
pub async fn lock(conn: &mut PgConnection, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO consumer_checkpoints (name, position) VALUES ($1, 0)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING position",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await
}

/// [`lock`], in a transaction whose commit does not wait for the disk
/// (`synchronous_commit` off for it), in the same one statement: a
/// consumer's batch can be applied again from its checkpoint after a crash.
pub async fn lock_unflushed(conn: &mut PgConnection, name: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH unflushed AS (SELECT set_config('synchronous_commit', 'off', true))
         INSERT INTO consumer_checkpoints (name, position) SELECT $1, 0 FROM unflushed
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name
         RETURNING position",
    )
    .bind(name)
    .fetch_one(&mut *conn)
    .await
}

pub async fn store(conn: &mut PgConnection, name: &str, position: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE consumer_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(position)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, name: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0))
}

/// Everything at or below this position has been published by the relay
/// and is final (committed, or rolled back for good).
pub async fn published(pool: &PgPool, stream: &str) -> Result<i64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM relay_positions WHERE stream = $1")
            .bind(stream)
            .fetch_optional(pool)
            .await?;
    Ok(position.unwrap_or(0))
}
