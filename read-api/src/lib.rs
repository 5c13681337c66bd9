//! The query side of the ledger. So far: the health routes, which need no
//! token. The read-model routes of API.md "Queries" arrive with the
//! projectors that feed them.

pub mod health;

use axum::routing::get;
use axum::Router;
use sqlx::PgPool;

/// Query routes served by `ledger serve` (and `ledger read-api`).
pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .with_state(pool)
}
