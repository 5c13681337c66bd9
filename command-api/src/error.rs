//! Where the command side's errors become HTTP problems. The problem type
//! itself, [`ApiError`], is shared with the read side (`ledger-http`); this
//! module maps what only the command side has ([`CommandError`]) onto it,
//! once. Status codes and problem bodies are those of API.md.

pub use ledger_http::error::{invalid, is_unavailable, ApiError, PROBLEM_BASE};

use crate::bus::{CommandError, StoreError};

impl From<CommandError> for ApiError {
    fn from(err: CommandError) -> Self {
        match err {
            CommandError::Rejected(rejection) => rejection.into(),
            CommandError::Conflict | CommandError::StaleTerms => ApiError::Conflict {
                kind: "concurrent-modification",
                message: "the resource was changed concurrently; retry the request".to_owned(),
            },
            CommandError::Store(StoreError::Unavailable(cause)) => {
                ApiError::ServiceUnavailable(cause)
            }
            CommandError::Store(StoreError::Failed(cause)) => ApiError::Internal(cause),
            err @ CommandError::Stopped => ApiError::internal(err),
            CommandError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use domain::DomainError;

    use super::*;

    fn status(err: CommandError) -> (StatusCode, String) {
        let err = ApiError::from(err);
        let kind = err.problem()["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches(PROBLEM_BASE)
            .to_owned();
        (err.status(), kind)
    }

    #[test]
    fn command_errors_answer_the_status_and_problem_of_api_md() {
        let rejected = CommandError::Rejected(DomainError::not_found("order"));
        assert_eq!(
            status(rejected),
            (StatusCode::NOT_FOUND, "not-found".into())
        );
        assert_eq!(
            status(CommandError::Conflict),
            (StatusCode::CONFLICT, "concurrent-modification".into())
        );
        let down = CommandError::Store(StoreError::Unavailable("pool timed out".into()));
        assert_eq!(
            status(down),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "service-unavailable".into()
            )
        );
        let failed = CommandError::Store(StoreError::Failed("bad row".into()));
        assert_eq!(
            status(failed),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal".into())
        );
        assert_eq!(
            status(CommandError::Stopped),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal".into())
        );
    }
}
