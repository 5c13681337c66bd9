//! Faults of the pipeline, kept in `pipeline_faults` so that every replica
//! (readiness, `GET /v1/projections`, `/metrics`) reports what one
//! component found: a consumer stalled on an event it cannot apply, or a
//! stream that does not belong to this database's history.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// What went wrong with a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// A batch kept failing after its retries; the component waits.
    Stalled,
    /// The stream holds events this database never had (a restore).
    StreamMismatch,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stalled => "stalled",
            Self::StreamMismatch => "stream_mismatch",
        }
    }
}

/// One fault as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Fault {
    pub component: String,
    pub kind: String,
    pub position: Option<i64>,
    pub detail: String,
    pub since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The component name of a consumer (a projector or a policy).
pub fn consumer_component(name: &str) -> String {
    format!("consumer:{name}")
}

/// The component name of the relay of `stream`.
pub fn relay_component(stream: &str) -> String {
    format!("relay:{stream}")
}

/// Records (or refreshes) a fault; `since` keeps the first time it was seen.
/// A stall never replaces a stream mismatch of the same component: the
/// mismatch is the finer diagnosis (it is why every attempt fails).
pub async fn record(
    pool: &PgPool,
    component: &str,
    kind: FaultKind,
    position: Option<i64>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pipeline_faults (component, kind, position, detail)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (component) DO UPDATE
            SET kind = EXCLUDED.kind, position = EXCLUDED.position,
                detail = EXCLUDED.detail, updated_at = now(),
                since = CASE WHEN pipeline_faults.kind = EXCLUDED.kind
                             THEN pipeline_faults.since ELSE now() END
          WHERE NOT (pipeline_faults.kind = $5 AND EXCLUDED.kind = $6)",
    )
    .bind(component)
    .bind(kind.as_str())
    .bind(position)
    .bind(detail)
    .bind(FaultKind::StreamMismatch.as_str())
    .bind(FaultKind::Stalled.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Clears a component's fault of this kind (it applies again, or the
/// stream was reset); a fault of another kind is left to whoever recorded
/// it. Whether there was one.
pub async fn clear(pool: &PgPool, component: &str, kind: FaultKind) -> Result<bool, sqlx::Error> {
    let cleared = sqlx::query("DELETE FROM pipeline_faults WHERE component = $1 AND kind = $2")
        .bind(component)
        .bind(kind.as_str())
        .execute(pool)
        .await?;
    Ok(cleared.rows_affected() > 0)
}

/// Every current fault, by component.
pub async fn list(pool: &PgPool) -> Result<Vec<Fault>, sqlx::Error> {
    sqlx::query_as(
        "SELECT component, kind, position, detail, since, updated_at
           FROM pipeline_faults ORDER BY component",
    )
    .fetch_all(pool)
    .await
}
