//! `GET /health/live` (the process answers) and `GET /health/ready` (its
//! dependencies answer; 503 names the one that does not).

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
        (
            StatusCode::OK,
            Json(json!({"status": "ok", "checks": checks})),
        )
    } else {
        tracing::warn!(?failing, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "failing": failing, "checks": checks})),
        )
    }
}
