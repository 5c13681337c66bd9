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
    /// The events' hashes no longer give the seal's digest or Merkle root:
    /// reported with the seal's range, since any event in it may be the
    /// changed one (an earlier export or `GET /v1/audit/proof` narrows it).
    SealDigest,
    SealInvalid,
    /// A seal the auditor kept (an anchor) or the seal stream holds is not
    /// in the database: the newest seals were removed.
    SealMissing,
    /// The database's seal of that number differs from the one kept or
    /// published: the seal chain was rewritten.
    SealRewritten,
    /// An event the auditor's anchor or the event stream vouches for is
    /// not in the log: its end was cut off.
    LogTruncated,
}

/// A range of global positions, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PositionRange {
    pub from: i64,
    pub to: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failure {
    /// The first bad position, when one is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<i64>,
    /// The range the failure lies in, when no single position is known
    /// (a seal's digest, a missing or rewritten seal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<PositionRange>,
    pub kind: FailureKind,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_id: Option<i64>,
}

impl Failure {
    /// A failure at one position.
    pub fn at(position: i64, kind: FailureKind, reason: String, seal_id: Option<i64>) -> Self {
        Self {
            position: Some(position),
            range: None,
            kind,
            reason,
            seal_id,
        }
    }

    /// A failure somewhere in `[from, to]`.
    pub fn within(from: i64, to: i64, kind: FailureKind, reason: String, seal_id: i64) -> Self {
        Self {
            position: None,
            range: Some(PositionRange { from, to }),
            kind,
            reason,
            seal_id: Some(seal_id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub ok: bool,
    /// Events examined (all of the range when `ok`).
    pub checked: u64,
    /// The last position covered by a seal that was checked (0: none).
    pub sealed_through: i64,
    /// How many of the `checked` events no seal covers yet: they are
    /// vouched for by their hash chain only, and removing them would not
    /// show unless an anchor or the event stream says they existed.
    pub unsealed: u64,
    /// The range examined: the one asked for, widened to whole seals.
    pub from: i64,
    pub to: i64,
    pub seals_checked: u64,
    /// False when no public key was given: seals were checked for digest,
    /// positions and chaining, but their signatures were not, so a log
    /// rewritten with its seals re-made would pass.
    pub signatures_checked: bool,
    /// Seals and events compared with copies kept outside the database
    /// (an anchor, the seal stream, the event stream).
    pub anchors_checked: u64,
    /// Set when the verification was one tenant's (issue 15): `checked`
    /// and `unsealed` count that tenant's events only. The chains and the
    /// seals were still checked over every event of the range, since a
    /// seal's digest covers all tenants' events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_failure: Option<Failure>,
}

pub(crate) fn missing(seal_id: i64, position: i64) -> Failure {
    Failure::at(
        position,
        FailureKind::MissingEvent,
        format!("the event at position {position}, sealed by seal {seal_id}, is missing"),
        Some(seal_id),
    )
}
