//! The postings of a lease's instalments (issue 15 item 3).
//!
//! - confirmed: the order is allocated whole as any order (tax, deposits,
//!   the vendor's pending net, the fee), but only its upfront part was
//!   paid; the instalments are owed: `customer_receivable → customer_funds`
//!   for their sum, just before the allocation;
//! - an instalment paid: `cash → customer_receivable`;
//! - written off (non-payment) or waived (an early termination's policy):
//!   while the vendor's part is pending, the share of tax, fee and the
//!   vendor's net is taken back (`tax_payable`, `platform_fees`,
//!   `vendor_pending:<id>` debited; gross, fees and pending earnings
//!   lowered); once the part was fulfilled the platform bears it
//!   (`instalment_write_offs`, debit-normal). Either way
//!   `customer_receivable` is credited, so it ends at what is still owed.

use domain::PricedOrder;

use super::*;

/// Instalments written off after the vendor was paid: the platform's loss.
pub const INSTALMENT_WRITE_OFFS: &str = "instalment_write_offs";

/// The receivable of a lease's instalments, when its order is confirmed.
pub fn scheduled_lines(priced: &PricedOrder) -> Vec<Line> {
    let owed = priced.scheduled();
    vec![
        Line::debit(CUSTOMER_RECEIVABLE, None, owed),
        Line::credit(CUSTOMER_FUNDS, None, owed),
    ]
}

/// What a write-off of `amount` takes back, against the receivable.
pub fn written_off_lines(amount: Decimal, parts: &[domain::RefundPart]) -> Vec<Line> {
    let mut lines = Vec::new();
    if parts.is_empty() {
        lines.push(Line::debit(INSTALMENT_WRITE_OFFS, None, amount));
    }
    for p in parts {
        let v = Some(p.vendor_id);
        lines.push(Line::debit(TAX_PAYABLE, None, p.tax));
        lines.push(Line::debit(PLATFORM_FEES, v, p.fee_reversed));
        lines.push(Line::debit(vendor_pending(p.vendor_id), v, p.from_pending));
        lines.push(Line::debit(
            super::reversals::VENDOR_REVERSALS,
            v,
            p.from_available,
        ));
    }
    lines.push(Line::credit(CUSTOMER_RECEIVABLE, None, amount));
    lines
}

pub(super) fn post_scheduled(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    priced: &PricedOrder,
) -> Result<(), Error> {
    if priced.scheduled().is_zero() {
        return Ok(());
    }
    journal.post(
        event,
        Some(order_id),
        "instalments_scheduled",
        scheduled_lines(priced),
    )
}

pub(super) fn apply(
    journal: &mut Journal,
    event: &EventEnvelope,
    order_id: Uuid,
    parsed: &OrderEvent,
) -> Result<(), Error> {
    let order = Some(order_id);
    match parsed {
        OrderEvent::InstalmentPaid { amount, .. } => journal.post(
            event,
            order,
            "instalment_paid",
            vec![
                Line::debit(CASH, None, *amount),
                Line::credit(CUSTOMER_RECEIVABLE, None, *amount),
            ],
        ),
        OrderEvent::InstalmentsWrittenOff { amount, parts, .. } => {
            journal.post(
                event,
                order,
                "instalments_written_off",
                written_off_lines(*amount, parts),
            )?;
            for p in parts {
                let e = journal.earnings(p.vendor_id);
                subtract(&mut e.gross, p.subtotal, event)?;
                subtract(&mut e.platform_fees, p.fee_reversed, event)?;
                subtract(&mut e.pending, p.from_pending, event)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().expect("a decimal")
    }

    #[test]
    fn a_write_off_balances_with_or_without_the_vendors_share() {
        let vendor_id = Uuid::from_u128(11);
        let part = domain::RefundPart {
            vendor_id,
            lines: Vec::new(),
            amount: dec("300.00"),
            subtotal: dec("272.73"),
            tax: dec("27.27"),
            fee_reversed: dec("27.27"),
            net_reversed: dec("245.46"),
            from_pending: dec("245.46"),
            from_available: dec("0.00"),
        };
        let shared = written_off_lines(dec("300.00"), &[part]);
        assert!(is_balanced(&shared));
        assert!(shared
            .iter()
            .any(|l| l.account == vendor_pending(vendor_id) && l.debit == dec("245.46")));
        let borne = written_off_lines(dec("300.00"), &[]);
        assert!(is_balanced(&borne));
        assert_eq!(borne[0].account, INSTALMENT_WRITE_OFFS);
    }
}
