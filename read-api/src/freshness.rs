//! Read-your-writes (API.md "Conventions"): a query with
//! `Ledger-Min-Position: N` waits up to 2 s for the read models it uses to
//! reach position N; every query answer says in `Ledger-Position` where
//! those read models stood.
//!
//! Checkpoints only move forward, so a position read a moment ago is a
//! position the read model stood at *at least*, and the data a query reads
//! after it is at least that new. The routes therefore take positions from
//! [`KnownPositions`], read again from the table at most every
//! [`FRESH_FOR`] (or when a client asks for more than is known), instead of
//! spending a statement on it in every query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use ledger_http::ApiError;
use sqlx::PgPool;

use crate::ReadApp;

pub const MIN_POSITION_HEADER: &str = "ledger-min-position";
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("ledger-position");
/// Longest wait for a read model to catch up.
pub const MAX_WAIT: Duration = Duration::from_secs(2);
/// How long positions read from the table answer queries that do not ask
/// for a newer one.
pub const FRESH_FOR: Duration = Duration::from_millis(10);

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

/// Every consumer's checkpoint as last read, shared by the query routes.
#[derive(Default)]
pub struct KnownPositions {
    known: Mutex<Known>,
    /// One request at a time reads the table; the others meanwhile answer
    /// with what is known.
    refreshing: AtomicBool,
}

#[derive(Default)]
struct Known {
    read_at: Option<Instant>,
    positions: HashMap<String, i64>,
}

impl Known {
    fn slowest(&self, models: &[&str]) -> i64 {
        models
            .iter()
            .map(|m| self.positions.get(*m).copied().unwrap_or(0))
            .min()
            .unwrap_or(0)
    }
}

impl KnownPositions {
    /// Where the slowest of `models` stood at most [`FRESH_FOR`] ago, or
    /// `None` when the caller should read the table (and no other request
    /// is already doing so).
    fn recent(&self, models: &[&str]) -> Option<i64> {
        let known = self
            .known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fresh = known.read_at.is_some_and(|at| at.elapsed() < FRESH_FOR);
        if fresh || (known.read_at.is_some() && self.refreshing.swap(true, Ordering::AcqRel)) {
            return Some(known.slowest(models));
        }
        None
    }

    /// Reads every checkpoint from the table; returns the slowest of `models`.
    async fn read(&self, pool: &PgPool, models: &[&str]) -> Result<i64, ApiError> {
        let rows: Result<Vec<(String, i64)>, sqlx::Error> =
            sqlx::query_as("SELECT name, position FROM consumer_checkpoints")
                .fetch_all(pool)
                .await;
        self.refreshing.store(false, Ordering::Release);
        let rows = rows?;
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Each read is true when it is taken; one that finishes after a
        // newer one only makes the answers a moment less fresh.
        known.read_at = Some(Instant::now());
        known.positions = rows.into_iter().collect();
        Ok(known.slowest(models))
    }
}

/// Waits (bounded) until `models` reach `min`; returns where they stand.
pub async fn wait_for(app: &ReadApp, models: &[&str], min: MinPosition) -> Result<i64, ApiError> {
    if let Some(reached) = app.positions.recent(models) {
        if min.0.is_none_or(|min| reached >= min) {
            return Ok(reached);
        }
    }
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let reached = app.positions.read(&app.pool, models).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn known(age: Duration, positions: &[(&str, i64)]) -> KnownPositions {
        let read_at = Instant::now().checked_sub(age).expect("a past instant");
        KnownPositions {
            known: Mutex::new(Known {
                read_at: Some(read_at),
                positions: positions
                    .iter()
                    .map(|(n, p)| ((*n).to_owned(), *p))
                    .collect(),
            }),
            refreshing: AtomicBool::new(false),
        }
    }

    #[test]
    fn nothing_known_yet_means_read_the_table() {
        assert_eq!(KnownPositions::default().recent(&["orders"]), None);
    }

    #[test]
    fn fresh_positions_answer_with_the_slowest_model_and_unknown_ones_at_zero() {
        let positions = known(Duration::ZERO, &[("orders", 7), ("ledger", 5)]);
        assert_eq!(positions.recent(&["orders"]), Some(7));
        assert_eq!(positions.recent(&["orders", "ledger"]), Some(5));
        assert_eq!(positions.recent(&["orders", "analytics"]), Some(0));
    }

    #[test]
    fn stale_positions_send_one_request_to_the_table_and_answer_the_rest() {
        let positions = known(FRESH_FOR * 2, &[("orders", 7)]);
        assert_eq!(
            positions.recent(&["orders"]),
            None,
            "the first reads the table"
        );
        assert_eq!(
            positions.recent(&["orders"]),
            Some(7),
            "the others answer with what is known meanwhile"
        );
    }
}
