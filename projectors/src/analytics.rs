//! Analytics facts: one row per order (`an_orders`), per order line
//! (`an_order_lines`, with the listing's category and title and the line's
//! share of its vendor's platform fee), per listing (`an_listings`, for
//! utilisation), per failed payment (`an_payment_failures`) and per rental
//! line overdue or returned (`an_rental_returns`, `returns`). Orders and
//! lines follow confirmed adjustments and early returns (`changes`). The
//! read API aggregates them per period.
//!
//! A batch is applied set-wise: the listing and order rows its events touch
//! are read in two statements, folded in memory, and written back with one
//! statement per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{Capacity, InventoryEvent, ListingEvent, ListingKind, ListingTerms, OrderEvent};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Consumer;
use crate::Error;

pub const NAME: &str = "analytics";

pub struct Analytics;

impl Consumer for Analytics {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "an_orders",
            "an_order_lines",
            "an_listings",
            "an_payment_failures",
            "an_rental_returns",
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// A row of `an_listings`.
#[derive(Clone, Debug, sqlx::FromRow)]
struct ListingFact {
    tenant: String,
    listing_id: Uuid,
    vendor_id: Uuid,
    title: String,
    category: String,
    kind: String,
    units: i32,
    created_at: DateTime<Utc>,
}

/// A row of `an_orders`.
#[derive(Clone, Debug, sqlx::FromRow)]
struct OrderFact {
    tenant: String,
    order_id: Uuid,
    placed_at: DateTime<Utc>,
    subtotal: Decimal,
    total: Decimal,
    paid: bool,
    cancelled: bool,
    refunded: Decimal,
    /// Open disputes, disputes lost, and unapplied cash still held
    /// (API.md "Money").
    disputed: Decimal,
    disputes_lost: Decimal,
    unapplied: Decimal,
}

/// A row of `an_order_lines`.
struct LineFact {
    tenant: String,
    order_id: Uuid,
    line_id: Uuid,
    listing_id: Uuid,
    vendor_id: Uuid,
    category: String,
    title: String,
    kind: &'static str,
    placed_at: DateTime<Utc>,
    subtotal: Decimal,
    platform_fee: Decimal,
    quantity: i32,
    start_at: Option<DateTime<Utc>>,
    end_at: Option<DateTime<Utc>>,
}

enum Change {
    Listing(ListingEvent),
    Inventory(InventoryEvent),
    Order(OrderEvent),
}

/// The facts a batch touches (`None`: not recorded), and what it adds.
#[derive(Default)]
struct Facts {
    listings: HashMap<Uuid, Option<ListingFact>>,
    orders: HashMap<Uuid, Option<OrderFact>>,
    changed_listings: Vec<Uuid>,
    changed_orders: Vec<Uuid>,
    lines: Vec<LineFact>,
    failures: Vec<FailureFact>,
    returns: returns::Returns,
    line_changes: changes::LineChanges,
}

/// A row of `an_payment_failures`: a failed payment, with the provider's
/// reason text and, when given, its `code` and `decline_code`.
struct FailureFact {
    tenant: String,
    position: i64,
    order_id: Uuid,
    reason: String,
    code: Option<String>,
    decline_code: Option<String>,
    failed_at: DateTime<Utc>,
}

impl Facts {
    fn order(&mut self, order_id: Uuid) -> Option<&mut OrderFact> {
        let fact = self.orders.get_mut(&order_id)?.as_mut()?;
        self.changed_orders.push(order_id);
        Some(fact)
    }

    /// Adds `amount` to one money column of the order's facts.
    fn change_order(
        &mut self,
        event: &EventEnvelope,
        order_id: Uuid,
        column: impl Fn(&mut OrderFact) -> &mut Decimal,
        amount: Decimal,
    ) -> Result<(), Error> {
        if let Some(order) = self.order(order_id) {
            let slot = column(order);
            *slot = slot
                .checked_add(amount)
                .ok_or_else(|| Error::apply(event, "an order's money total overflows"))?;
        }
        Ok(())
    }

    fn apply(&mut self, event: &EventEnvelope, id: Uuid, change: Change) -> Result<(), Error> {
        match change {
            Change::Listing(ListingEvent::ListingCreated {
                vendor_id,
                title,
                category,
                terms,
                ..
            }) => {
                let slot = self.listings.entry(id).or_insert(None);
                if slot.is_none() {
                    let (kind, units) = match terms {
                        ListingTerms::Rental { units, .. } => ("rental", column(event, units)?),
                        ListingTerms::Sale { .. } => ("sale", 0),
                    };
                    *slot = Some(ListingFact {
                        tenant: event.tenant.clone(),
                        listing_id: id,
                        vendor_id,
                        title,
                        category,
                        kind: kind.to_owned(),
                        units,
                        created_at: event.recorded_at,
                    });
                    self.changed_listings.push(id);
                }
            }
            Change::Listing(_) => {}
            Change::Inventory(
                InventoryEvent::InventoryInitialized {
                    capacity: Capacity::Rental { units },
                    ..
                }
                | InventoryEvent::UnitsChanged { units },
            ) => {
                if let Some(Some(listing)) = self.listings.get_mut(&id) {
                    listing.units = column(event, units)?;
                    self.changed_listings.push(id);
                }
            }
            Change::Inventory(_) => {}
            Change::Order(order) => self.apply_order(event, id, order)?,
        }
        Ok(())
    }

    fn apply_order(
        &mut self,
        event: &EventEnvelope,
        order_id: Uuid,
        parsed: OrderEvent,
    ) -> Result<(), Error> {
        match parsed {
            OrderEvent::OrderPlaced {
                priced, placed_at, ..
            } => {
                let slot = self.orders.entry(order_id).or_insert(None);
                if slot.is_some() {
                    return Err(Error::apply(event, "order already in the analytics"));
                }
                *slot = Some(OrderFact {
                    tenant: event.tenant.clone(),
                    order_id,
                    placed_at,
                    subtotal: priced.subtotal,
                    total: priced.total,
                    paid: false,
                    cancelled: false,
                    refunded: Decimal::ZERO,
                    disputed: Decimal::ZERO,
                    disputes_lost: Decimal::ZERO,
                    unapplied: Decimal::ZERO,
                });
                self.changed_orders.push(order_id);
                for line in &priced.lines {
                    let fee_share = match priced.vendor(line.vendor_id) {
                        Some(v) => fee_share(v.platform_fee, line.subtotal, v.subtotal)
                            .ok_or_else(|| {
                                Error::apply(
                                    event,
                                    format!(
                                        "line {}: its share of the platform fee {} is out of range",
                                        line.line_id, v.platform_fee
                                    ),
                                )
                            })?,
                        None => Decimal::ZERO,
                    };
                    let listing = self.listings.get(&line.listing_id).and_then(Option::as_ref);
                    self.lines.push(LineFact {
                        tenant: event.tenant.clone(),
                        order_id,
                        line_id: line.line_id,
                        listing_id: line.listing_id,
                        vendor_id: line.vendor_id,
                        category: listing.map(|l| l.category.clone()).unwrap_or_default(),
                        title: listing.map(|l| l.title.clone()).unwrap_or_default(),
                        kind: match line.kind {
                            ListingKind::Rental => "rental",
                            ListingKind::Sale => "sale",
                        },
                        placed_at,
                        subtotal: line.subtotal,
                        platform_fee: fee_share,
                        quantity: column(event, line.quantity)?,
                        start_at: line.start,
                        end_at: line.end,
                    });
                }
            }
            OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
                if let Some(order) = self.order(order_id) {
                    order.paid = true;
                    order.cancelled = false;
                }
            }
            OrderEvent::OrderCancelled { .. } => {
                if let Some(order) = self.order(order_id) {
                    order.cancelled = true;
                }
            }
            OrderEvent::RefundIssued { amount, .. } => {
                if let Some(order) = self.order(order_id) {
                    order.refunded = order
                        .refunded
                        .checked_add(amount)
                        .ok_or_else(|| Error::apply(event, "the refunded total overflows"))?;
                }
            }
            OrderEvent::RefundRecorded { amount, .. } => {
                self.change_order(event, order_id, |o| &mut o.refunded, amount)?
            }
            OrderEvent::PaymentUnapplied { amount, .. } => {
                self.change_order(event, order_id, |o| &mut o.unapplied, amount)?
            }
            OrderEvent::UnappliedPaymentApplied { amount, .. }
            | OrderEvent::UnappliedPaymentRefunded { amount, .. } => {
                self.change_order(event, order_id, |o| &mut o.unapplied, -amount)?
            }
            OrderEvent::DisputeOpened { amount, .. } => {
                self.change_order(event, order_id, |o| &mut o.disputed, amount)?
            }
            OrderEvent::DisputeClosed { amount, won, .. } => {
                self.change_order(event, order_id, |o| &mut o.disputed, -amount)?;
                if !won {
                    self.change_order(event, order_id, |o| &mut o.disputes_lost, amount)?;
                }
            }
            OrderEvent::LineOverdue { line_id, at } => self.returns.overdue(order_id, line_id, at),
            OrderEvent::LineReturned {
                line_id,
                returned_at,
                late_fee,
                late_fee_owed,
                ..
            } => {
                self.line_changes.returned(order_id, line_id, returned_at);
                self.returns
                    .returned(order_id, line_id, returned_at, late_fee, late_fee_owed)
            }
            // A late fee owed, paid: less owed; from unapplied cash, less
            // of that held.
            OrderEvent::LateFeePaid {
                amount,
                from_unapplied,
                parts,
                ..
            } => {
                for part in &parts {
                    self.returns.paid(order_id, part.line_id, part.amount);
                }
                if from_unapplied {
                    self.change_order(event, order_id, |o| &mut o.unapplied, -amount)?;
                }
            }
            // The order as changed: the line's new period and amounts.
            OrderEvent::AdjustmentConfirmed { adjustment, .. } => {
                self.change_order(event, order_id, |o| &mut o.subtotal, adjustment.subtotal)?;
                self.change_order(event, order_id, |o| &mut o.total, adjustment.amount_due)?;
                self.line_changes.adjusted(order_id, &adjustment);
            }
            OrderEvent::PaymentFailed {
                reason,
                code,
                decline_code,
                ..
            } => self.failures.push(FailureFact {
                tenant: event.tenant.clone(),
                position: event.position,
                order_id,
                reason,
                code,
                decline_code,
                failed_at: event.recorded_at,
            }),
            _ => {}
        }
        Ok(())
    }
}

/// A line's share of its vendor's platform fee, to six places:
/// `fee × line subtotal / vendor subtotal`, so that the shares of a
/// vendor's lines add up to its fee. The product comes first (exact to the
/// last place) unless it overflows, then the line's part of the subtotal;
/// `None` only if neither fits in a `Decimal` (no priced order does: the
/// line is part of its vendor's subtotal).
pub fn fee_share(
    platform_fee: Decimal,
    line_subtotal: Decimal,
    vendor_subtotal: Decimal,
) -> Option<Decimal> {
    if vendor_subtotal.is_zero() {
        return Some(Decimal::ZERO);
    }
    let share = match platform_fee.checked_mul(line_subtotal) {
        Some(product) => product.checked_div(vendor_subtotal)?,
        None => line_subtotal
            .checked_div(vendor_subtotal)?
            .checked_mul(platform_fee)?,
    };
    Some(share.round_dp(6))
}

/// A count of an event as an `int` column.
fn column(event: &EventEnvelope, count: u32) -> Result<i32, Error> {
    i32::try_from(count).map_err(|_| Error::apply(event, format!("{count} is out of range")))
}

async fn apply_batch(tx: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), Error> {
    let mut decoded = Vec::new();
    let (mut listing_ids, mut order_ids) = (Vec::new(), Vec::new());
    for event in events {
        let wanted = [Aggregate::Listing, Aggregate::Inventory, Aggregate::Order];
        let change = match crate::decode(event, &wanted)? {
            Some(Event::Listing(listing)) => Change::Listing(listing),
            Some(Event::Inventory(inventory)) => Change::Inventory(inventory),
            Some(Event::Order(order)) => Change::Order(order),
            _ => continue,
        };
        let id = Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))?;
        match &change {
            Change::Order(OrderEvent::OrderPlaced { priced, .. }) => {
                order_ids.push(id);
                listing_ids.extend(priced.lines.iter().map(|l| l.listing_id));
            }
            Change::Order(_) => order_ids.push(id),
            _ => listing_ids.push(id),
        }
        decoded.push((event, id, change));
    }
    if decoded.is_empty() {
        return Ok(());
    }
    for ids in [&mut listing_ids, &mut order_ids] {
        ids.sort_unstable();
        ids.dedup();
    }
    let mut facts = Facts {
        listings: listing_ids.iter().map(|id| (*id, None)).collect(),
        orders: order_ids.iter().map(|id| (*id, None)).collect(),
        ..Facts::default()
    };
    if !listing_ids.is_empty() {
        let found: Vec<ListingFact> = sqlx::query_as(
            "SELECT tenant, listing_id, vendor_id, title, category, kind, units, created_at
               FROM an_listings WHERE listing_id = ANY($1)",
        )
        .bind(&listing_ids)
        .fetch_all(&mut *tx)
        .await?;
        for fact in found {
            facts.listings.insert(fact.listing_id, Some(fact));
        }
    }
    if !order_ids.is_empty() {
        let found: Vec<OrderFact> = sqlx::query_as(
            "SELECT tenant, order_id, placed_at, subtotal, total, paid, cancelled, refunded,
                    disputed, disputes_lost, unapplied
               FROM an_orders WHERE order_id = ANY($1)",
        )
        .bind(&order_ids)
        .fetch_all(&mut *tx)
        .await?;
        for fact in found {
            facts.orders.insert(fact.order_id, Some(fact));
        }
    }
    for (event, id, change) in decoded {
        facts.apply(event, id, change)?;
    }
    store(tx, facts).await
}

async fn store(tx: &mut PgConnection, mut facts: Facts) -> Result<(), Error> {
    facts.changed_listings.sort_unstable();
    facts.changed_listings.dedup();
    let listings: Vec<&ListingFact> = facts
        .changed_listings
        .iter()
        .filter_map(|id| facts.listings.get(id)?.as_ref())
        .collect();
    if !listings.is_empty() {
        sqlx::query(
            "INSERT INTO an_listings (listing_id, vendor_id, title, category, kind, units, created_at,
                                     tenant)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                  $6::int[], $7::timestamptz[], $8::text[])
             ON CONFLICT (listing_id) DO UPDATE SET units = EXCLUDED.units",
        )
        .bind(listings.iter().map(|l| l.listing_id).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.vendor_id).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.title.as_str()).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.category.as_str()).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.units).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.created_at).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.tenant.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    facts.changed_orders.sort_unstable();
    facts.changed_orders.dedup();
    let orders: Vec<&OrderFact> = facts
        .changed_orders
        .iter()
        .filter_map(|id| facts.orders.get(id)?.as_ref())
        .collect();
    if !orders.is_empty() {
        sqlx::query(
            "INSERT INTO an_orders (order_id, placed_at, subtotal, total, paid, cancelled, refunded,
                                    disputed, disputes_lost, unapplied, tenant)
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::numeric[], $4::numeric[],
                                  $5::bool[], $6::bool[], $7::numeric[], $8::numeric[],
                                  $9::numeric[], $10::numeric[], $11::text[])
             ON CONFLICT (order_id) DO UPDATE SET
                 subtotal = EXCLUDED.subtotal, total = EXCLUDED.total,
                 paid = EXCLUDED.paid, cancelled = EXCLUDED.cancelled,
                 refunded = EXCLUDED.refunded, disputed = EXCLUDED.disputed,
                 disputes_lost = EXCLUDED.disputes_lost, unapplied = EXCLUDED.unapplied",
        )
        .bind(orders.iter().map(|o| o.order_id).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.placed_at).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.subtotal).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.total).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.paid).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.cancelled).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.refunded).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.disputed).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.disputes_lost).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.unapplied).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.tenant.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    let lines = &facts.lines;
    if !lines.is_empty() {
        sqlx::query(
            "INSERT INTO an_order_lines (order_id, line_id, listing_id, vendor_id, category, title,
                                         kind, placed_at, subtotal, platform_fee, quantity,
                                         start_at, end_at, tenant)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[],
                                  $6::text[], $7::text[], $8::timestamptz[], $9::numeric[],
                                  $10::numeric[], $11::int[], $12::timestamptz[],
                                  $13::timestamptz[], $14::text[])",
        )
        .bind(lines.iter().map(|l| l.order_id).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.line_id).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.listing_id).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.vendor_id).collect::<Vec<_>>())
        .bind(
            lines
                .iter()
                .map(|l| l.category.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(lines.iter().map(|l| l.title.as_str()).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.kind).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.placed_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.subtotal).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.platform_fee).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.quantity).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.start_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.end_at).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.tenant.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    if !facts.failures.is_empty() {
        let failures = &facts.failures;
        sqlx::query(
            "INSERT INTO an_payment_failures
                    (position, order_id, reason, code, decline_code, failed_at, tenant)
             SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[],
                                  $5::text[], $6::timestamptz[], $7::text[])",
        )
        .bind(failures.iter().map(|f| f.position).collect::<Vec<_>>())
        .bind(failures.iter().map(|f| f.order_id).collect::<Vec<_>>())
        .bind(
            failures
                .iter()
                .map(|f| f.reason.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            failures
                .iter()
                .map(|f| f.code.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            failures
                .iter()
                .map(|f| f.decline_code.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(failures.iter().map(|f| f.failed_at).collect::<Vec<_>>())
        .bind(
            failures
                .iter()
                .map(|f| f.tenant.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }
    facts.line_changes.store(tx).await?;
    facts.returns.store(tx).await
}

mod changes;
mod returns;
#[cfg(test)]
mod tests;
