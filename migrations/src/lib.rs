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
pub async fn run(pool: &PgPool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await
}
