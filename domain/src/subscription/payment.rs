//! A payment provider's event about a subscription invoice (API.md: "A
//! payment webhook with `metadata.invoice_id` pays that invoice").
//!
//! Recorded once per provider event id, whatever it says. A success of
//! exactly the open invoice's amount, in the ledger's currency, pays it; any
//! other money received stays unapplied cash (API.md "Money": "a payment of
//! another amount than due is posted as `unapplied` cash") so the books hold
//! what the provider captured and an admin can return it. A failure counts
//! as one of the invoice's failed attempts and so feeds dunning.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decide::Decision;
use super::{InvoiceStatus, Subscription, SubscriptionEvent};
use crate::error::DomainError;
use crate::money::{from_minor_units, is_valid_order_amount};

/// What the provider reports about a charge of an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoicePaymentOutcome {
    Succeeded,
    Failed { reason: String },
}

/// Why money received for an invoice did not pay it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnappliedReason {
    /// Another amount than the invoice's.
    AmountMismatch,
    /// The invoice was paid already (a second charge).
    AlreadyPaid,
    /// The invoice was voided with its cancelled subscription.
    InvoiceVoided,
    /// Another currency than the ledger's: recorded, nothing booked.
    CurrencyMismatch,
}

impl UnappliedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnappliedReason::AmountMismatch => "amount_mismatch",
            UnappliedReason::AlreadyPaid => "already_paid",
            UnappliedReason::InvoiceVoided => "invoice_voided",
            UnappliedReason::CurrencyMismatch => "currency_mismatch",
        }
    }
}

impl Subscription {
    /// An admin gives back unapplied cash, all of it, once: 404 for a
    /// payment this subscription holds nothing under, 409 once refunded.
    pub(super) fn refund_unapplied(&self, payment_ref: String, at: DateTime<Utc>) -> Decision {
        let cash = self
            .unapplied
            .get(&payment_ref)
            .ok_or_else(|| DomainError::not_found("unapplied payment"))?;
        if cash.refunded {
            return Err(DomainError::invalid_state(
                "the unapplied payment was already refunded",
            ));
        }
        Ok(vec![SubscriptionEvent::UnappliedPaymentRefunded {
            invoice_id: cash.invoice_id,
            payment_ref,
            amount: cash.amount,
            refunded_at: at,
        }])
    }

    /// `money`: the amount in minor units, its currency, the ledger's.
    pub(super) fn receive_payment(
        &self,
        invoice_id: Uuid,
        payment_ref: String,
        (amount_minor, currency, ledger_currency): (i64, String, String),
        outcome: InvoicePaymentOutcome,
        at: DateTime<Utc>,
    ) -> Decision {
        let invoice = self.known_invoice(invoice_id)?;
        if self.payments_seen.contains(&payment_ref) {
            return Ok(vec![]);
        }
        let reason = match outcome {
            InvoicePaymentOutcome::Failed { reason } => {
                return self.record_failure(invoice_id, reason, Some(payment_ref), at);
            }
            InvoicePaymentOutcome::Succeeded => {
                let amount = from_minor_units(amount_minor);
                let bookable = amount > Decimal::ZERO && is_valid_order_amount(amount);
                if !currency.trim().eq_ignore_ascii_case(&ledger_currency) {
                    UnappliedReason::CurrencyMismatch
                } else if !bookable {
                    UnappliedReason::AmountMismatch
                } else {
                    match invoice.status {
                        InvoiceStatus::Void => UnappliedReason::InvoiceVoided,
                        InvoiceStatus::Paid => UnappliedReason::AlreadyPaid,
                        InvoiceStatus::Open if amount != invoice.amount => {
                            UnappliedReason::AmountMismatch
                        }
                        InvoiceStatus::Open => {
                            return self.record_payment(invoice_id, amount, payment_ref, at);
                        }
                    }
                }
            }
        };
        // Only money the books can hold is booked: another currency, or an
        // amount no invoice could have, is recorded at zero.
        let received = from_minor_units(amount_minor);
        let amount = match reason {
            UnappliedReason::CurrencyMismatch => Decimal::new(0, 2),
            _ if received <= Decimal::ZERO || !is_valid_order_amount(received) => {
                Decimal::new(0, 2)
            }
            _ => received,
        };
        Ok(vec![SubscriptionEvent::InvoicePaymentUnapplied {
            invoice_id,
            payment_ref,
            amount,
            received_minor: amount_minor,
            currency,
            reason,
            received_at: at,
        }])
    }
}
