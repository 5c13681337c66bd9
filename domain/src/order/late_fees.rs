//! Collecting a late fee the deposit did not cover (API.md "Rentals",
//! issue 13 item 5): what a return left owed (`LineReturned.late_fee_owed`)
//! is paid by a payment webhook naming the order of exactly what the order
//! owes, or by unapplied cash an admin applies (`POST
//! /v1/payments/{id}/apply`), up to what is owed. Either is `LateFeePaid`,
//! split over the lines that owe (in line order), so that each vendor's
//! pending late fee can be made available (Vendor `LateFeeCollected`).
//!
//! The order's price, captured amount and refunds are untouched: a late
//! fee is no part of the order's total and never refundable as its price.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Order, OrderEvent as E, OrderStatus};
use crate::money::round_cents;

/// What a late fee payment pays of one line's owed fee.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LateFeePart {
    pub line_id: Uuid,
    pub vendor_id: Uuid,
    pub amount: Decimal,
}

impl Order {
    /// Late fees the deposits did not cover and nothing has paid yet.
    pub fn late_fee_owed(&self) -> Decimal {
        round_cents(self.late_fees_owed.values().map(|(_, owed)| *owed).sum())
    }

    /// Late fees paid after the return (by payments or unapplied cash).
    pub fn late_fee_paid(&self) -> Decimal {
        round_cents(self.late_fees_paid)
    }

    /// `amount` (at most what is owed) spread over the lines that owe, in
    /// the order's line order, each up to what it owes.
    fn late_fee_parts(&self, amount: Decimal) -> Vec<LateFeePart> {
        let mut left = amount;
        let mut parts = Vec::new();
        for line in self.lines() {
            let Some((vendor_id, owed)) = self.late_fees_owed.get(&line.line_id) else {
                continue;
            };
            let paid = left.min(*owed);
            if paid <= Decimal::ZERO {
                continue;
            }
            parts.push(LateFeePart {
                line_id: line.line_id,
                vendor_id: *vendor_id,
                amount: round_cents(paid),
            });
            left -= paid;
        }
        parts
    }

    /// Whether the order is where a late fee can be owed.
    fn may_owe(&self) -> bool {
        matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed)
    }

    /// A new successful payment naming the order: it pays the late fees
    /// when it is exactly what is owed. `None`: it is no such payment.
    pub(super) fn late_fee_payment(
        &self,
        payment_id: &str,
        intent_id: &str,
        amount: Decimal,
        at: DateTime<Utc>,
    ) -> Option<Vec<E>> {
        let owed = self.late_fee_owed();
        if !self.may_owe() || owed <= Decimal::ZERO || amount != owed {
            return None;
        }
        Some(vec![E::LateFeePaid {
            payment_id: payment_id.to_owned(),
            intent_id: intent_id.to_owned(),
            amount: owed,
            from_unapplied: false,
            parts: self.late_fee_parts(owed),
            at,
        }])
    }

    /// Unapplied cash `held` applied to what the order owes in late fees:
    /// as much as is owed; the rest stays unapplied. `None`: nothing owed.
    pub(super) fn apply_to_late_fees(
        &self,
        payment_id: &str,
        held: Decimal,
        at: DateTime<Utc>,
    ) -> Option<Vec<E>> {
        let owed = self.late_fee_owed();
        if !self.may_owe() || owed <= Decimal::ZERO {
            return None;
        }
        let amount = round_cents(held.min(owed));
        Some(vec![E::LateFeePaid {
            payment_id: payment_id.to_owned(),
            intent_id: String::new(),
            amount,
            from_unapplied: true,
            parts: self.late_fee_parts(amount),
            at,
        }])
    }

    /// Applies `LateFeePaid`.
    pub(super) fn late_fee_was_paid(
        &mut self,
        payment_id: String,
        amount: Decimal,
        from_unapplied: bool,
        parts: &[LateFeePart],
    ) {
        for part in parts {
            if let Some((_, owed)) = self.late_fees_owed.get_mut(&part.line_id) {
                *owed -= part.amount;
                if *owed <= Decimal::ZERO {
                    self.late_fees_owed.remove(&part.line_id);
                }
            }
        }
        self.late_fees_paid += amount;
        if from_unapplied {
            *self.unapplied.entry(payment_id).or_default() -= amount;
        } else {
            self.payments_seen.insert(payment_id);
        }
    }
}
