//! Refunds and disputes after a part was fulfilled (API.md "Money"): the
//! available balance never goes negative; what it cannot cover is a
//! receivable, settled from the vendor's next credits.

use rust_decimal::Decimal;
use uuid::Uuid;

use super::{Vendor, VendorEvent};
use crate::error::DomainError;
use crate::money::is_valid_order_amount;

type Decision = Result<Vec<VendorEvent>, DomainError>;

impl Vendor {
    pub(super) fn reverse_earnings(
        &self,
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
    ) -> Decision {
        if self.reversals.contains(&reversal_id) {
            return Ok(vec![]);
        }
        if !is_valid_order_amount(amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        let from_available = amount.min(self.available_balance().max(Decimal::ZERO));
        Ok(vec![VendorEvent::EarningsReversed {
            reversal_id,
            order_id,
            amount: crate::money::round_cents(amount),
            from_available: crate::money::round_cents(from_available),
            receivable: crate::money::round_cents(amount - from_available),
        }])
    }

    pub(super) fn restore_earnings(
        &self,
        reversal_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
    ) -> Decision {
        if self.restorations.contains(&reversal_id) {
            return Ok(vec![]);
        }
        if !is_valid_order_amount(amount) {
            return Err(DomainError::invalid(
                "amount",
                "must be a non-negative amount with at most 2 decimal places",
            ));
        }
        Ok(vec![VendorEvent::EarningsRestored {
            reversal_id,
            order_id,
            amount: crate::money::round_cents(amount),
            receivable_settled: crate::money::round_cents(amount.min(self.receivable)),
        }])
    }

    /// `events`, followed by the settlement of the receivable from what
    /// they credit (earnings made available, damage and late fee credits,
    /// a failed payout's amount back).
    pub(super) fn settling_receivable(&self, mut events: Vec<VendorEvent>) -> Vec<VendorEvent> {
        if self.receivable <= Decimal::ZERO {
            return events;
        }
        let credit = events.iter().find_map(|e| match e {
            VendorEvent::EarningsMadeAvailable { order_id, amount }
            | VendorEvent::DamageCredited {
                order_id, amount, ..
            }
            | VendorEvent::LateFeeCredited {
                order_id, amount, ..
            }
            | VendorEvent::LateFeeCollected {
                order_id, amount, ..
            } => Some((Some(*order_id), None, *amount)),
            VendorEvent::PayoutFailed {
                payout_id, amount, ..
            } => Some((None, Some(*payout_id), *amount)),
            _ => None,
        });
        if let Some((order_id, payout_id, amount)) = credit {
            let settled = amount.min(self.receivable);
            if settled > Decimal::ZERO {
                events.push(VendorEvent::ReceivableSettled {
                    order_id,
                    payout_id,
                    amount: crate::money::round_cents(settled),
                });
            }
        }
        events
    }
}
