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

/// A payment is at most this many minor units (an order's largest total).
fn is_payable(amount: Decimal) -> bool {
    crate::money::is_valid_order_amount(amount)
}

impl Order {
    /// What a payment decides before its amount matters: nothing for one
    /// already seen, `PaymentFailed` for a failure. `None`: it succeeded and
    /// is new.
    pub(super) fn seen_or_failed(
        &self,
        payment_id: &str,
        intent_id: &str,
        outcome: &PaymentOutcome,
    ) -> Option<Vec<E>> {
        if self.payments_seen.contains(payment_id) {
            return Some(vec![]);
        }
        match outcome {
            PaymentOutcome::Failed {
                reason,
                code,
                decline_code,
            } => Some(vec![E::PaymentFailed {
                payment_id: payment_id.to_owned(),
                intent_id: intent_id.to_owned(),
                reason: reason.clone(),
                code: code.clone(),
                decline_code: decline_code.clone(),
            }]),
            PaymentOutcome::Succeeded => None,
        }
    }

    pub(super) fn record_payment(
        &self,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        received_at: DateTime<Utc>,
    ) -> Decision {
        if let Some(settled) = self.seen_or_failed(&payment_id, &intent_id, &outcome) {
            return Ok(settled);
        }
        // A confirmed lease's payments pay its instalments.
        if self.lease().is_some()
            && matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed)
        {
            return self.pay_instalment(
                None,
                payment_id,
                intent_id,
                amount_minor,
                currency,
                outcome,
                received_at,
            );
        }
        let expected_minor = to_minor_units(self.upfront()).unwrap_or(i64::MAX);
        let amount = from_minor_units(amount_minor);
        // Another currency, or no amount the books can hold: recorded, not
        // posted.
        if !currency.trim().eq_ignore_ascii_case(&self.currency)
            || amount <= Decimal::ZERO
            || !is_payable(amount)
        {
            return Ok(vec![E::PaymentAmountMismatch {
                payment_id,
                intent_id,
                expected_minor,
                received_minor: amount_minor,
                currency,
            }]);
        }
        // Exactly the late fees a return left owed: they are paid.
        if let Some(events) = self.late_fee_payment(&payment_id, &intent_id, amount, received_at) {
            return Ok(events);
        }
        if amount_minor != expected_minor || self.captured > Decimal::ZERO {
            if let Some(events) =
                self.unapplied_payment(&payment_id, &intent_id, amount, received_at)
            {
                return Ok(events);
            }
        }
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
                if self.cancelled_by_expiry && self.net_paid() >= self.upfront() =>
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

/// Unapplied payments (API.md "Money"): a payment of another amount than
/// what is due is cash the platform holds for the customer, not yet the
/// order's. It is applied when an admin says so or when a later payment
/// completes what is due, or it is refunded.
impl Order {
    /// What the order still waits for: its total less what was captured
    /// (zero once it is confirmed).
    pub fn due(&self) -> Decimal {
        if self.status == OrderStatus::Placed {
            (self.upfront() - self.captured).max(Decimal::ZERO)
        } else {
            Decimal::ZERO
        }
    }

    /// Unapplied cash still held, per payment id.
    pub fn unapplied(&self) -> &std::collections::BTreeMap<String, Decimal> {
        &self.unapplied
    }

    /// The events of a payment that is not exactly what is due: `None` when
    /// it is (the caller captures it). A payment that, with the cash held
    /// unapplied, makes up what is due applies them all and confirms.
    fn unapplied_payment(
        &self,
        payment_id: &str,
        intent_id: &str,
        amount: Decimal,
        received_at: DateTime<Utc>,
    ) -> Option<Vec<E>> {
        let due = self.due();
        if self.status == OrderStatus::Placed && amount == due {
            return None;
        }
        let held: Decimal = self.unapplied.values().sum();
        if self.status == OrderStatus::Placed && due > Decimal::ZERO && held + amount == due {
            let mut events = vec![E::PaymentCaptured {
                payment_id: payment_id.to_owned(),
                intent_id: intent_id.to_owned(),
                amount,
            }];
            for (id, held) in &self.unapplied {
                events.push(E::UnappliedPaymentApplied {
                    payment_id: id.clone(),
                    amount: *held,
                });
            }
            events.push(E::OrderConfirmed {
                confirmed_at: received_at,
            });
            return Some(events);
        }
        if self.status != OrderStatus::Placed && amount == self.total() {
            // A second payment of the whole order: refunded as a duplicate.
            return None;
        }
        Some(vec![E::PaymentUnapplied {
            payment_id: payment_id.to_owned(),
            intent_id: intent_id.to_owned(),
            amount,
        }])
    }

    /// An admin applies unapplied cash to the order: all of it, at most
    /// what is due; the order is confirmed once nothing is due. On an order
    /// owing late fees it pays them, up to what is owed (`late_fees.rs`).
    pub(super) fn apply_payment(&self, payment_id: &str, at: DateTime<Utc>) -> Decision {
        let held = self.held_unapplied(payment_id)?;
        // A late fee owed takes what it is owed; the rest stays unapplied.
        if let Some(events) = self.apply_to_late_fees(payment_id, held, at) {
            return Ok(events);
        }
        if self.status != OrderStatus::Placed {
            return Err(DomainError::invalid_state(format!(
                "an order that is {} has nothing due; refund the payment instead",
                status_name(self.status)
            )));
        }
        let due = self.due();
        if held > due {
            return Err(DomainError::invalid_state(format!(
                "the payment {held} is above what the order has due, {due}; refund it instead"
            )));
        }
        let mut events = vec![E::UnappliedPaymentApplied {
            payment_id: payment_id.to_owned(),
            amount: held,
        }];
        if held == due {
            events.push(E::OrderConfirmed { confirmed_at: at });
        }
        Ok(events)
    }

    /// An admin gives unapplied cash back to the customer.
    pub(super) fn refund_payment(&self, payment_id: &str) -> Decision {
        let held = self.held_unapplied(payment_id)?;
        Ok(vec![E::UnappliedPaymentRefunded {
            payment_id: payment_id.to_owned(),
            amount: held,
        }])
    }

    fn held_unapplied(&self, payment_id: &str) -> Result<Decimal, DomainError> {
        match self.unapplied.get(payment_id) {
            None => Err(DomainError::not_found("unapplied payment")),
            Some(held) if *held <= Decimal::ZERO => Err(DomainError::invalid_state(
                "the payment was already applied or refunded",
            )),
            Some(held) => Ok(*held),
        }
    }
}
