//! The ledger proper: every money movement as balanced double-entry lines
//! (`ledger_postings`), running account totals (`ledger_accounts`) and
//! per-vendor earnings (`ledger_vendor_earnings`).
//!
//! Accounts (a line's balance is debit − credit):
//! - `cash`: money at the payment provider (debit-normal);
//! - `customer_funds`: payments not (or no longer) allocated to an order;
//! - `tax_payable`, `deposits_held`, `platform_fees`;
//! - `vendor_pending:<id>`: a vendor's net, owed once its part is fulfilled;
//! - `vendor_available:<id>`: owed and payable now.
//!
//! Movements:
//! - payment captured: cash ← customer_funds;
//! - order confirmed: customer_funds → tax, deposits, each vendor's pending
//!   net and the platform's fee; a cancellation after payment reverses it;
//! - refund: customer_funds → cash;
//! - deposit returned: deposits_held → cash; damage withheld:
//!   deposits_held → the vendor's available;
//! - earnings made available: vendor pending → available;
//! - payout: vendor available → cash.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{OrderEvent, PricedOrder, VendorEvent};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::runner::Consumer;
use crate::Error;

pub const NAME: &str = "ledger";

pub const CASH: &str = "cash";
pub const CUSTOMER_FUNDS: &str = "customer_funds";
pub const TAX_PAYABLE: &str = "tax_payable";
pub const DEPOSITS_HELD: &str = "deposits_held";
pub const PLATFORM_FEES: &str = "platform_fees";

pub fn vendor_pending(vendor_id: Uuid) -> String {
    format!("vendor_pending:{vendor_id}")
}

pub fn vendor_available(vendor_id: Uuid) -> String {
    format!("vendor_available:{vendor_id}")
}

/// One line of a journal entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub account: String,
    pub vendor_id: Option<Uuid>,
    pub debit: Decimal,
    pub credit: Decimal,
}

impl Line {
    fn debit(account: impl Into<String>, vendor_id: Option<Uuid>, amount: Decimal) -> Self {
        Self {
            account: account.into(),
            vendor_id,
            debit: amount,
            credit: Decimal::ZERO,
        }
    }

    fn credit(account: impl Into<String>, vendor_id: Option<Uuid>, amount: Decimal) -> Self {
        Self {
            account: account.into(),
            vendor_id,
            debit: Decimal::ZERO,
            credit: amount,
        }
    }
}

/// The lines that allocate a confirmed order's payment. Pure, so the
/// balance of every entry is checked by unit tests.
pub fn allocation(priced: &PricedOrder) -> Vec<Line> {
    let mut lines = vec![Line::debit(CUSTOMER_FUNDS, None, priced.total)];
    lines.push(Line::credit(TAX_PAYABLE, None, priced.tax));
    lines.push(Line::credit(DEPOSITS_HELD, None, priced.deposit));
    for split in &priced.vendors {
        let v = Some(split.vendor_id);
        lines.push(Line::credit(vendor_pending(split.vendor_id), v, split.net));
        lines.push(Line::credit(PLATFORM_FEES, v, split.platform_fee));
    }
    lines
}

/// The reverse of [`allocation`].
pub fn reversal(priced: &PricedOrder) -> Vec<Line> {
    allocation(priced)
        .into_iter()
        .map(|l| Line {
            debit: l.credit,
            credit: l.debit,
            ..l
        })
        .collect()
}

pub fn is_balanced(lines: &[Line]) -> bool {
    let debit: Decimal = lines.iter().map(|l| l.debit).sum();
    let credit: Decimal = lines.iter().map(|l| l.credit).sum();
    debit == credit
}

pub struct Ledger;

impl Consumer for Ledger {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "ledger_postings",
            "ledger_accounts",
            "ledger_orders",
            "ledger_vendor_earnings",
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let mut journal = Journal::default();
            for event in events {
                match event.aggregate_type.as_str() {
                    "Order" => apply_order(tx, &mut journal, event).await?,
                    "Vendor" => apply_vendor(tx, &mut journal, event).await?,
                    _ => {}
                }
            }
            journal.write(tx).await
        })
    }
}

/// Entries of a batch, written at its end in one go.
#[derive(Default)]
struct Journal {
    entries: Vec<Entry>,
    earnings: BTreeMap<Uuid, Earnings>,
}

struct Entry {
    position: i64,
    order_id: Option<Uuid>,
    kind: &'static str,
    at: DateTime<Utc>,
    lines: Vec<Line>,
}

/// Changes to a vendor's earnings in this batch.
#[derive(Default)]
struct Earnings {
    gross: Decimal,
    platform_fees: Decimal,
    pending: Decimal,
    available: Decimal,
    paid_out: Decimal,
    damage_credits: Decimal,
}

impl Journal {
    fn post(
        &mut self,
        event: &EventEnvelope,
        order_id: Option<Uuid>,
        kind: &'static str,
        lines: Vec<Line>,
    ) -> Result<(), Error> {
        let lines: Vec<Line> = lines
            .into_iter()
            .filter(|l| !l.debit.is_zero() || !l.credit.is_zero())
            .collect();
        if !is_balanced(&lines) {
            return Err(Error::apply(event, "unbalanced journal entry"));
        }
        if !lines.is_empty() {
            self.entries.push(Entry {
                position: event.position,
                order_id,
                kind,
                at: event.recorded_at,
                lines,
            });
        }
        Ok(())
    }

    fn earnings(&mut self, vendor_id: Uuid) -> &mut Earnings {
        self.earnings.entry(vendor_id).or_default()
    }

    async fn write(self, tx: &mut PgConnection) -> Result<(), Error> {
        let mut totals: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
        let (mut positions, mut accounts, mut vendors, mut orders, mut kinds) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut debits, mut credits, mut ats) = (Vec::new(), Vec::new(), Vec::new());
        for entry in &self.entries {
            for line in &entry.lines {
                positions.push(entry.position);
                accounts.push(line.account.clone());
                vendors.push(line.vendor_id);
                orders.push(entry.order_id);
                kinds.push(entry.kind);
                debits.push(line.debit);
                credits.push(line.credit);
                ats.push(entry.at);
                let total = totals.entry(line.account.clone()).or_default();
                total.0 += line.debit;
                total.1 += line.credit;
            }
        }
        if !positions.is_empty() {
            sqlx::query(
                "INSERT INTO ledger_postings
                     (position, account, vendor_id, order_id, kind, debit, credit, recorded_at)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::uuid[], $5::text[],
                                      $6::numeric[], $7::numeric[], $8::timestamptz[])",
            )
            .bind(&positions)
            .bind(&accounts)
            .bind(&vendors)
            .bind(&orders)
            .bind(&kinds)
            .bind(&debits)
            .bind(&credits)
            .bind(&ats)
            .execute(&mut *tx)
            .await?;
        }
        for (account, (debit, credit)) in totals {
            sqlx::query(
                "INSERT INTO ledger_accounts (account, debit, credit) VALUES ($1, $2, $3)
                 ON CONFLICT (account) DO UPDATE
                    SET debit = ledger_accounts.debit + EXCLUDED.debit,
                        credit = ledger_accounts.credit + EXCLUDED.credit",
            )
            .bind(account)
            .bind(debit)
            .bind(credit)
            .execute(&mut *tx)
            .await?;
        }
        for (vendor_id, e) in self.earnings {
            sqlx::query(
                "INSERT INTO ledger_vendor_earnings
                     (vendor_id, gross, platform_fees, pending, available, paid_out, damage_credits)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (vendor_id) DO UPDATE SET
                     gross = ledger_vendor_earnings.gross + EXCLUDED.gross,
                     platform_fees = ledger_vendor_earnings.platform_fees + EXCLUDED.platform_fees,
                     pending = ledger_vendor_earnings.pending + EXCLUDED.pending,
                     available = ledger_vendor_earnings.available + EXCLUDED.available,
                     paid_out = ledger_vendor_earnings.paid_out + EXCLUDED.paid_out,
                     damage_credits = ledger_vendor_earnings.damage_credits + EXCLUDED.damage_credits",
            )
            .bind(vendor_id)
            .bind(e.gross)
            .bind(e.platform_fees)
            .bind(e.pending)
            .bind(e.available)
            .bind(e.paid_out)
            .bind(e.damage_credits)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

fn parse_uuid(event: &EventEnvelope) -> Result<Uuid, Error> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))
}

async fn order_state(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    order_id: Uuid,
) -> Result<(PricedOrder, bool), Error> {
    let row: Option<(serde_json::Value, bool)> = sqlx::query_as(
        "SELECT priced, allocated FROM ledger_orders WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (priced, allocated) = row.ok_or_else(|| Error::apply(event, "order not in the ledger"))?;
    let priced = serde_json::from_value(priced).map_err(|e| Error::apply(event, e))?;
    Ok((priced, allocated))
}

async fn set_allocated(
    tx: &mut PgConnection,
    order_id: Uuid,
    allocated: bool,
) -> Result<(), Error> {
    sqlx::query("UPDATE ledger_orders SET allocated = $2 WHERE order_id = $1")
        .bind(order_id)
        .bind(allocated)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn apply_order(
    tx: &mut PgConnection,
    journal: &mut Journal,
    event: &EventEnvelope,
) -> Result<(), Error> {
    let order_id = parse_uuid(event)?;
    let parsed: OrderEvent = crate::decode(event)?;
    let order = Some(order_id);
    match parsed {
        OrderEvent::OrderPlaced { priced, .. } => {
            let priced = serde_json::to_value(priced).map_err(|e| Error::apply(event, e))?;
            sqlx::query("INSERT INTO ledger_orders (order_id, priced) VALUES ($1, $2)")
                .bind(order_id)
                .bind(priced)
                .execute(&mut *tx)
                .await?;
        }
        OrderEvent::PaymentCaptured { amount, .. } => {
            journal.post(
                event,
                order,
                "payment_captured",
                vec![
                    Line::debit(CASH, None, amount),
                    Line::credit(CUSTOMER_FUNDS, None, amount),
                ],
            )?;
        }
        OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
            let (priced, allocated) = order_state(tx, event, order_id).await?;
            if !allocated {
                journal.post(event, order, "order_confirmed", allocation(&priced))?;
                for split in &priced.vendors {
                    let e = journal.earnings(split.vendor_id);
                    e.gross += split.subtotal;
                    e.platform_fees += split.platform_fee;
                    e.pending += split.net;
                }
                set_allocated(tx, order_id, true).await?;
            }
        }
        OrderEvent::OrderCancelled { .. } => {
            let (priced, allocated) = order_state(tx, event, order_id).await?;
            if allocated {
                journal.post(event, order, "order_cancelled", reversal(&priced))?;
                for split in &priced.vendors {
                    let e = journal.earnings(split.vendor_id);
                    e.gross -= split.subtotal;
                    e.platform_fees -= split.platform_fee;
                    e.pending -= split.net;
                }
                set_allocated(tx, order_id, false).await?;
            }
        }
        OrderEvent::RefundIssued { amount, .. } => {
            journal.post(
                event,
                order,
                "refund",
                vec![
                    Line::debit(CUSTOMER_FUNDS, None, amount),
                    Line::credit(CASH, None, amount),
                ],
            )?;
        }
        OrderEvent::LineReturned {
            deposit_refunded, ..
        } => {
            journal.post(
                event,
                order,
                "deposit_refund",
                vec![
                    Line::debit(DEPOSITS_HELD, None, deposit_refunded),
                    Line::credit(CASH, None, deposit_refunded),
                ],
            )?;
        }
        _ => {}
    }
    Ok(())
}

async fn apply_vendor(
    tx: &mut PgConnection,
    journal: &mut Journal,
    event: &EventEnvelope,
) -> Result<(), Error> {
    let vendor_id = parse_uuid(event)?;
    let parsed: VendorEvent = crate::decode(event)?;
    let v = Some(vendor_id);
    match parsed {
        VendorEvent::VendorRegistered { .. } => {
            sqlx::query(
                "INSERT INTO ledger_vendor_earnings (vendor_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(vendor_id)
            .execute(&mut *tx)
            .await?;
        }
        VendorEvent::EarningsMadeAvailable { order_id, amount } => {
            journal.post(
                event,
                Some(order_id),
                "earnings_available",
                vec![
                    Line::debit(vendor_pending(vendor_id), v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            e.pending -= amount;
            e.available += amount;
        }
        VendorEvent::DamageCredited {
            order_id, amount, ..
        } => {
            journal.post(
                event,
                Some(order_id),
                "damage_credit",
                vec![
                    Line::debit(DEPOSITS_HELD, v, amount),
                    Line::credit(vendor_available(vendor_id), v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            e.available += amount;
            e.damage_credits += amount;
        }
        VendorEvent::PayoutRecorded { amount, .. } => {
            journal.post(
                event,
                None,
                "payout",
                vec![
                    Line::debit(vendor_available(vendor_id), v, amount),
                    Line::credit(CASH, v, amount),
                ],
            )?;
            let e = journal.earnings(vendor_id);
            e.available -= amount;
            e.paid_out += amount;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{price_order, LineInput, LineTerms, Rates};

    fn order() -> PricedOrder {
        let line = |vendor: u128, price: i64| LineInput {
            line_id: Uuid::from_u128(vendor * 10),
            hold_id: Uuid::from_u128(vendor * 100),
            listing_id: Uuid::from_u128(vendor * 1000),
            vendor_id: Uuid::from_u128(vendor),
            terms: LineTerms::Sale {
                unit_price: Decimal::new(price, 2),
            },
            quantity: 3,
        };
        price_order(
            &[line(1, 3333), line(2, 1999), line(1, 17)],
            Rates {
                tax_rate: Decimal::new(825, 4),
                platform_fee_rate: Decimal::new(125, 3),
            },
        )
    }

    #[test]
    fn the_allocation_of_a_confirmed_order_is_balanced() {
        assert!(is_balanced(&allocation(&order())));
    }

    #[test]
    fn a_reversal_undoes_the_allocation_line_by_line() {
        let priced = order();
        let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
        for line in allocation(&priced).into_iter().chain(reversal(&priced)) {
            *sums.entry(line.account).or_default() += line.debit - line.credit;
        }
        assert!(sums.values().all(Decimal::is_zero), "{sums:?}");
        assert!(is_balanced(&reversal(&priced)));
    }

    #[test]
    fn an_unbalanced_entry_is_detected() {
        let mut lines = allocation(&order());
        lines[0].debit += Decimal::new(1, 2);
        assert!(!is_balanced(&lines));
    }
}
