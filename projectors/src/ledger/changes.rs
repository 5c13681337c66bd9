//! What booking changes post (API.md "Rentals"):
//! - a confirmed extension or reschedule: its price and tax moved between
//!   the customer's funds and tax, the vendor's pending net and the
//!   platform's fee (either way: a cheaper one moves them back, its refund
//!   following as a `RefundIssued`); the order's priced state follows, so a
//!   later cancellation reverses what the order then is;
//! - a cancellation under a policy: after the whole allocation is
//!   reversed, the kept part is allocated again, customer funds → tax, the
//!   vendor's pending net and the platform's fee (the Vendor then makes
//!   that net available, as for a fulfilled part).

use domain::{Adjustment, VendorSplit};

use super::*;

/// A credit of `amount`, or a debit of its opposite when negative.
fn credit_signed(account: impl Into<String>, vendor_id: Option<Uuid>, amount: Decimal) -> Line {
    if amount < Decimal::ZERO {
        Line::debit(account, vendor_id, -amount)
    } else {
        Line::credit(account, vendor_id, amount)
    }
}

/// The entry of a confirmed adjustment. Pure, so its balance is tested.
pub fn adjustment_lines(a: &Adjustment) -> Vec<Line> {
    let v = Some(a.vendor_id);
    vec![
        credit_signed(CUSTOMER_FUNDS, None, -a.amount_due),
        credit_signed(TAX_PAYABLE, None, a.tax),
        credit_signed(vendor_pending(a.vendor_id), v, a.net),
        credit_signed(PLATFORM_FEES, v, a.platform_fee),
    ]
}

/// The entry of what cancellation policies kept. Pure, so its balance is tested.
pub fn kept_lines(kept_tax: Decimal, vendors: &[VendorSplit]) -> Vec<Line> {
    let total = vendors.iter().map(|v| v.subtotal).sum::<Decimal>() + kept_tax;
    let mut lines = vec![
        Line::debit(CUSTOMER_FUNDS, None, total),
        Line::credit(TAX_PAYABLE, None, kept_tax),
    ];
    for split in vendors {
        let v = Some(split.vendor_id);
        lines.push(Line::credit(vendor_pending(split.vendor_id), v, split.net));
        lines.push(Line::credit(PLATFORM_FEES, v, split.platform_fee));
    }
    lines
}

pub(super) fn apply_adjustment(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    a: &Adjustment,
) -> Result<(), Error> {
    let state = journal.order(event, order_id)?;
    state.priced.apply_adjustment(a);
    state.changed = true;
    if !state.allocated {
        // Allocated later, as the order then stands.
        return Ok(());
    }
    journal.post(event, Some(order_id), "booking_change", adjustment_lines(a))?;
    let e = journal.earnings(a.vendor_id);
    add(&mut e.gross, a.subtotal, event)?;
    add(&mut e.platform_fees, a.platform_fee, event)?;
    add(&mut e.pending, a.net, event)?;
    Ok(())
}

pub(super) fn apply_kept(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    kept_tax: Decimal,
    vendors: &[VendorSplit],
) -> Result<(), Error> {
    journal.post(
        event,
        Some(order_id),
        "cancellation_kept",
        kept_lines(kept_tax, vendors),
    )?;
    for split in vendors {
        let e = journal.earnings(split.vendor_id);
        add(&mut e.gross, split.subtotal, event)?;
        add(&mut e.platform_fees, split.platform_fee, event)?;
        add(&mut e.pending, split.net, event)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::AdjustmentKind;

    fn dec(text: &str) -> Decimal {
        text.parse().expect("a decimal")
    }

    fn adjustment(subtotal: Decimal, tax: Decimal, fee: Decimal) -> Adjustment {
        Adjustment {
            adjustment_id: Uuid::nil(),
            line_id: Uuid::nil(),
            vendor_id: Uuid::nil(),
            kind: AdjustmentKind::Reschedule,
            start: chrono::DateTime::UNIX_EPOCH,
            end: chrono::DateTime::UNIX_EPOCH,
            billable_units: 1,
            unit_price: dec("10.00"),
            subtotal,
            tax,
            platform_fee: fee,
            net: subtotal - fee,
            amount_due: subtotal + tax,
            hold_expires_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_extension_and_a_refunded_reschedule_post_balanced_entries() {
        assert!(is_balanced(&adjustment_lines(&adjustment(
            dec("20.00"),
            dec("1.60"),
            dec("2.00")
        ))));
        assert!(is_balanced(&adjustment_lines(&adjustment(
            dec("-15.00"),
            dec("-1.20"),
            dec("-1.50")
        ))));
    }

    #[test]
    fn what_a_cancellation_policy_kept_posts_a_balanced_entry() {
        let split = VendorSplit {
            vendor_id: Uuid::nil(),
            subtotal: dec("25.00"),
            platform_fee: dec("2.50"),
            net: dec("22.50"),
            fee_rate: None,
        };
        assert!(is_balanced(&kept_lines(dec("2.00"), &[split])));
    }
}
