//! `Idempotency-Key` (API.md "Conventions"): the same key with the same
//! request returns the first answer again, marked `Idempotent-Replayed: true`,
//! and records nothing new; the same key with another request is 422; a
//! request racing one still in flight with the same key is 409. Keys are
//! scoped to the principal and kept 24 hours.
//!
//! The first request claims the key with an `in_flight` row before it runs,
//! and stores its answer when done. Server errors (5xx) are not stored: the
//! key is freed so the client may retry. If the process dies mid-request,
//! the claim's lease runs out and a retry takes the key over; the domain's
//! own idempotency (hold ids, order ids) keeps that retry from recording
//! anything twice.
//!
//! A request is recognised by its meaning: method, path and the body's
//! canonical JSON ([`fingerprint`]).

mod fingerprint;

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;

use crate::auth::Principal;
use crate::context::IDEMPOTENCY_KEY_HEADER;
use crate::error::ApiError;
use fingerprint::RequestFingerprint;

pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub use ledger_http::extract::BODY_LIMIT;
/// How long a claim protects a running request before a retry may take over.
const LEASE: Duration = Duration::from_secs(60);
/// How long keys are remembered.
const RETENTION_HOURS: i64 = 24;

/// Headers of the first answer that are replayed with it.
const STORED_HEADERS: [&str; 2] = ["content-type", "location"];

#[derive(Clone)]
pub struct IdempotencyStore {
    pool: PgPool,
}

/// A stored key: request hash, state, older than the retention, lease
/// over, and the stored answer's status, headers and body.
type StoredKey = (
    Vec<u8>,
    String,
    bool,
    bool,
    Option<i16>,
    Option<serde_json::Value>,
    Option<Vec<u8>>,
);

enum Claim {
    /// The key is ours: run the request.
    Claimed,
    Replay {
        status: u16,
        headers: serde_json::Value,
        body: Vec<u8>,
    },
}

impl IdempotencyStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn claim(
        &self,
        principal: &str,
        key: &str,
        request: &RequestFingerprint,
    ) -> Result<Claim, ApiError> {
        // Two rounds at most: the second after clearing an expired key.
        for _ in 0..2 {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys
                     (principal, idempotency_key, request_hash, state, lease_until)
                 VALUES ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4))
                 ON CONFLICT DO NOTHING",
            )
            .bind(principal)
            .bind(key)
            .bind(request.stored())
            .bind(LEASE.as_secs_f64())
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(Claim::Claimed);
            }
            let row: Option<StoredKey> = sqlx::query_as(
                "SELECT request_hash, state,
                            created_at < now() - make_interval(hours => $3),
                            lease_until < now(),
                            response_status, response_headers, response_body
                       FROM idempotency_keys
                      WHERE principal = $1 AND idempotency_key = $2",
            )
            .bind(principal)
            .bind(key)
            .bind(RETENTION_HOURS as i32)
            .fetch_optional(&self.pool)
            .await?;
            let Some((stored_hash, state, expired, lease_over, status, headers, body)) = row else {
                continue; // deleted meanwhile: try to claim again
            };
            if expired {
                sqlx::query(
                    "DELETE FROM idempotency_keys
                      WHERE principal = $1 AND idempotency_key = $2
                        AND created_at < now() - make_interval(hours => $3)",
                )
                .bind(principal)
                .bind(key)
                .bind(RETENTION_HOURS as i32)
                .execute(&self.pool)
                .await?;
                continue;
            }
            if !request.matches(&stored_hash) {
                return Err(ApiError::IdempotencyKeyReused);
            }
            if state == "completed" {
                return Ok(Claim::Replay {
                    status: status.unwrap_or(200) as u16,
                    headers: headers.unwrap_or(serde_json::Value::Null),
                    body: body.unwrap_or_default(),
                });
            }
            if !lease_over {
                return Err(ApiError::IdempotencyKeyInFlight);
            }
            // The first request's process is gone: take the key over.
            let taken = sqlx::query(
                "UPDATE idempotency_keys
                    SET lease_until = now() + make_interval(secs => $3)
                  WHERE principal = $1 AND idempotency_key = $2
                    AND state = 'in_flight' AND lease_until < now()",
            )
            .bind(principal)
            .bind(key)
            .bind(LEASE.as_secs_f64())
            .execute(&self.pool)
            .await?;
            return if taken.rows_affected() == 1 {
                Ok(Claim::Claimed)
            } else {
                Err(ApiError::IdempotencyKeyInFlight)
            };
        }
        Err(ApiError::IdempotencyKeyInFlight)
    }

    async fn complete(
        &self,
        principal: &str,
        key: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), sqlx::Error> {
        let stored: serde_json::Map<String, serde_json::Value> = STORED_HEADERS
            .iter()
            .filter_map(|name| {
                headers
                    .get(*name)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| ((*name).to_owned(), serde_json::Value::String(v.to_owned())))
            })
            .collect();
        sqlx::query(
            "UPDATE idempotency_keys
                SET state = 'completed', response_status = $3,
                    response_headers = $4, response_body = $5
              WHERE principal = $1 AND idempotency_key = $2",
        )
        .bind(principal)
        .bind(key)
        .bind(status.as_u16() as i16)
        .bind(serde_json::Value::Object(stored))
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn release(&self, principal: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys
              WHERE principal = $1 AND idempotency_key = $2 AND state = 'in_flight'",
        )
        .bind(principal)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets keys older than the retention period. Returns how many.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
        )
        .bind(RETENTION_HOURS as i32)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Middleware around the command routes.
pub async fn idempotency(
    State(store): State<IdempotencyStore>,
    request: Request,
    next: Next,
) -> Response {
    match run(store, request, next).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(store: IdempotencyStore, request: Request, next: Next) -> Result<Response, ApiError> {
    if !matches!(
        *request.method(),
        Method::POST | Method::DELETE | Method::PUT | Method::PATCH
    ) {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY_HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| valid_key(k))
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned(),
            )
        })?
        .to_owned();
    // Keys belong to one principal: its role, tenant and subject together.
    let principal = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or_else(Principal::payment_provider);
    // The same subject in two tenants is two principals.
    let principal = if principal.tenant == ledger_http::DEFAULT_TENANT {
        format!("{}:{}", principal.role.as_str(), principal.subject)
    } else {
        format!(
            "{}@{}:{}",
            principal.role.as_str(),
            principal.tenant,
            principal.subject
        )
    };

    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let request = RequestFingerprint::of(parts.method.as_str(), &parts.uri.to_string(), &bytes);

    match store.claim(&principal, &key, &request).await? {
        Claim::Replay {
            status,
            headers,
            body,
        } => {
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let serde_json::Value::Object(map) = headers {
                for (name, value) in map {
                    if let (Ok(name), Some(Ok(value))) = (
                        HeaderName::try_from(name.as_str()),
                        value.as_str().map(HeaderValue::from_str),
                    ) {
                        response.headers_mut().insert(name, value);
                    }
                }
            }
            response
                .headers_mut()
                .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            Ok(response)
        }
        Claim::Claimed => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            let (parts, body) = response.into_parts();
            let body = match to_bytes(body, usize::MAX).await {
                Ok(body) => body,
                Err(err) => {
                    store.release(&principal, &key).await.ok();
                    return Err(ApiError::internal(err));
                }
            };
            let outcome = if parts.status.is_server_error() {
                store.release(&principal, &key).await
            } else {
                store
                    .complete(&principal, &key, parts.status, &parts.headers, &body)
                    .await
            };
            if let Err(err) = outcome {
                // The command ran; its answer stands even if we could not
                // remember it. A retry after the lease re-runs it, and the
                // domain's own idempotency keeps that harmless.
                tracing::warn!(error = %err, "could not store the idempotent response");
            }
            Ok(Response::from_parts(parts, Body::from(body)))
        }
    }
}
