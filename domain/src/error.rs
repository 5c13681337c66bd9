//! The one error type of the domain.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every rejection of every aggregate.
///
/// HTTP mapping suggested to callers: `NotFound` 404, `AlreadyExists` 409,
/// `Validation` 422, `InvalidState` 409, `Unavailable` 409,
/// `InsufficientBalance` 409, `WouldUndercut` 409.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// The aggregate was never created, or an unknown hold, line, blackout,
    /// vendor part.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{what} already exists")]
    AlreadyExists { what: &'static str },
    /// Bad input; one entry per problem.
    #[error("validation failed")]
    Validation { errors: Vec<FieldError> },
    /// The command does not fit the aggregate's current state.
    #[error("{0}")]
    InvalidState(String),
    #[error("requested units are not available")]
    Unavailable { conflicts: Vec<Conflict> },
    #[error("payout {requested} exceeds available balance {available}")]
    InsufficientBalance {
        available: Decimal,
        requested: Decimal,
    },
    /// A stock, units or blackout change would leave less capacity than is
    /// held or booked.
    #[error("change would undercut {in_use} units in use")]
    WouldUndercut {
        in_use: u32,
        requested_capacity: i64,
    },
}

impl DomainError {
    /// A validation error with a single field problem.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> DomainError {
        DomainError::Validation {
            errors: vec![FieldError::new(field, message)],
        }
    }

    pub fn not_found(what: &'static str) -> DomainError {
        DomainError::NotFound { what }
    }

    pub fn invalid_state(message: impl Into<String>) -> DomainError {
        DomainError::InvalidState(message.into())
    }

    /// `Ok(())` when `errors` is empty, else a Validation error with them all.
    pub fn check(errors: Vec<FieldError>) -> Result<(), DomainError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Validation { errors })
        }
    }
}

/// One validation problem; `field` is named as in the HTTP body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    /// For people.
    pub message: String,
    /// For programs: the rule broken (API.md "Rentals": `in_past`, …), where
    /// the rule has a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
            code: None,
        }
    }

    /// A problem that breaks a named rule.
    pub fn with_code(
        field: impl Into<String>,
        code: &str,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            code: Some(code.to_owned()),
            ..FieldError::new(field, message)
        }
    }
}

/// A line that could not be held: `free` is the minimum number of free units
/// over the requested period (or the free stock for a sale).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub listing_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    pub requested: u32,
    pub free: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_skips_missing_times() {
        let c = Conflict {
            listing_id: Uuid::nil(),
            start: None,
            end: None,
            requested: 2,
            free: 1,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"listing_id": Uuid::nil(), "requested": 2, "free": 1})
        );
    }

    #[test]
    fn messages_read_well() {
        assert_eq!(
            DomainError::not_found("vendor").to_string(),
            "vendor not found"
        );
        assert_eq!(
            DomainError::WouldUndercut {
                in_use: 3,
                requested_capacity: 2
            }
            .to_string(),
            "change would undercut 3 units in use"
        );
    }
}
