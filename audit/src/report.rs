//! What verification answers: the [`Report`] and its first [`Failure`].

use serde::Serialize;

/// Why a position failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    HashMismatch,
    ChainBroken,
    OutOfOrder,
    MissingEvent,
    UnexpectedEvent,
    SealSignature,
    SealDigest,
    SealInvalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failure {
    pub position: i64,
    pub kind: FailureKind,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub ok: bool,
    /// Events examined (all of the range when `ok`).
    pub checked: u64,
    /// The range examined: the one asked for, widened to whole seals.
    pub from: i64,
    pub to: i64,
    pub seals_checked: u64,
    /// False when no public key was given: seals were checked for digest,
    /// positions and chaining, but their signatures were not.
    pub signatures_checked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<Failure>,
}

pub(crate) fn missing(seal_id: i64, position: i64) -> Failure {
    Failure {
        position,
        kind: FailureKind::MissingEvent,
        reason: format!("the event at position {position}, sealed by seal {seal_id}, is missing"),
        seal_id: Some(seal_id),
    }
}
