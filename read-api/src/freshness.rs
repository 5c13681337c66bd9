//! Read-your-writes (API.md "Conventions"): a query with
//! `Ledger-Min-Position: N` waits up to 2 s for the read models it uses to
//! reach position N; every query answer says in `Ledger-Position` where
//! those read models stood.

use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use command_api::ApiError;
use sqlx::PgPool;

pub const MIN_POSITION_HEADER: &str = "ledger-min-position";
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("ledger-position");
/// Longest wait for a read model to catch up.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// The `Ledger-Min-Position` a query asked for, if any.
pub struct MinPosition(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for MinPosition {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(MIN_POSITION_HEADER) {
            None => Ok(Self(None)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|p| *p >= 0)
                .map(|p| Self(Some(p)))
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Ledger-Min-Position must be a non-negative integer".to_owned(),
                    )
                }),
        }
    }
}

/// Where the slowest of `models` stands.
pub async fn position(pool: &PgPool, models: &[&str]) -> Result<i64, ApiError> {
    let models: Vec<String> = models.iter().map(|m| (*m).to_owned()).collect();
    let position: Option<i64> = sqlx::query_scalar(
        "SELECT min(coalesce(c.position, 0))
           FROM unnest($1::text[]) AS m(name)
           LEFT JOIN consumer_checkpoints c ON c.name = m.name",
    )
    .bind(&models)
    .fetch_one(pool)
    .await?;
    Ok(position.unwrap_or(0))
}

/// Waits (bounded) until `models` reach `min`; returns where they stand.
pub async fn wait_for(pool: &PgPool, models: &[&str], min: MinPosition) -> Result<i64, ApiError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = position(pool, models).await?;
        match min.0 {
            Some(min) if reached < min && started.elapsed() < MAX_WAIT => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => return Ok(reached),
        }
    }
}

pub fn header_value(position: i64) -> (HeaderName, HeaderValue) {
    (POSITION_HEADER, HeaderValue::from(position))
}

/// An answer given once the read models stood at a position: success or
/// problem, it carries `Ledger-Position`, so a client that waited can tell
/// "not projected yet" from "does not exist".
pub struct AtPosition<T>(pub i64, pub Result<T, ApiError>);

impl<T: IntoResponse> IntoResponse for AtPosition<T> {
    fn into_response(self) -> Response {
        let mut response = match self.1 {
            Ok(answer) => answer.into_response(),
            Err(problem) => problem.into_response(),
        };
        response
            .headers_mut()
            .insert(POSITION_HEADER, HeaderValue::from(self.0));
        response
    }
}
