//! Payments and refunds: a provider's payment event is recorded once (by its
//! id), captured when it pays the order's total in its currency, and turned
//! into a refund when the order no longer wants it (cancelled by the
//! customer, or paid twice). A payment that arrives after the holds expired
//! is captured and waits for the caller to re-hold (then `Reconfirm`) or to
//! give up (then `RefundLapsed`).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::status::status_name;
use super::{Order, OrderEvent as E, OrderStatus, PaymentOutcome};
use crate::error::DomainError;
use crate::money::{from_minor_units, to_minor_units};

type Decision = Result<Vec<E>, DomainError>;

impl Order {
    pub(super) fn record_payment(
        &self,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        received_at: DateTime<Utc>,
    ) -> Decision {
        if self.payments_seen.contains(&payment_id) {
            return Ok(vec![]);
        }
        if let PaymentOutcome::Failed {
            reason,
            code,
            decline_code,
        } = outcome
        {
            return Ok(vec![E::PaymentFailed {
                payment_id,
                intent_id,
                reason,
                code,
                decline_code,
            }]);
        }
        let expected_minor = to_minor_units(self.total()).unwrap_or(i64::MAX);
        if amount_minor != expected_minor || !currency.trim().eq_ignore_ascii_case(&self.currency) {
            return Ok(vec![E::PaymentAmountMismatch {
                payment_id,
                intent_id,
                expected_minor,
                received_minor: amount_minor,
                currency,
            }]);
        }
        let amount = from_minor_units(amount_minor);
        let captured = E::PaymentCaptured {
            payment_id,
            intent_id,
            amount,
        };
        Ok(match self.status {
            OrderStatus::Placed => vec![
                captured,
                E::OrderConfirmed {
                    confirmed_at: received_at,
                },
            ],
            // Paid after expiry: the caller re-holds, then issues Reconfirm
            // or RefundLapsed.
            OrderStatus::Cancelled
                if self.cancelled_by_expiry && self.net_paid() <= Decimal::ZERO =>
            {
                vec![captured]
            }
            // Paid after the customer cancelled: refunded at once.
            OrderStatus::Cancelled if self.net_paid() <= Decimal::ZERO => vec![
                captured,
                E::RefundIssued {
                    amount,
                    reason: "order cancelled".into(),
                },
            ],
            // A second payment for an order already paid.
            _ => vec![
                captured,
                E::RefundIssued {
                    amount,
                    reason: "duplicate payment".into(),
                },
            ],
        })
    }

    /// The units of an order paid after expiry were held again.
    pub(super) fn reconfirm(&self, at: DateTime<Utc>) -> Decision {
        match self.status {
            OrderStatus::Confirmed | OrderStatus::Completed => Ok(vec![]),
            OrderStatus::Cancelled
                if self.cancelled_by_expiry && self.net_paid() >= self.total() =>
            {
                Ok(vec![E::OrderReconfirmed { at }])
            }
            OrderStatus::Cancelled if self.cancelled_by_expiry => Err(DomainError::invalid_state(
                "no captured payment covers the order",
            )),
            s => Err(DomainError::invalid_state(format!(
                "an order that is {} cannot be reconfirmed",
                status_name(s)
            ))),
        }
    }

    /// The units of an order paid after expiry could not be held again.
    pub(super) fn refund_lapsed(&self) -> Decision {
        match self.status {
            OrderStatus::Refunded => Ok(vec![]),
            OrderStatus::Cancelled if self.net_paid() > Decimal::ZERO => {
                Ok(vec![E::RefundIssued {
                    amount: self.net_paid(),
                    reason: "units no longer available".into(),
                }])
            }
            OrderStatus::Cancelled => Err(DomainError::invalid_state(
                "the order has no captured payment to refund",
            )),
            s => Err(DomainError::invalid_state(format!(
                "an order that is {} cannot be refunded as lapsed",
                status_name(s)
            ))),
        }
    }
}
