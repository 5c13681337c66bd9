//! The Vendor aggregate's payout lifecycle and fee rate (API.md "Money"),
//! kept beside `vendor.rs` so that the aggregate's file only routes to it.
//!
//! - A payout is `requested` when recorded (its amount leaves the available
//!   balance at once, so two racing requests never overdraw), then `paid`
//!   or `failed` as the provider reports (`payout.paid`, `payout.failed`).
//!   A failed payout's amount returns to the available balance. Each
//!   outcome is recorded once: the same outcome again is a no-op (a
//!   redelivered webhook), the other outcome after one is refused.
//! - A vendor's platform fee rate replaces the deployment's for orders
//!   placed after it is set; orders placed before keep theirs (each order
//!   records the fee it was priced with).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::vendor::VendorEvent;

/// Most decimal places a fee rate may have ("0.0825").
pub const FEE_RATE_PLACES: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Requested,
    Paid,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Requested => "requested",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
        }
    }
}

/// What the provider reports of a payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayoutOutcome {
    Paid,
    Failed { reason: String },
}

/// A payout as the aggregate remembers it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PayoutEntry {
    pub amount: Decimal,
    pub status: PayoutStatus,
}

/// Payouts by id.
pub type PayoutBook = BTreeMap<Uuid, PayoutEntry>;

/// A rate is a fraction in [0, 1] with at most [`FEE_RATE_PLACES`] places.
pub fn check_fee_rate(rate: Decimal) -> Result<(), DomainError> {
    if rate < Decimal::ZERO || rate > Decimal::ONE || rate.normalize().scale() > FEE_RATE_PLACES {
        return Err(DomainError::invalid(
            "rate",
            format!("must be between 0 and 1 with at most {FEE_RATE_PLACES} decimal places"),
        ));
    }
    Ok(())
}

pub(crate) fn set_fee_rate(
    current: Option<Decimal>,
    rate: Decimal,
    at: DateTime<Utc>,
) -> Result<Vec<VendorEvent>, DomainError> {
    check_fee_rate(rate)?;
    if current == Some(rate) {
        return Ok(vec![]);
    }
    Ok(vec![VendorEvent::FeeRateSet { rate, set_at: at }])
}

/// The provider's outcome of a requested payout.
pub(crate) fn settle(
    book: &PayoutBook,
    payout_id: Uuid,
    outcome: PayoutOutcome,
    at: DateTime<Utc>,
) -> Result<Vec<VendorEvent>, DomainError> {
    let Some(entry) = book.get(&payout_id) else {
        return Err(DomainError::not_found("payout"));
    };
    let wanted = match outcome {
        PayoutOutcome::Paid => PayoutStatus::Paid,
        PayoutOutcome::Failed { .. } => PayoutStatus::Failed,
    };
    if entry.status == wanted {
        return Ok(vec![]);
    }
    if entry.status != PayoutStatus::Requested {
        return Err(DomainError::invalid_state(format!(
            "payout {payout_id} is already {}",
            entry.status.as_str()
        )));
    }
    Ok(vec![match outcome {
        PayoutOutcome::Paid => VendorEvent::PayoutPaid {
            payout_id,
            amount: entry.amount,
            paid_at: at,
        },
        PayoutOutcome::Failed { reason } => VendorEvent::PayoutFailed {
            payout_id,
            amount: entry.amount,
            reason: reason.chars().take(500).collect(),
            failed_at: at,
        },
    }])
}
