//! A vendor's late fees (API.md "Rentals"): the part a deposit covered is
//! credited at the return (`LateFeeCredited`, from the deposits held); the
//! part the customer owed is the vendor's once the customer pays it
//! (`LateFeeCollected`, its pending late fee made available).

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Vendor, VendorEvent};
use crate::error::DomainError;
use crate::money::is_valid_amount;

type Decision = Result<Vec<VendorEvent>, DomainError>;

impl Vendor {
    /// Idempotent per `line_id`.
    pub(super) fn credit_late_fee(
        &self,
        order_id: Uuid,
        line_id: Uuid,
        amount: Decimal,
    ) -> Decision {
        if self.late_fee_lines.contains(&line_id) {
            return Ok(vec![]);
        }
        if !is_valid_amount(amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        Ok(vec![VendorEvent::LateFeeCredited {
            order_id,
            line_id,
            amount,
        }])
    }

    /// Idempotent per (`payment_id`, `line_id`).
    pub(super) fn collect_late_fee(
        &self,
        order_id: Uuid,
        line_id: Uuid,
        payment_id: String,
        amount: Decimal,
    ) -> Decision {
        if self
            .late_fee_collections
            .contains(&collection_key(&payment_id, line_id))
        {
            return Ok(vec![]);
        }
        if !is_valid_amount(amount) || amount <= Decimal::ZERO {
            return Err(DomainError::invalid(
                "amount",
                "must be a positive amount with at most 2 decimal places",
            ));
        }
        Ok(vec![VendorEvent::LateFeeCollected {
            order_id,
            line_id,
            payment_id,
            amount,
        }])
    }
}

/// How a collection is remembered.
pub(super) fn collection_key(payment_id: &str, line_id: Uuid) -> String {
    format!("{payment_id}:{line_id}")
}
