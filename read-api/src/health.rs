//! `GET /health/live` (the process answers) and `GET /health/ready` (its
//! dependencies answer; 503 names the one that does not).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sqlx::PgPool;

pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn ready(State(pool): State<PgPool>) -> (StatusCode, Json<Value>) {
    let probe = tokio_timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&pool),
    )
    .await;
    match probe {
        Some(Ok(_)) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "checks": {"postgres": "ok"}})),
        ),
        Some(Err(err)) => {
            tracing::warn!(error = %err, "readiness: postgres failed");
            unavailable("postgres")
        }
        None => unavailable("postgres"),
    }
}

fn unavailable(dependency: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(
            json!({"status": "unavailable", "failing": dependency, "checks": {dependency: "failing"}}),
        ),
    )
}

async fn tokio_timeout<F: std::future::Future>(limit: Duration, f: F) -> Option<F::Output> {
    tokio::time::timeout(limit, f).await.ok()
}
