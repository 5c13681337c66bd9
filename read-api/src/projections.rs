//! `GET /v1/projections`: how far each read model (and the policies) has
//! applied the log, and how far behind the head it is.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use event_log::statements::positions;
use ledger_http::{ApiError, Principal, Role};
use serde::Serialize;

use crate::ReadState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectionStatus {
    name: String,
    position: i64,
    head: i64,
    lag_events: i64,
    lag_seconds: f64,
    /// `live` when caught up, `catching_up` otherwise; `stalled` when a
    /// batch failed its retries, `stream_mismatch` when the stream is not
    /// this database's (see `error`).
    state: String,
    updated_at: DateTime<Utc>,
    /// What stopped it, while `state` is `stalled` or `stream_mismatch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The position it stopped at, while stalled.
    #[serde(skip_serializing_if = "Option::is_none")]
    stalled_at: Option<i64>,
}

#[utoipa::path(get, path = "/v1/projections", tag = "queries", responses((status = 200, description = "How far each read model has come", body = Vec<ProjectionStatus>)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<ReadState>,
    principal: Principal,
) -> Result<Json<Vec<ProjectionStatus>>, ApiError> {
    principal.require(&[Role::Admin, Role::Analyst])?;
    let head = positions::head(&app.pool).await?;
    // Every consumer this deployment runs, whether or not it applied anything yet.
    let rows = positions::consumer_lags(&app.pool, &app.consumers, head).await?;
    let faults: std::collections::HashMap<String, ledger_nats::faults::Fault> =
        ledger_nats::faults::list(&app.pool)
            .await?
            .into_iter()
            .map(|f| (f.component.clone(), f))
            .collect();
    // The lag is measured on the clock that stamped `recorded_at`: the
    // database's (a read of the process's own time would mix two clocks,
    // and the ledger's clock may be a test's manual one).
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&app.pool)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(name, position, updated_at, lag_events, oldest)| {
                let fault = faults.get(&ledger_nats::faults::consumer_component(&name));
                ProjectionStatus {
                    state: match fault {
                        Some(f) => f.kind.clone(),
                        None if lag_events == 0 => "live".to_owned(),
                        None => "catching_up".to_owned(),
                    },
                    error: fault.map(|f| f.detail.clone()),
                    stalled_at: fault.and_then(|f| f.position),
                    name,
                    position,
                    head,
                    lag_events,
                    lag_seconds: oldest
                        .map(|t| ((now - t).num_milliseconds().max(0) as f64) / 1000.0)
                        .unwrap_or(0.0),
                    updated_at,
                }
            })
            .collect(),
    ))
}
