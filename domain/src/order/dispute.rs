//! Disputes (API.md "Money", webhook `charge.dispute.created` / `.closed`):
//! the provider takes the disputed amount out of the platform's cash until
//! the dispute is decided. While open, the amount is spread over the order's
//! lines like a refund by amount, and each vendor's share of it is frozen
//! (taken from its pending net, or from its available balance once the part
//! is fulfilled). Won: the money comes back and the vendors' shares are
//! released (to pending, or to available once the part is fulfilled).
//! Lost: the money is gone, written off against the vendors' shares, the
//! platform's fee and the tax, as a refund would be.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::refund::RefundPart;
use super::status::status_name;
use super::{Order, OrderEvent as E, OrderStatus};
use crate::error::DomainError;
use crate::money::{is_valid_order_amount, round_cents};

type Decision = Result<Vec<E>, DomainError>;

/// A dispute of the order's payment, as the order remembers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisputeState {
    /// Ours: the vendors' frozen shares are reversed and restored under it.
    pub dispute_ref: Uuid,
    pub amount: Decimal,
    pub parts: Vec<RefundPart>,
    pub open: bool,
}

/// Where a won dispute's frozen vendor share goes back to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DisputeRelease {
    pub vendor_id: Uuid,
    /// The part is not fulfilled: back to its pending net.
    pub to_pending: Decimal,
    /// The part is fulfilled: back to the vendor's available balance.
    pub to_available: Decimal,
}

impl Order {
    pub(super) fn open_dispute(
        &self,
        dispute_id: String,
        dispute_ref: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
    ) -> Decision {
        if self.disputes.contains_key(&dispute_id) {
            return Ok(vec![]);
        }
        if !is_valid_order_amount(amount) || amount <= Decimal::ZERO {
            return Err(DomainError::invalid(
                "amount",
                "must be a positive amount with at most 2 decimal places",
            ));
        }
        if !matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed) {
            return Err(DomainError::invalid_state(format!(
                "an order that is {} has no captured payment to dispute",
                status_name(self.status)
            )));
        }
        let targets = self.targets(None, None)?;
        let left: Decimal = targets
            .iter()
            .map(|l| {
                let t = self.line_left(l);
                t.subtotal + t.tax
            })
            .sum();
        let disputable = self.refundable().min(left);
        if amount > disputable {
            return Err(DomainError::invalid_state(format!(
                "the disputed amount {amount} is above what the order has left, {disputable}"
            )));
        }
        let parts = self.allocate(amount, &targets);
        Ok(vec![E::DisputeOpened {
            dispute_id,
            dispute_ref,
            amount: round_cents(amount),
            parts,
            at,
        }])
    }

    pub(super) fn close_dispute(
        &self,
        dispute_id: String,
        won: bool,
        at: DateTime<Utc>,
    ) -> Decision {
        let dispute = self
            .disputes
            .get(&dispute_id)
            .ok_or(DomainError::not_found("dispute"))?;
        if !dispute.open {
            return Ok(vec![]);
        }
        let releases = if won {
            dispute
                .parts
                .iter()
                .map(|p| {
                    let fulfilled = self.fulfilled_vendors.contains(&p.vendor_id);
                    DisputeRelease {
                        vendor_id: p.vendor_id,
                        to_pending: if fulfilled {
                            round_cents(Decimal::ZERO)
                        } else {
                            p.net_reversed
                        },
                        to_available: if fulfilled {
                            p.net_reversed
                        } else {
                            round_cents(Decimal::ZERO)
                        },
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(vec![E::DisputeClosed {
            dispute_id,
            dispute_ref: dispute.dispute_ref,
            won,
            amount: dispute.amount,
            parts: dispute.parts.clone(),
            releases,
            at,
        }])
    }
}
