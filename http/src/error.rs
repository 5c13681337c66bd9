//! The one error type of both HTTP APIs and its mapping to RFC 7807
//! problem responses. Handlers return `Result<_, ApiError>` and use `?`;
//! nothing else decides status codes. What is below HTTP (the command bus,
//! the stores) has errors of its own, mapped here or in the API's error
//! module, never in handlers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{Conflict, DomainError, FieldError};
use serde_json::{json, Value};

/// Base of every problem `type` URI; the last path segment names the problem.
pub const PROBLEM_BASE: &str = "https://ledger.example/problems/";

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    Conflict { kind: &'static str, message: String },
    #[error("the requested units are not available")]
    Unavailable(Vec<Conflict>),
    #[error("payout {requested} exceeds the available balance {available}")]
    InsufficientBalance {
        available: rust_decimal::Decimal,
        requested: rust_decimal::Decimal,
    },
    #[error("this Idempotency-Key was used with another request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in flight")]
    IdempotencyKeyInFlight,
    #[error("request body exceeds the limit")]
    PayloadTooLarge,
    #[error("request header fields exceed the limit of {limit_bytes} bytes")]
    HeaderFieldsTooLarge { limit_bytes: usize },
    #[error("unsupported media type: expected application/json")]
    UnsupportedMediaType,
    #[error("too many requests: retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("a dependency is unavailable: {0}")]
    ServiceUnavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation(_) | Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict { .. }
            | Self::Unavailable(_)
            | Self::InsufficientBalance { .. }
            | Self::IdempotencyKeyInFlight => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::HeaderFieldsTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Last segment of the problem `type`.
    fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Validation(_) => "validation",
            Self::Conflict { kind, .. } => kind,
            Self::Unavailable(_) => "unavailable",
            Self::InsufficientBalance { .. } => "insufficient-balance",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::IdempotencyKeyInFlight => "idempotency-key-in-flight",
            Self::PayloadTooLarge => "payload-too-large",
            Self::HeaderFieldsTooLarge { .. } => "header-fields-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RateLimited { .. } => "rate-limited",
            Self::ServiceUnavailable(_) => "service-unavailable",
            Self::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::UNPROCESSABLE_ENTITY => "Unprocessable request",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Request header fields too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            _ => "Internal server error",
        }
    }

    /// The problem document (RFC 7807) with this error's extensions.
    pub fn problem(&self) -> Value {
        let status = self.status();
        // Internal details are logged, never shown.
        let detail = match self {
            Self::Internal(_) => "an unexpected error occurred".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("{PROBLEM_BASE}{}", self.kind()),
            "title": self.title(),
            "status": status.as_u16(),
            "detail": detail,
        });
        match self {
            Self::Validation(errors) => body["errors"] = json!(errors),
            Self::Unavailable(conflicts) => body["conflicts"] = json!(conflicts),
            Self::InsufficientBalance {
                available,
                requested,
            } => {
                body["available"] = json!(crate::money::money(*available));
                body["requested"] = json!(crate::money::money(*requested));
            }
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(%cause, "internal error"),
            Self::ServiceUnavailable(cause) => tracing::warn!(%cause, "dependency unavailable"),
            _ => {}
        }
        let mut response = (self.status(), self.problem().to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::RateLimited { retry_after_secs } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound { what } => Self::NotFound(what.to_owned()),
            DomainError::AlreadyExists { what } => Self::Conflict {
                kind: "already-exists",
                message: format!("{what} already exists"),
            },
            DomainError::Validation { errors } => Self::Validation(errors),
            DomainError::InvalidState(message) => Self::Conflict {
                kind: "invalid-state",
                message,
            },
            DomainError::Unavailable { conflicts } => Self::Unavailable(conflicts),
            DomainError::InsufficientBalance {
                available,
                requested,
            } => Self::InsufficientBalance {
                available,
                requested,
            },
            err @ DomainError::WouldUndercut { .. } => Self::Conflict {
                kind: "would-undercut",
                message: err.to_string(),
            },
        }
    }
}

/// Errors that mean "the database is not reachable right now" rather than a bug.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(
        err,
        sqlx::Error::Database(db) if db.code().is_some_and(|code| is_unavailable_code(&code))
    )
}

/// SQLSTATEs of a server going away or a statement cut by
/// `statement_timeout`: the dependency is down or stuck, not a bug.
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("57P") // admin/crash shutdown, cannot connect now
        || code == "57014" // query canceled (statement_timeout)
        || code == "53300" // too many connections
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            Self::ServiceUnavailable(err.to_string())
        } else {
            Self::internal(err)
        }
    }
}

/// A one-field validation error.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError::new(field, message)])
}
