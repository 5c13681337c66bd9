//! What can go wrong running a command, below HTTP. The bus, the saga, the
//! reactions, the sweeper and the policies answer [`CommandError`] and
//! decide on it (a background job retries a store failure, notes a
//! rejection and goes on); only `crate::error` turns it into a problem
//! response.

use cqrs_es::AggregateError;
use domain::DomainError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommandError {
    /// The domain said no: a business rule refused the command. Retrying
    /// it changes nothing.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// Others kept writing the aggregate: the optimistic-concurrency
    /// retries ran out.
    #[error("the resource was changed concurrently; retry the request")]
    Conflict,
    /// What the command was decided on (a listing's terms, a fee rate, a
    /// time zone, read from a cache) changed before it was recorded:
    /// nothing was. Decide again on fresh terms.
    #[error("the terms the command was decided on changed; retry the request")]
    StaleTerms,
    /// The event store (or another table the command needs) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The aggregate's worker went away before it answered.
    #[error("the aggregate's worker stopped")]
    Stopped,
    /// A broken promise of our own (a bug, or a setting out of range):
    /// neither the caller's fault nor the store's.
    #[error("{0}")]
    Internal(String),
}

/// A failure of the database under the command side. The distinction is
/// the caller's to act on: an unavailable store is worth a retry later
/// (503), a failed one is a bug or corrupt data (500).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Not reachable right now: connection lost, pool exhausted, a
    /// statement cut by its timeout.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    /// Whether the command got no fair hearing: the store, the worker or
    /// our own code failed, not the command. Background jobs stop and retry
    /// on these; a rejection or a conflict is an answer, noted and passed.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Stopped | Self::Internal(_))
    }
}

impl StoreError {
    pub fn failed(err: impl std::fmt::Display) -> Self {
        Self::Failed(err.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if ledger_http::is_unavailable(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Failed(err.to_string())
        }
    }
}

/// The keys of personal data live in the same database.
impl From<privacy::Error> for CommandError {
    fn from(err: privacy::Error) -> Self {
        match err {
            privacy::Error::Database(err) => err.into(),
            other => Self::Store(StoreError::failed(other)),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(err: sqlx::Error) -> Self {
        Self::Store(err.into())
    }
}

impl From<AggregateError<DomainError>> for CommandError {
    fn from(err: AggregateError<DomainError>) -> Self {
        match err {
            AggregateError::UserError(e) => Self::Rejected(e),
            AggregateError::AggregateConflict => Self::Conflict,
            AggregateError::DatabaseConnectionError(e) => {
                Self::Store(StoreError::Unavailable(e.to_string()))
            }
            AggregateError::DeserializationError(e) => Self::Store(StoreError::failed(e)),
            AggregateError::UnexpectedError(e) => match e.downcast_ref::<sqlx::Error>() {
                Some(sqlx_err) if ledger_http::is_unavailable(sqlx_err) => {
                    Self::Store(StoreError::Unavailable(sqlx_err.to_string()))
                }
                _ => Self::Store(StoreError::failed(e)),
            },
        }
    }
}
