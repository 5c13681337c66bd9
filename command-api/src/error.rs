//! Where the command side's errors become HTTP problems. The problem type
//! itself, [`ApiError`], is shared with the read side (`ledger-http`); this
//! module maps what only the command side has (the event store's errors)
//! onto it, once.

use cqrs_es::AggregateError;
use domain::DomainError;

pub use ledger_http::error::{invalid, is_unavailable, ApiError, PROBLEM_BASE};

/// An error of postgres-es's event store as a problem.
pub fn from_aggregate(err: AggregateError<DomainError>) -> ApiError {
    match err {
        AggregateError::UserError(e) => e.into(),
        AggregateError::AggregateConflict => ApiError::Conflict {
            kind: "concurrent-modification",
            message: "the resource was changed concurrently; retry the request".to_owned(),
        },
        AggregateError::DatabaseConnectionError(e) => ApiError::ServiceUnavailable(e.to_string()),
        AggregateError::DeserializationError(e) => ApiError::internal(e),
        AggregateError::UnexpectedError(e) => match e.downcast_ref::<sqlx::Error>() {
            Some(sqlx_err) if is_unavailable(sqlx_err) => {
                ApiError::ServiceUnavailable(sqlx_err.to_string())
            }
            _ => ApiError::internal(e),
        },
    }
}
