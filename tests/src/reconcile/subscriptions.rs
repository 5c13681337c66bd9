//! Expecting the money of subscriptions (issue 15, "every invoice, payment,
//! proration and write-off is posted"), read from the raw payloads of the
//! Subscription's events, never from the ledger's code:
//!
//! - an invoice issued accrues its revenue: the customer owes `amount`
//!   (tax included), a downgrade credit it uses is spent, the price less
//!   that credit is revenue, the tax is payable;
//! - a downgrade (`PlanChanged` with a negative proration) turns revenue
//!   into a credit owed to the customer until an invoice uses it;
//! - an invoice paid: cash in, the receivable down; money that did not pay
//!   (`InvoicePaymentUnapplied`) is cash held for the customer, until
//!   refunded (`UnappliedPaymentRefunded`);
//! - an invoice voided while still open is written off: its tax is not
//!   owed, its net is the platform's loss.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use uuid::Uuid;

use super::expected::{field, Expected};
use super::*;

pub const SUBSCRIPTION_RECEIVABLE: &str = "subscription_receivable";
pub const SUBSCRIPTION_REVENUE: &str = "subscription_revenue";
pub const SUBSCRIPTION_CREDITS: &str = "subscription_credits";
pub const SUBSCRIPTION_WRITE_OFFS: &str = "subscription_write_offs";

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Open,
    Paid,
    Void,
}

#[derive(Clone, Debug)]
struct Invoice {
    amount: Decimal,
    tax: Decimal,
    state: State,
}

/// What the subscriptions did, summed over the log.
#[derive(Debug, Default)]
pub struct SubscriptionPaths {
    invoices: BTreeMap<Uuid, Invoice>,
    /// Σ (price − credit used) of every invoice: the revenue invoiced.
    invoiced_net: Decimal,
    /// Σ credit used by invoices.
    credit_used: Decimal,
    /// Σ downgrade credit granted.
    credit_granted: Decimal,
    /// Σ invoice tax, and the part of it voided unpaid.
    tax: Decimal,
    tax_voided: Decimal,
    paid: Decimal,
    unapplied: Decimal,
    unapplied_refunded: Decimal,
    /// Σ net of invoices voided unpaid.
    written_off: Decimal,
}

fn decimal_or_zero(value: &Value, name: &str) -> anyhow::Result<Decimal> {
    if value.get(name).is_none_or(Value::is_null) {
        Ok(Decimal::ZERO)
    } else {
        field(value, name)
    }
}

fn invoice_id(payload: &Value) -> anyhow::Result<Uuid> {
    payload["invoice_id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| anyhow::anyhow!("no invoice_id in {payload}"))
}

impl Expected {
    /// One event of a Subscription aggregate.
    pub(super) fn apply_subscription(
        &mut self,
        position: i64,
        event_type: &str,
        payload: &Value,
    ) -> anyhow::Result<()> {
        let zero = Decimal::ZERO;
        match event_type {
            "InvoiceIssued" => {
                let id = invoice_id(payload)?;
                let amount = field(payload, "amount")?;
                let credit = decimal_or_zero(payload, "credit_applied")?;
                let tax = decimal_or_zero(payload, "tax")?;
                let net = amount - tax + credit;
                let state = if amount.is_zero() {
                    State::Paid
                } else {
                    State::Open
                };
                if self
                    .subscriptions
                    .invoices
                    .insert(id, Invoice { amount, tax, state })
                    .is_some()
                {
                    self.problem(
                        "subscription invoice issued once",
                        id.to_string(),
                        "one InvoiceIssued".into(),
                        "two".into(),
                    );
                }
                let s = &mut self.subscriptions;
                s.invoiced_net += net;
                s.credit_used += credit;
                s.tax += tax;
                self.post(
                    position,
                    &[
                        (SUBSCRIPTION_RECEIVABLE.to_owned(), amount, zero),
                        (SUBSCRIPTION_CREDITS.to_owned(), credit, zero),
                        (SUBSCRIPTION_REVENUE.to_owned(), zero, net),
                        (TAX_PAYABLE.to_owned(), zero, tax),
                    ],
                );
            }
            "PlanChanged" => {
                let proration = field(payload, "proration")?;
                if proration < zero {
                    let credit = -proration;
                    self.subscriptions.credit_granted += credit;
                    self.post(
                        position,
                        &[
                            (SUBSCRIPTION_REVENUE.to_owned(), credit, zero),
                            (SUBSCRIPTION_CREDITS.to_owned(), zero, credit),
                        ],
                    );
                }
            }
            "InvoicePaid" => {
                let id = invoice_id(payload)?;
                let amount = field(payload, "amount")?;
                match self.subscriptions.invoices.get_mut(&id) {
                    Some(invoice) if invoice.state == State::Open => invoice.state = State::Paid,
                    other => {
                        let seen = format!("{:?}", other.map(|i| i.state));
                        self.problem(
                            "subscription invoice paid while open",
                            id.to_string(),
                            "an open invoice".into(),
                            seen,
                        );
                    }
                }
                self.subscriptions.paid += amount;
                self.post(
                    position,
                    &[
                        (CASH.to_owned(), amount, zero),
                        (SUBSCRIPTION_RECEIVABLE.to_owned(), zero, amount),
                    ],
                );
            }
            "InvoicePaymentUnapplied" => {
                let amount = field(payload, "amount")?;
                self.subscriptions.unapplied += amount;
                self.post(
                    position,
                    &[
                        (CASH.to_owned(), amount, zero),
                        (CUSTOMER_FUNDS.to_owned(), zero, amount),
                    ],
                );
            }
            "UnappliedPaymentRefunded" => {
                let amount = field(payload, "amount")?;
                self.subscriptions.unapplied_refunded += amount;
                self.post(
                    position,
                    &[
                        (CUSTOMER_FUNDS.to_owned(), amount, zero),
                        (CASH.to_owned(), zero, amount),
                    ],
                );
            }
            "InvoiceVoided" => {
                let id = invoice_id(payload)?;
                let Some(invoice) = self.subscriptions.invoices.get_mut(&id) else {
                    self.problem(
                        "subscription invoice voided after issue",
                        id.to_string(),
                        "an issued invoice".into(),
                        "none".into(),
                    );
                    return Ok(());
                };
                if invoice.state == State::Open {
                    invoice.state = State::Void;
                    let (owed, tax) = (invoice.amount, invoice.tax);
                    let s = &mut self.subscriptions;
                    s.tax_voided += tax;
                    s.written_off += owed - tax;
                    self.post(
                        position,
                        &[
                            (TAX_PAYABLE.to_owned(), tax, zero),
                            (SUBSCRIPTION_WRITE_OFFS.to_owned(), owed - tax, zero),
                            (SUBSCRIPTION_RECEIVABLE.to_owned(), zero, owed),
                        ],
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The balances subscriptions change, from what their invoices came to
    /// (`b` has the others already).
    pub(super) fn subscription_balances(&self, b: &mut BTreeMap<String, Decimal>) {
        let s = &self.subscriptions;
        if s.invoices.is_empty() && s.credit_granted.is_zero() {
            return;
        }
        let mut change = |account: &str, by: Decimal| {
            *b.entry(account.to_owned()).or_default() += by;
        };
        let open: Decimal = s
            .invoices
            .values()
            .filter(|i| i.state == State::Open)
            .map(|i| i.amount)
            .sum();
        change(SUBSCRIPTION_RECEIVABLE, open);
        change(SUBSCRIPTION_REVENUE, -(s.invoiced_net - s.credit_granted));
        change(SUBSCRIPTION_CREDITS, s.credit_used - s.credit_granted);
        if !s.written_off.is_zero() {
            change(SUBSCRIPTION_WRITE_OFFS, s.written_off);
        }
        change(TAX_PAYABLE, -(s.tax - s.tax_voided));
        change(CASH, s.paid + s.unapplied - s.unapplied_refunded);
        change(CUSTOMER_FUNDS, -(s.unapplied - s.unapplied_refunded));
    }

    /// Σ subscription invoices paid.
    pub fn subscription_invoices_paid(&self) -> Decimal {
        self.subscriptions.paid
    }

    /// The cash subscriptions brought in and kept: invoices paid, and money
    /// that did not pay an invoice less what of it was refunded.
    pub fn subscription_cash_in(&self) -> Decimal {
        let s = &self.subscriptions;
        s.paid + s.unapplied - s.unapplied_refunded
    }

    /// Money held for subscription customers: received, applied to no
    /// invoice and not refunded (it stays in customer funds until then).
    pub fn subscription_unapplied_held(&self) -> Decimal {
        let s = &self.subscriptions;
        s.unapplied - s.unapplied_refunded
    }
}
