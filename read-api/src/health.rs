//! `GET /health/live` (the process answers) and `GET /health/ready` (its
//! dependencies answer; 503 names the one that does not). A fault of the
//! pipeline (a stalled consumer, a stream from another history) leaves the
//! process able to serve, so it is 200 with `status: "degraded"` and the
//! faults named: reads may be stale, and an operator must act.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::ReadState;

#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "The process answers", body = crate::schema::Live)), security(()))]
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "Every dependency answers", body = crate::schema::Ready), (status = 503, description = "A dependency is down; `failing` names it", body = crate::schema::Ready)), security(()))]
pub async fn ready(State(app): State<ReadState>) -> (StatusCode, Json<Value>) {
    let postgres = matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query("SELECT 1").execute(&app.pool)
        )
        .await,
        Ok(Ok(_))
    );
    let nats = app
        .nats
        .as_ref()
        .map(|client| client.connection_state() == async_nats::connection::State::Connected);
    let mut checks = json!({"postgres": if postgres { "ok" } else { "failing" }});
    if let Some(nats) = nats {
        checks["nats"] = json!(if nats { "ok" } else { "failing" });
    }
    let failing: Vec<&str> = [("postgres", Some(postgres)), ("nats", nats)]
        .into_iter()
        .filter_map(|(name, ok)| (ok == Some(false)).then_some(name))
        .collect();
    if failing.is_empty() {
        let faults = match ledger_nats::faults::list(&app.pool).await {
            Ok(faults) => faults,
            Err(err) => {
                tracing::warn!(error = %err, "pipeline faults could not be read");
                Vec::new()
            }
        };
        if faults.is_empty() {
            return (
                StatusCode::OK,
                Json(json!({"status": "ok", "checks": checks})),
            );
        }
        checks["pipeline"] = json!("degraded");
        let degraded: Vec<Value> = faults
            .iter()
            .map(|f| {
                json!({"component": f.component, "kind": f.kind, "position": f.position,
                       "detail": f.detail, "since": f.since})
            })
            .collect();
        tracing::warn!(faults = degraded.len(), "ready but degraded");
        (
            StatusCode::OK,
            Json(json!({"status": "degraded", "checks": checks, "degraded": degraded})),
        )
    } else {
        tracing::warn!(?failing, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "failing": failing, "checks": checks})),
        )
    }
}
