//! The ledger's schema, applied with `sqlx::migrate!`.
//!
//! The SQL lives in `migrations/sql/`, one file per step, never edited once
//! released: a new step is a new file. `ledger migrate` and `ledger serve`
//! both call [`run`].

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

/// Every migration of the ledger, embedded at compile time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./sql");

/// Applies every pending migration. Safe to call concurrently from several
/// processes: sqlx serialises them with an advisory lock.
///
/// When every migration is already applied nothing else is done, so that
/// the application role, which may not create tables, can start the
/// ledger once the owner role has migrated (README "Production").
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    if is_current(pool).await {
        return Ok(());
    }
    MIGRATOR.run(pool).await
}

/// Whether every migration of [`MIGRATOR`] is applied, with its checksum
/// (false when that cannot be read, e.g. on a new database).
pub async fn is_current(pool: &PgPool) -> bool {
    let applied: Result<Vec<(i64, Vec<u8>)>, sqlx::Error> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await;
    let Ok(applied) = applied else {
        return false;
    };
    MIGRATOR.iter().all(|migration| {
        applied.iter().any(|(version, checksum)| {
            *version == migration.version && checksum.as_slice() == &*migration.checksum
        })
    })
}
