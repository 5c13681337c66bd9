//! The ledger proper: every money movement as balanced double-entry lines
//! (`ledger_postings`), running account totals (`ledger_accounts`) and
//! per-vendor earnings (`ledger_vendor_earnings`).
//!
//! Accounts (a line's balance is debit − credit):
//! - `cash`: money at the payment provider (debit-normal);
//! - `customer_receivable`: late fees owed by customers (debit-normal);
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
//! - late return (API.md "Rentals"): the late fee taken from the deposit,
//!   deposits_held → the vendor's available (Vendor `LateFeeCredited`, no
//!   platform fee, as damage); the rest owed, customer_receivable → the
//!   vendor's pending until collected: a late fee paid (Order
//!   `LateFeePaid`), cash (or unapplied cash applied) → customer_receivable,
//!   and the vendor's pending → available (Vendor `LateFeeCollected`);
//! - earnings made available: vendor pending → available;
//! - payout: vendor available → cash;
//! - refunds, disputes and unapplied payments: see `reversals`.
//! - payout requested: vendor available → `payouts_in_transit`; paid:
//!   in transit → cash; failed: in transit → vendor available (`payouts`).
//! - subscription invoices, payments, downgrade credits and write-offs:
//!   see `subscriptions`.
//! - a lease's instalments (scheduled, paid, written off): see
//!   `instalments`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::{OrderEvent, PricedOrder, VendorEvent};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Consumer;
use crate::Error;
use entries::{apply_order, apply_vendor};

pub const NAME: &str = "ledger";

pub const CASH: &str = "cash";
pub const CUSTOMER_FUNDS: &str = "customer_funds";
pub const TAX_PAYABLE: &str = "tax_payable";
pub const DEPOSITS_HELD: &str = "deposits_held";
pub const PLATFORM_FEES: &str = "platform_fees";
/// Late fees a deposit did not cover, owed by customers (debit-normal).
pub const CUSTOMER_RECEIVABLE: &str = "customer_receivable";

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

/// The entry's debits and credits; `None` if a sum overflows.
pub fn totals(lines: &[Line]) -> Option<(Decimal, Decimal)> {
    lines
        .iter()
        .try_fold((Decimal::ZERO, Decimal::ZERO), |(debit, credit), l| {
            Some((debit.checked_add(l.debit)?, credit.checked_add(l.credit)?))
        })
}

/// Debits equal credits (an entry whose sums overflow is not balanced).
pub fn is_balanced(lines: &[Line]) -> bool {
    totals(lines).is_some_and(|(debit, credit)| debit == credit)
}

/// `slot + amount`, or the event's error when it overflows.
fn add(slot: &mut Decimal, amount: Decimal, event: &EventEnvelope) -> Result<(), Error> {
    *slot = slot
        .checked_add(amount)
        .ok_or_else(|| Error::apply(event, format!("{slot} + {amount} overflows")))?;
    Ok(())
}

/// `slot - amount`, or the event's error when it overflows.
fn subtract(slot: &mut Decimal, amount: Decimal, event: &EventEnvelope) -> Result<(), Error> {
    *slot = slot
        .checked_sub(amount)
        .ok_or_else(|| Error::apply(event, format!("{slot} - {amount} overflows")))?;
    Ok(())
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
            "ledger_payouts",
            "ledger_subscription_invoices",
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // Decode, read the state of every order the batch names in one
            // statement, fold in memory, write back set-wise.
            let mut decoded = Vec::new();
            let (mut order_ids, mut invoice_ids) = (Vec::new(), Vec::new());
            for event in events {
                let wanted = [Aggregate::Order, Aggregate::Vendor, Aggregate::Subscription];
                if !event.aggregate().is_some_and(|a| wanted.contains(&a)) {
                    continue;
                }
                let id = parse_uuid(event)?;
                let change = match crate::decode(event, &wanted)? {
                    Some(Event::Order(order)) => {
                        order_ids.push(id);
                        Change::Order(order)
                    }
                    Some(Event::Vendor(vendor)) => Change::Vendor(vendor),
                    Some(Event::Subscription(change)) => {
                        invoice_ids.extend(subscriptions::invoice_of(&change));
                        Change::Subscription(change)
                    }
                    _ => continue,
                };
                decoded.push((event, id, change));
            }
            if decoded.is_empty() {
                return Ok(());
            }
            order_ids.sort_unstable();
            order_ids.dedup();
            invoice_ids.sort_unstable();
            invoice_ids.dedup();
            let mut journal = Journal {
                orders: load_orders(tx, &order_ids).await?,
                subscription_invoices: subscriptions::Invoices::load(tx, &invoice_ids).await?,
                ..Journal::default()
            };
            for (event, id, change) in decoded {
                journal.apply(event, id, change)?;
            }
            journal.write(tx).await
        })
    }
}

enum Change {
    Order(OrderEvent),
    Vendor(VendorEvent),
    Subscription(domain::SubscriptionEvent),
}

/// What the ledger remembers of an order (`ledger_orders`).
struct OrderState {
    priced: PricedOrder,
    allocated: bool,
    /// What refunds took of each vendor's part.
    refunded: BTreeMap<Uuid, domain::Taken>,
    /// Placed in this batch (inserted), else only `allocated` may change.
    placed: bool,
    /// The order's tenant (written when it is inserted).
    tenant: String,
    changed: bool,
}

/// A batch's effect, written at its end in one go: journal entries,
/// changes to vendors' earnings, and the state of the orders it names.
#[derive(Default)]
struct Journal {
    /// The tenant of the event being applied: each tenant keeps books of
    /// its own (issue 15), so every entry, account total, earnings row,
    /// payout and invoice records it.
    tenant: String,
    entries: Vec<Entry>,
    /// Debits and credits per (tenant, account), of the entries so far.
    totals: BTreeMap<(String, String), (Decimal, Decimal)>,
    earnings: BTreeMap<Uuid, Earnings>,
    /// Every order the batch names: `None` if not in the ledger (yet).
    orders: HashMap<Uuid, Option<OrderState>>,
    payouts: payouts::Payouts,
    subscription_invoices: subscriptions::Invoices,
}

struct Entry {
    tenant: String,
    position: i64,
    order_id: Option<Uuid>,
    kind: &'static str,
    at: DateTime<Utc>,
    lines: Vec<Line>,
}

/// Changes to a vendor's earnings in this batch.
#[derive(Default)]
struct Earnings {
    /// The vendor's tenant (written when its row is inserted).
    tenant: String,
    gross: Decimal,
    platform_fees: Decimal,
    pending: Decimal,
    available: Decimal,
    paid_out: Decimal,
    damage_credits: Decimal,
    /// Net reversed by refunds and lost disputes; frozen by open disputes;
    /// owed by the vendor.
    refunded: Decimal,
    frozen: Decimal,
    receivable: Decimal,
}

async fn load_orders(
    tx: &mut PgConnection,
    order_ids: &[Uuid],
) -> Result<HashMap<Uuid, Option<OrderState>>, Error> {
    let mut orders: HashMap<Uuid, Option<OrderState>> =
        order_ids.iter().map(|id| (*id, None)).collect();
    if order_ids.is_empty() {
        return Ok(orders);
    }
    let rows: Vec<(Uuid, serde_json::Value, bool, serde_json::Value, String)> = sqlx::query_as(
        "SELECT order_id, priced, allocated, refunded, tenant
           FROM ledger_orders WHERE order_id = ANY($1)",
    )
    .bind(order_ids)
    .fetch_all(&mut *tx)
    .await?;
    for (order_id, priced, allocated, refunded, tenant) in rows {
        let priced = serde_json::from_value(priced)
            .map_err(|e| Error::Other(format!("ledger order {order_id}: {e}")))?;
        let refunded = serde_json::from_value(refunded)
            .map_err(|e| Error::Other(format!("ledger order {order_id}: {e}")))?;
        orders.insert(
            order_id,
            Some(OrderState {
                priced,
                allocated,
                refunded,
                placed: false,
                tenant,
                changed: false,
            }),
        );
    }
    Ok(orders)
}

impl Journal {
    /// Applies one event, in its tenant's books: postings, account totals,
    /// earnings and the rest are the event's tenant's.
    fn apply(&mut self, event: &EventEnvelope, id: Uuid, change: Change) -> Result<(), Error> {
        self.tenant.clone_from(&event.tenant);
        match change {
            Change::Order(order) => apply_order(self, event, id, order),
            Change::Vendor(vendor) => apply_vendor(self, event, id, vendor),
            Change::Subscription(change) => subscriptions::apply_subscription(self, event, change),
        }
    }

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
        match totals(&lines) {
            None => return Err(Error::apply(event, "the journal entry's sums overflow")),
            Some((debit, credit)) if debit != credit => {
                return Err(Error::apply(event, "unbalanced journal entry"))
            }
            Some(_) => {}
        }
        for line in &lines {
            let total = self
                .totals
                .entry((event.tenant.clone(), line.account.clone()))
                .or_default();
            add(&mut total.0, line.debit, event)?;
            add(&mut total.1, line.credit, event)?;
        }
        if !lines.is_empty() {
            self.entries.push(Entry {
                tenant: event.tenant.clone(),
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
        let tenant = &self.tenant;
        self.earnings.entry(vendor_id).or_insert_with(|| Earnings {
            tenant: tenant.clone(),
            ..Earnings::default()
        })
    }

    fn order(&mut self, event: &EventEnvelope, order_id: Uuid) -> Result<&mut OrderState, Error> {
        self.orders
            .get_mut(&order_id)
            .and_then(Option::as_mut)
            .ok_or_else(|| Error::apply(event, "order not in the ledger"))
    }

    async fn write(self, tx: &mut PgConnection) -> Result<(), Error> {
        let totals = self.totals;
        self.payouts.write(tx).await?;
        self.subscription_invoices.write(tx).await?;
        let (mut tenants, mut positions, mut accounts, mut vendors, mut orders, mut kinds) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        let (mut debits, mut credits, mut ats) = (Vec::new(), Vec::new(), Vec::new());
        for entry in &self.entries {
            for line in &entry.lines {
                tenants.push(entry.tenant.as_str());
                positions.push(entry.position);
                accounts.push(line.account.clone());
                vendors.push(line.vendor_id);
                orders.push(entry.order_id);
                kinds.push(entry.kind);
                debits.push(line.debit);
                credits.push(line.credit);
                ats.push(entry.at);
            }
        }
        if !positions.is_empty() {
            sqlx::query(
                "INSERT INTO ledger_postings
                     (position, account, vendor_id, order_id, kind, debit, credit, recorded_at,
                      tenant)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::uuid[], $5::text[],
                                      $6::numeric[], $7::numeric[], $8::timestamptz[], $9::text[])",
            )
            .bind(&positions)
            .bind(&accounts)
            .bind(&vendors)
            .bind(&orders)
            .bind(&kinds)
            .bind(&debits)
            .bind(&credits)
            .bind(&ats)
            .bind(&tenants)
            .execute(&mut *tx)
            .await?;
        }
        if !totals.is_empty() {
            let mut tenants = Vec::with_capacity(totals.len());
            let mut accounts = Vec::with_capacity(totals.len());
            let mut sums = Vec::with_capacity(totals.len());
            for ((tenant, account), sum) in totals {
                tenants.push(tenant);
                accounts.push(account);
                sums.push(sum);
            }
            let (debits, credits): (Vec<Decimal>, Vec<Decimal>) = sums.into_iter().unzip();
            sqlx::query(
                "INSERT INTO ledger_accounts (account, debit, credit, tenant)
                 SELECT * FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::text[])
                 ON CONFLICT (tenant, account) DO UPDATE
                    SET debit = ledger_accounts.debit + EXCLUDED.debit,
                        credit = ledger_accounts.credit + EXCLUDED.credit",
            )
            .bind(&accounts)
            .bind(&debits)
            .bind(&credits)
            .bind(&tenants)
            .execute(&mut *tx)
            .await?;
        }
        let earnings = self.earnings;
        if !earnings.is_empty() {
            let mut columns: [Vec<Decimal>; 9] = Default::default();
            let mut ids = Vec::with_capacity(earnings.len());
            let mut tenants = Vec::with_capacity(earnings.len());
            for (vendor_id, e) in earnings {
                ids.push(vendor_id);
                tenants.push(e.tenant);
                for (column, value) in columns.iter_mut().zip([
                    e.gross,
                    e.platform_fees,
                    e.pending,
                    e.available,
                    e.paid_out,
                    e.damage_credits,
                    e.refunded,
                    e.frozen,
                    e.receivable,
                ]) {
                    column.push(value);
                }
            }
            sqlx::query(
                "INSERT INTO ledger_vendor_earnings
                     (vendor_id, gross, platform_fees, pending, available, paid_out, damage_credits,
                      refunded, frozen, receivable, tenant)
                 SELECT * FROM unnest($1::uuid[], $2::numeric[], $3::numeric[], $4::numeric[],
                                      $5::numeric[], $6::numeric[], $7::numeric[],
                                      $8::numeric[], $9::numeric[], $10::numeric[], $11::text[])
                 ON CONFLICT (vendor_id) DO UPDATE SET
                     gross = ledger_vendor_earnings.gross + EXCLUDED.gross,
                     platform_fees = ledger_vendor_earnings.platform_fees + EXCLUDED.platform_fees,
                     pending = ledger_vendor_earnings.pending + EXCLUDED.pending,
                     available = ledger_vendor_earnings.available + EXCLUDED.available,
                     paid_out = ledger_vendor_earnings.paid_out + EXCLUDED.paid_out,
                     damage_credits = ledger_vendor_earnings.damage_credits + EXCLUDED.damage_credits,
                     refunded = ledger_vendor_earnings.refunded + EXCLUDED.refunded,
                     frozen = ledger_vendor_earnings.frozen + EXCLUDED.frozen,
                     receivable = ledger_vendor_earnings.receivable + EXCLUDED.receivable",
            )
            .bind(&ids)
            .bind(&columns[0])
            .bind(&columns[1])
            .bind(&columns[2])
            .bind(&columns[3])
            .bind(&columns[4])
            .bind(&columns[5])
            .bind(&columns[6])
            .bind(&columns[7])
            .bind(&columns[8])
            .bind(&tenants)
            .execute(&mut *tx)
            .await?;
        }
        let (mut ids, mut priced, mut allocated, mut refunded, mut tenants) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (order_id, state) in &self.orders {
            let Some(state) = state.as_ref().filter(|s| s.placed || s.changed) else {
                continue;
            };
            ids.push(*order_id);
            priced.push(
                serde_json::to_value(&state.priced)
                    .map_err(|e| Error::Other(format!("ledger order {order_id}: {e}")))?,
            );
            allocated.push(state.allocated);
            tenants.push(state.tenant.as_str());
            refunded.push(
                serde_json::to_value(&state.refunded)
                    .map_err(|e| Error::Other(format!("ledger order {order_id}: {e}")))?,
            );
        }
        if !ids.is_empty() {
            // New orders are inserted; known ones change `allocated`,
            // `priced` when a booking change was confirmed, and `refunded`.
            sqlx::query(
                "INSERT INTO ledger_orders (order_id, priced, allocated, refunded, tenant)
                 SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::bool[], $4::jsonb[], $5::text[])
                 ON CONFLICT (order_id) DO UPDATE
                    SET allocated = EXCLUDED.allocated, priced = EXCLUDED.priced,
                        refunded = EXCLUDED.refunded",
            )
            .bind(&ids)
            .bind(&priced)
            .bind(&allocated)
            .bind(&refunded)
            .bind(&tenants)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

fn parse_uuid(event: &EventEnvelope) -> Result<Uuid, Error> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))
}

mod changes;
mod entries;
pub mod instalments;
pub mod payouts;
pub mod reversals;
pub mod subscriptions;
pub use payouts::PAYOUTS_IN_TRANSIT;
#[cfg(test)]
mod tests;
