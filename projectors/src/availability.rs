//! Availability: the listings catalogue (`rm_listings`) and every
//! allocation of a listing's units over time (`rm_allocations`), from the
//! Listing and Inventory events. The read API computes free units per
//! period from the allocations.

use domain::{Capacity, HoldRequest, InventoryEvent, ListingEvent, ListingTerms};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::runner::Consumer;
use crate::Error;

pub const NAME: &str = "availability";

pub struct Availability;

impl Consumer for Availability {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_listings", "rm_allocations"]
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
                    _ => {}
                }
            }
            Ok(())
        })
    }
}

fn aggregate_uuid(event: &EventEnvelope) -> Result<Uuid, Error> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))
}

async fn apply_listing(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), Error> {
    let listing_id = aggregate_uuid(event)?;
    let parsed: ListingEvent = crate::decode(event)?;
    let at = event.recorded_at;
    match parsed {
        ListingEvent::ListingCreated {
            vendor_id,
            title,
            description,
            category,
            terms,
            ..
        } => {
            let (kind, pricing_unit, price, deposit, units, stock) = match terms {
                ListingTerms::Rental {
                    pricing_unit,
                    price_per_unit,
                    deposit,
                    units,
                } => (
                    "rental",
                    Some(
                        serde_json::to_value(pricing_unit)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                    ),
                    price_per_unit,
                    Some(deposit),
                    Some(units as i32),
                    None,
                ),
                ListingTerms::Sale { unit_price, stock } => {
                    ("sale", None, unit_price, None, None, Some(stock as i32))
                }
            };
            sqlx::query(
                "INSERT INTO rm_listings (listing_id, vendor_id, title, description, category, kind,
                                          status, pricing_unit, price, deposit, units, stock,
                                          created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, $8, $9, $10, $11, $12, $12)
                 ON CONFLICT (listing_id) DO NOTHING",
            )
            .bind(listing_id)
            .bind(vendor_id)
            .bind(title)
            .bind(description)
            .bind(category)
            .bind(kind)
            .bind(pricing_unit)
            .bind(price)
            .bind(deposit)
            .bind(units)
            .bind(stock)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        ListingEvent::ListingPublished => set_status(tx, listing_id, "published", at).await?,
        ListingEvent::ListingArchived => set_status(tx, listing_id, "archived", at).await?,
        ListingEvent::PriceChanged { price } => {
            sqlx::query("UPDATE rm_listings SET price = $2, updated_at = $3 WHERE listing_id = $1")
                .bind(listing_id)
                .bind(price)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

async fn set_status(
    tx: &mut PgConnection,
    listing_id: Uuid,
    status: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), Error> {
    sqlx::query("UPDATE rm_listings SET status = $2, updated_at = $3 WHERE listing_id = $1")
        .bind(listing_id)
        .bind(status)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn apply_inventory(tx: &mut PgConnection, event: &EventEnvelope) -> Result<(), Error> {
    let listing_id = aggregate_uuid(event)?;
    let parsed: InventoryEvent = crate::decode(event)?;
    match parsed {
        InventoryEvent::InventoryInitialized { capacity, .. } => {
            let (units, stock) = match capacity {
                Capacity::Rental { units } => (Some(units as i32), None),
                Capacity::Sale { stock } => (None, Some(stock as i32)),
            };
            sqlx::query(
                "UPDATE rm_listings SET units = coalesce($2, units), stock = coalesce($3, stock)
                  WHERE listing_id = $1",
            )
            .bind(listing_id)
            .bind(units)
            .bind(stock)
            .execute(&mut *tx)
            .await?;
        }
        InventoryEvent::HoldPlaced {
            hold_id,
            order_id,
            request,
            expires_at,
        } => {
            let (start, end, quantity) = match request {
                HoldRequest::Rental { period, quantity } => {
                    (Some(period.start), Some(period.end), quantity)
                }
                HoldRequest::Sale { quantity } => (None, None, quantity),
            };
            sqlx::query(
                "INSERT INTO rm_allocations (listing_id, allocation_id, kind, start_at, end_at,
                                             quantity, expires_at, order_id)
                 VALUES ($1, $2, 'hold', $3, $4, $5, $6, $7)",
            )
            .bind(listing_id)
            .bind(hold_id)
            .bind(start)
            .bind(end)
            .bind(quantity as i32)
            .bind(expires_at)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
            if start.is_none() {
                adjust_stock_held(tx, listing_id, quantity as i32).await?;
            }
        }
        InventoryEvent::HoldConfirmed { hold_id } => {
            set_kind(tx, listing_id, hold_id, "booking").await?;
        }
        InventoryEvent::HoldReinstated { hold_id } => {
            if let Some((was, quantity, sale)) = set_kind(tx, listing_id, hold_id, "hold").await? {
                if sale && matches!(was.as_str(), "released" | "expired") {
                    adjust_stock_held(tx, listing_id, quantity).await?;
                }
            }
        }
        InventoryEvent::HoldReleased { hold_id, .. } => {
            release(tx, listing_id, hold_id, "released").await?;
        }
        InventoryEvent::HoldExpired { hold_id } => {
            release(tx, listing_id, hold_id, "expired").await?;
        }
        InventoryEvent::ReturnRecorded {
            hold_id,
            returned_at,
        } => {
            // The units are free again from the return (never before the start).
            sqlx::query(
                "UPDATE rm_allocations
                    SET end_at = least(end_at, greatest(start_at, $3))
                  WHERE listing_id = $1 AND allocation_id = $2",
            )
            .bind(listing_id)
            .bind(hold_id)
            .bind(returned_at)
            .execute(&mut *tx)
            .await?;
        }
        InventoryEvent::BlackoutAdded {
            blackout_id,
            period,
            units,
            ..
        } => {
            sqlx::query(
                "INSERT INTO rm_allocations (listing_id, allocation_id, kind, start_at, end_at, quantity)
                 VALUES ($1, $2, 'blackout', $3, $4, $5)",
            )
            .bind(listing_id)
            .bind(blackout_id)
            .bind(period.start)
            .bind(period.end)
            .bind(units.map(|u| u as i32))
            .execute(&mut *tx)
            .await?;
        }
        InventoryEvent::BlackoutRemoved { blackout_id } => {
            sqlx::query("DELETE FROM rm_allocations WHERE listing_id = $1 AND allocation_id = $2")
                .bind(listing_id)
                .bind(blackout_id)
                .execute(&mut *tx)
                .await?;
        }
        InventoryEvent::UnitsChanged { units } => {
            sqlx::query("UPDATE rm_listings SET units = $2 WHERE listing_id = $1")
                .bind(listing_id)
                .bind(units as i32)
                .execute(&mut *tx)
                .await?;
        }
        InventoryEvent::StockAdjusted { delta, .. } => {
            sqlx::query("UPDATE rm_listings SET stock = stock + $2 WHERE listing_id = $1")
                .bind(listing_id)
                .bind(delta as i32)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Sets an allocation's kind; returns its previous kind, quantity and
/// whether it is a sale hold.
async fn set_kind(
    tx: &mut PgConnection,
    listing_id: Uuid,
    hold_id: Uuid,
    kind: &str,
) -> Result<Option<(String, i32, bool)>, Error> {
    let previous: Option<(String, i32, bool)> = sqlx::query_as(
        "SELECT kind, quantity, start_at IS NULL FROM rm_allocations
          WHERE listing_id = $1 AND allocation_id = $2 FOR UPDATE",
    )
    .bind(listing_id)
    .bind(hold_id)
    .fetch_optional(&mut *tx)
    .await?;
    let expires = if kind == "hold" { "expires_at" } else { "NULL" };
    sqlx::query(&format!(
        "UPDATE rm_allocations SET kind = $3, expires_at = {expires}
          WHERE listing_id = $1 AND allocation_id = $2"
    ))
    .bind(listing_id)
    .bind(hold_id)
    .bind(kind)
    .execute(&mut *tx)
    .await?;
    Ok(previous)
}

async fn release(
    tx: &mut PgConnection,
    listing_id: Uuid,
    hold_id: Uuid,
    kind: &str,
) -> Result<(), Error> {
    if let Some((was, quantity, sale)) = set_kind(tx, listing_id, hold_id, kind).await? {
        if sale && matches!(was.as_str(), "hold" | "booking") {
            adjust_stock_held(tx, listing_id, -quantity).await?;
        }
    }
    Ok(())
}

async fn adjust_stock_held(tx: &mut PgConnection, listing_id: Uuid, by: i32) -> Result<(), Error> {
    sqlx::query("UPDATE rm_listings SET stock_held = stock_held + $2 WHERE listing_id = $1")
        .bind(listing_id)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
