//! The postings of refunds, disputes and unapplied payments (API.md
//! "Money"), order side and vendor side.
//!
//! Accounts they add:
//! - `unapplied`: cash received that is not (yet) an order's (credit-normal);
//! - `disputed`: cash the provider holds back while a dispute is open;
//! - `vendor_frozen:<id>`: a vendor's share of an open dispute;
//! - `vendor_receivable:<id>`: what a vendor owes after a refund its
//!   available balance could not cover (debit-normal, settled from its next
//!   credits);
//! - `vendor_reversals`: net taken back from (or given back to) vendors'
//!   available balances, between the order's event and the Vendor
//!   aggregate's (which decides how much is available and how much a
//!   receivable); zero once both are posted.
//!
//! Movements:
//! - refund: tax, the fee and the vendor's net reversed → cash; the net
//!   from the part's pending while it is not fulfilled, else through
//!   `vendor_reversals` from the vendor's available (and receivable);
//! - payment of another amount: cash ← unapplied; applied: unapplied →
//!   customer_funds; refunded: unapplied → cash;
//! - dispute opened: cash → disputed, each vendor's share pending or
//!   available → frozen; won: back; lost: disputed written off against the
//!   frozen shares, the fee and the tax.

use domain::{DisputeRelease, RefundPart};

use super::*;

pub const UNAPPLIED: &str = "unapplied";
pub const DISPUTED: &str = "disputed";
pub const VENDOR_REVERSALS: &str = "vendor_reversals";

pub fn vendor_frozen(vendor_id: Uuid) -> String {
    format!("vendor_frozen:{vendor_id}")
}

pub fn vendor_receivable(vendor_id: Uuid) -> String {
    format!("vendor_receivable:{vendor_id}")
}

/// A refund's entry: what it reverses of each part, against cash.
pub fn refund_lines(amount: Decimal, parts: &[RefundPart]) -> Vec<Line> {
    let mut lines = Vec::new();
    for p in parts {
        let v = Some(p.vendor_id);
        lines.push(Line::debit(TAX_PAYABLE, None, p.tax));
        lines.push(Line::debit(PLATFORM_FEES, v, p.fee_reversed));
        lines.push(Line::debit(vendor_pending(p.vendor_id), v, p.from_pending));
        lines.push(Line::debit(VENDOR_REVERSALS, v, p.from_available));
    }
    lines.push(Line::credit(CASH, None, amount));
    lines
}

/// A dispute's opening entry: the cash held back, and each vendor's share
/// frozen.
pub fn dispute_opened_lines(amount: Decimal, parts: &[RefundPart]) -> Vec<Line> {
    let mut lines = vec![
        Line::debit(DISPUTED, None, amount),
        Line::credit(CASH, None, amount),
    ];
    for p in parts {
        let v = Some(p.vendor_id);
        lines.push(Line::debit(vendor_pending(p.vendor_id), v, p.from_pending));
        lines.push(Line::debit(VENDOR_REVERSALS, v, p.from_available));
        lines.push(Line::credit(vendor_frozen(p.vendor_id), v, p.net_reversed));
    }
    lines
}

/// A won dispute: the cash back, the frozen shares released.
pub fn dispute_won_lines(amount: Decimal, releases: &[DisputeRelease]) -> Vec<Line> {
    let mut lines = vec![
        Line::debit(CASH, None, amount),
        Line::credit(DISPUTED, None, amount),
    ];
    for r in releases {
        let v = Some(r.vendor_id);
        lines.push(Line::debit(
            vendor_frozen(r.vendor_id),
            v,
            r.to_pending + r.to_available,
        ));
        lines.push(Line::credit(vendor_pending(r.vendor_id), v, r.to_pending));
        lines.push(Line::credit(VENDOR_REVERSALS, v, r.to_available));
    }
    lines
}

/// A lost dispute: the held-back cash written off against the frozen
/// shares, the fees and the tax.
pub fn dispute_lost_lines(amount: Decimal, parts: &[RefundPart]) -> Vec<Line> {
    let mut lines = Vec::new();
    for p in parts {
        let v = Some(p.vendor_id);
        lines.push(Line::debit(vendor_frozen(p.vendor_id), v, p.net_reversed));
        lines.push(Line::debit(PLATFORM_FEES, v, p.fee_reversed));
        lines.push(Line::debit(TAX_PAYABLE, None, p.tax));
    }
    lines.push(Line::credit(DISPUTED, None, amount));
    lines
}

/// The order events of this module; `false` for any other.
pub(super) fn apply_order_money(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    parsed: &OrderEvent,
) -> Result<bool, Error> {
    let order = Some(order_id);
    match parsed {
        OrderEvent::RefundRecorded { amount, parts, .. } => {
            journal.post(
                event,
                order,
                "refund_recorded",
                refund_lines(*amount, parts),
            )?;
            for p in parts {
                let e = journal.earnings(p.vendor_id);
                subtract(&mut e.pending, p.from_pending, event)?;
                add(&mut e.refunded, p.net_reversed, event)?;
            }
            // A later cancellation reverses only what the order still holds.
            let state = journal.order(event, order_id)?;
            for p in parts {
                state.refunded.entry(p.vendor_id).or_default().add_part(p);
            }
            state.changed = true;
        }
        OrderEvent::PaymentUnapplied { amount, .. } => journal.post(
            event,
            order,
            "payment_unapplied",
            vec![
                Line::debit(CASH, None, *amount),
                Line::credit(UNAPPLIED, None, *amount),
            ],
        )?,
        OrderEvent::UnappliedPaymentApplied { amount, .. } => journal.post(
            event,
            order,
            "unapplied_applied",
            vec![
                Line::debit(UNAPPLIED, None, *amount),
                Line::credit(CUSTOMER_FUNDS, None, *amount),
            ],
        )?,
        OrderEvent::UnappliedPaymentRefunded { amount, .. } => journal.post(
            event,
            order,
            "unapplied_refunded",
            vec![
                Line::debit(UNAPPLIED, None, *amount),
                Line::credit(CASH, None, *amount),
            ],
        )?,
        OrderEvent::DisputeOpened { amount, parts, .. } => {
            journal.post(
                event,
                order,
                "dispute_opened",
                dispute_opened_lines(*amount, parts),
            )?;
            for p in parts {
                let e = journal.earnings(p.vendor_id);
                subtract(&mut e.pending, p.from_pending, event)?;
                add(&mut e.frozen, p.net_reversed, event)?;
            }
        }
        OrderEvent::DisputeClosed {
            won: true,
            amount,
            releases,
            ..
        } => {
            journal.post(
                event,
                order,
                "dispute_won",
                dispute_won_lines(*amount, releases),
            )?;
            for r in releases {
                let e = journal.earnings(r.vendor_id);
                subtract(&mut e.frozen, r.to_pending + r.to_available, event)?;
                add(&mut e.pending, r.to_pending, event)?;
            }
        }
        OrderEvent::DisputeClosed {
            won: false,
            amount,
            parts,
            ..
        } => {
            journal.post(
                event,
                order,
                "dispute_lost",
                dispute_lost_lines(*amount, parts),
            )?;
            for p in parts {
                let e = journal.earnings(p.vendor_id);
                subtract(&mut e.frozen, p.net_reversed, event)?;
                add(&mut e.refunded, p.net_reversed, event)?;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The vendor events of this module; `false` for any other.
pub(super) fn apply_vendor_money(
    journal: &mut Journal,
    event: &EventEnvelope,
    vendor_id: Uuid,
    parsed: &VendorEvent,
) -> Result<bool, Error> {
    let v = Some(vendor_id);
    match parsed {
        VendorEvent::EarningsReversed {
            order_id,
            amount,
            from_available,
            receivable,
            ..
        } => {
            journal.post(
                event,
                Some(*order_id),
                "earnings_reversed",
                vec![
                    Line::debit(vendor_available(vendor_id), v, *from_available),
                    Line::debit(vendor_receivable(vendor_id), v, *receivable),
                    Line::credit(VENDOR_REVERSALS, v, *amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.available, *from_available, event)?;
            add(&mut e.receivable, *receivable, event)?;
        }
        VendorEvent::EarningsRestored {
            order_id,
            amount,
            receivable_settled,
            ..
        } => {
            let back = *amount - *receivable_settled;
            journal.post(
                event,
                Some(*order_id),
                "earnings_restored",
                vec![
                    Line::debit(VENDOR_REVERSALS, v, *amount),
                    Line::credit(vendor_receivable(vendor_id), v, *receivable_settled),
                    Line::credit(vendor_available(vendor_id), v, back),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.receivable, *receivable_settled, event)?;
            add(&mut e.available, back, event)?;
        }
        VendorEvent::ReceivableSettled {
            order_id, amount, ..
        } => {
            journal.post(
                event,
                *order_id,
                "receivable_settled",
                vec![
                    Line::debit(vendor_available(vendor_id), v, *amount),
                    Line::credit(vendor_receivable(vendor_id), v, *amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            subtract(&mut e.available, *amount, event)?;
            subtract(&mut e.receivable, *amount, event)?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}
