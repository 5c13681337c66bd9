//! Analytics facts: one row per order (`an_orders`), per order line
//! (`an_order_lines`, with the listing's category and title and the line's
//! share of its vendor's platform fee), per listing (`an_listings`, for
//! utilisation) and per failed payment (`an_payment_failures`). The read
//! API aggregates them per period.

use domain::{Capacity, InventoryEvent, ListingEvent, ListingTerms, OrderEvent};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::runner::Consumer;
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
        ]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            for event in events {
                match event.aggregate_type.as_str() {
                    "Listing" => apply_listing(tx, event).await?,
                    "Inventory" => apply_inventory(tx, event).await?,
                    "Order" => apply_order(tx, event).await?,
                    _ => {}
                }
            }
            Ok(())
        })
    }
}

fn parse_uuid(event: &EventEnvelope) -> Result<Uuid, Error> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))
}

async fn apply_listing(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), Error> {
    let listing_id = parse_uuid(event)?;
    let parsed: ListingEvent = crate::decode(event)?;
    if let ListingEvent::ListingCreated {
        vendor_id,
        title,
        category,
        terms,
        ..
    } = parsed
    {
        let (kind, units) = match terms {
            ListingTerms::Rental { units, .. } => ("rental", units as i32),
            ListingTerms::Sale { .. } => ("sale", 0),
        };
        sqlx::query(
            "INSERT INTO an_listings (listing_id, vendor_id, title, category, kind, units, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (listing_id) DO NOTHING",
        )
        .bind(listing_id)
        .bind(vendor_id)
        .bind(title)
        .bind(category)
        .bind(kind)
        .bind(units)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn apply_inventory(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), Error> {
    let listing_id = parse_uuid(event)?;
    let parsed: InventoryEvent = crate::decode(event)?;
    let units = match parsed {
        InventoryEvent::InventoryInitialized {
            capacity: Capacity::Rental { units },
            ..
        }
        | InventoryEvent::UnitsChanged { units } => units,
        _ => return Ok(()),
    };
    sqlx::query("UPDATE an_listings SET units = $2 WHERE listing_id = $1")
        .bind(listing_id)
        .bind(units as i32)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn apply_order(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), Error> {
    let order_id = parse_uuid(event)?;
    let parsed: OrderEvent = crate::decode(event)?;
    match parsed {
        OrderEvent::OrderPlaced {
            priced, placed_at, ..
        } => {
            sqlx::query(
                "INSERT INTO an_orders (order_id, placed_at, subtotal, total) VALUES ($1, $2, $3, $4)",
            )
            .bind(order_id)
            .bind(placed_at)
            .bind(priced.subtotal)
            .bind(priced.total)
            .execute(&mut *tx)
            .await?;
            for line in &priced.lines {
                // The line's share of its vendor's fee, unrounded: a sum of
                // shares over all of a vendor's lines is its fee exactly.
                let fee_share = priced
                    .vendor(line.vendor_id)
                    .filter(|v| !v.subtotal.is_zero())
                    .map(|v| v.platform_fee * line.subtotal / v.subtotal)
                    .unwrap_or(Decimal::ZERO)
                    .round_dp(6);
                sqlx::query(
                    "INSERT INTO an_order_lines (order_id, line_id, listing_id, vendor_id, category, title,
                                                 kind, placed_at, subtotal, platform_fee, quantity,
                                                 start_at, end_at)
                     SELECT $1, $2, $3, $4, coalesce(l.category, ''), coalesce(l.title, ''), $5, $6, $7,
                            $8, $9, $10, $11
                       FROM (SELECT 1) one
                       LEFT JOIN an_listings l ON l.listing_id = $3",
                )
                .bind(order_id)
                .bind(line.line_id)
                .bind(line.listing_id)
                .bind(line.vendor_id)
                .bind(match line.kind {
                    domain::ListingKind::Rental => "rental",
                    domain::ListingKind::Sale => "sale",
                })
                .bind(placed_at)
                .bind(line.subtotal)
                .bind(fee_share)
                .bind(line.quantity as i32)
                .bind(line.start)
                .bind(line.end)
                .execute(&mut *tx)
                .await?;
            }
        }
        OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
            sqlx::query("UPDATE an_orders SET paid = true, cancelled = false WHERE order_id = $1")
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
        }
        OrderEvent::OrderCancelled { .. } => {
            sqlx::query("UPDATE an_orders SET cancelled = true WHERE order_id = $1")
                .bind(order_id)
                .execute(&mut *tx)
                .await?;
        }
        OrderEvent::RefundIssued { amount, .. } => {
            sqlx::query("UPDATE an_orders SET refunded = refunded + $2 WHERE order_id = $1")
                .bind(order_id)
                .bind(amount)
                .execute(&mut *tx)
                .await?;
        }
        OrderEvent::PaymentFailed { reason, .. } => {
            sqlx::query(
                "INSERT INTO an_payment_failures (position, order_id, reason, failed_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(event.position)
            .bind(order_id)
            .bind(reason)
            .bind(event.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
