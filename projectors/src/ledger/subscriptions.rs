//! What a subscription's events post (issue 15 "Money": every invoice,
//! payment, proration and write-off in the books). Invoices are accrued:
//! revenue is earned when a period is invoiced, and the customer owes it
//! until paid or written off.
//!
//! - invoice issued: `subscription_receivable` (what is due) and
//!   `subscription_credits` (downgrade credit taken off it) ←
//!   `subscription_revenue` (the price);
//! - downgrade (negative proration): `subscription_revenue` →
//!   `subscription_credits`, a liability until a later invoice uses it; an
//!   upgrade's proration is an invoice like any other;
//! - invoice paid: `cash` ← `subscription_receivable`;
//! - money received that did not pay (another amount, a second charge, a
//!   voided invoice): `cash` ← `customer_funds`, unapplied;
//! - invoice voided unpaid with its subscription: written off,
//!   `subscription_write_offs` ← `subscription_receivable`.
//!
//! `ledger_subscription_invoices` remembers each invoice's amount and
//! status, so a write-off posts exactly what is still owed.

use std::collections::HashMap;

use domain::SubscriptionEvent;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Journal, Line, CASH, CUSTOMER_FUNDS, TAX_PAYABLE};
use crate::{Error, EventEnvelope};

/// Invoiced and not yet paid or written off (debit-normal).
pub const SUBSCRIPTION_RECEIVABLE: &str = "subscription_receivable";
/// Earned by invoicing periods, less downgrade credits (credit-normal).
pub const SUBSCRIPTION_REVENUE: &str = "subscription_revenue";
/// Downgrade credit owed to customers until an invoice uses it.
pub const SUBSCRIPTION_CREDITS: &str = "subscription_credits";
/// Invoices voided unpaid (debit-normal, against revenue).
pub const SUBSCRIPTION_WRITE_OFFS: &str = "subscription_write_offs";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Open,
    Paid,
    Void,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Paid => "paid",
            Status::Void => "void",
        }
    }
}

struct Invoice {
    /// The invoice's tenant (written when it is inserted).
    tenant: String,
    amount: Decimal,
    tax: Decimal,
    status: Status,
    changed: bool,
}

/// The subscription invoices a batch names: `None` if not in the ledger.
#[derive(Default)]
pub(super) struct Invoices {
    known: HashMap<Uuid, Option<Invoice>>,
}

/// The invoice a subscription event is about, if any.
pub(super) fn invoice_of(event: &SubscriptionEvent) -> Option<Uuid> {
    use SubscriptionEvent as E;
    match event {
        E::InvoiceIssued { invoice_id, .. }
        | E::InvoicePaid { invoice_id, .. }
        | E::InvoiceVoided { invoice_id, .. } => Some(*invoice_id),
        _ => None,
    }
}

impl Invoices {
    pub(super) async fn load(tx: &mut PgConnection, ids: &[Uuid]) -> Result<Self, Error> {
        let mut known: HashMap<Uuid, Option<Invoice>> = ids.iter().map(|id| (*id, None)).collect();
        if ids.is_empty() {
            return Ok(Self { known });
        }
        let rows: Vec<(Uuid, Decimal, Decimal, String, String)> = sqlx::query_as(
            "SELECT invoice_id, amount, tax, status, tenant FROM ledger_subscription_invoices
              WHERE invoice_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
        for (invoice_id, amount, tax, status, tenant) in rows {
            let status = match status.as_str() {
                "paid" => Status::Paid,
                "void" => Status::Void,
                _ => Status::Open,
            };
            known.insert(
                invoice_id,
                Some(Invoice {
                    tenant,
                    amount,
                    tax,
                    status,
                    changed: false,
                }),
            );
        }
        Ok(Self { known })
    }

    pub(super) async fn write(self, tx: &mut PgConnection) -> Result<(), Error> {
        let (mut ids, mut amounts, mut taxes, mut statuses, mut tenants) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, invoice) in self.known {
            if let Some(invoice) = invoice.filter(|i| i.changed) {
                ids.push(id);
                amounts.push(invoice.amount);
                taxes.push(invoice.tax);
                statuses.push(invoice.status.as_str());
                tenants.push(invoice.tenant);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO ledger_subscription_invoices (invoice_id, amount, status, tax, tenant)
             SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::text[], $4::numeric[], $5::text[])
             ON CONFLICT (invoice_id) DO UPDATE SET status = EXCLUDED.status",
        )
        .bind(&ids)
        .bind(&amounts)
        .bind(&statuses)
        .bind(&taxes)
        .bind(&tenants)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    fn get(&mut self, event: &EventEnvelope, invoice_id: Uuid) -> Result<&mut Invoice, Error> {
        self.known
            .get_mut(&invoice_id)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::apply(event, "subscription invoice not in the ledger"))
    }
}

/// The lines of an issued invoice: pure, so tests check they balance.
/// `amount` is what is due, tax included; the revenue is net.
pub fn invoice_lines(amount: Decimal, credit_applied: Decimal, tax: Decimal) -> Vec<Line> {
    vec![
        Line::debit(SUBSCRIPTION_RECEIVABLE, None, amount),
        Line::debit(SUBSCRIPTION_CREDITS, None, credit_applied),
        Line::credit(SUBSCRIPTION_REVENUE, None, amount - tax + credit_applied),
        Line::credit(TAX_PAYABLE, None, tax),
    ]
}

pub(super) fn apply_subscription(
    journal: &mut Journal,
    event: &EventEnvelope,
    parsed: SubscriptionEvent,
) -> Result<(), Error> {
    use SubscriptionEvent as E;
    match parsed {
        E::InvoiceIssued {
            invoice_id,
            amount,
            credit_applied,
            tax,
            ..
        } => {
            let slot = journal
                .subscription_invoices
                .known
                .entry(invoice_id)
                .or_insert(None);
            if slot.is_some() {
                return Err(Error::apply(
                    event,
                    "subscription invoice already in the ledger",
                ));
            }
            // An invoice of nothing (all of it credited) is paid as issued.
            let status = if amount.is_zero() {
                Status::Paid
            } else {
                Status::Open
            };
            *slot = Some(Invoice {
                tenant: event.tenant.clone(),
                amount,
                tax,
                status,
                changed: true,
            });
            journal.post(
                event,
                None,
                "subscription_invoice",
                invoice_lines(amount, credit_applied, tax),
            )?;
        }
        E::PlanChanged { proration, .. } if proration < Decimal::ZERO => {
            let credit = -proration;
            journal.post(
                event,
                None,
                "subscription_credit",
                vec![
                    Line::debit(SUBSCRIPTION_REVENUE, None, credit),
                    Line::credit(SUBSCRIPTION_CREDITS, None, credit),
                ],
            )?;
        }
        E::InvoicePaid {
            invoice_id, amount, ..
        } => {
            let invoice = journal.subscription_invoices.get(event, invoice_id)?;
            if invoice.status != Status::Open {
                return Err(Error::apply(event, "a subscription invoice paid twice"));
            }
            invoice.status = Status::Paid;
            invoice.changed = true;
            journal.post(
                event,
                None,
                "subscription_payment",
                vec![
                    Line::debit(CASH, None, amount),
                    Line::credit(SUBSCRIPTION_RECEIVABLE, None, amount),
                ],
            )?;
        }
        E::InvoicePaymentUnapplied { amount, .. } => {
            journal.post(
                event,
                None,
                "subscription_unapplied",
                vec![
                    Line::debit(CASH, None, amount),
                    Line::credit(CUSTOMER_FUNDS, None, amount),
                ],
            )?;
        }
        E::UnappliedPaymentRefunded { amount, .. } => {
            journal.post(
                event,
                None,
                "subscription_unapplied_refunded",
                vec![
                    Line::debit(CUSTOMER_FUNDS, None, amount),
                    Line::credit(CASH, None, amount),
                ],
            )?;
        }
        E::InvoiceVoided { invoice_id, .. } => {
            let invoice = journal.subscription_invoices.get(event, invoice_id)?;
            if invoice.status == Status::Open {
                invoice.status = Status::Void;
                invoice.changed = true;
                let (owed, tax) = (invoice.amount, invoice.tax);
                // The tax of what is never paid is not owed: reversed; the
                // net is written off.
                journal.post(
                    event,
                    None,
                    "subscription_write_off",
                    vec![
                        Line::debit(TAX_PAYABLE, None, tax),
                        Line::debit(SUBSCRIPTION_WRITE_OFFS, None, owed - tax),
                        Line::credit(SUBSCRIPTION_RECEIVABLE, None, owed),
                    ],
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}
