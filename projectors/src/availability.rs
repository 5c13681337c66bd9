//! Availability: the listings catalogue (`rm_listings`) and every
//! allocation of a listing's units over time (`rm_allocations`), from the
//! Listing and Inventory events. The read API computes free units per
//! period from the allocations.
//!
//! A batch is applied set-wise: the rows its events touch are read in two
//! statements, the events are folded into them in memory ([`Rows::apply`],
//! pure), and what changed is written back in three (upserts and deletes
//! over arrays). A batch of thousands of events costs a handful of
//! statements, not several per event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use domain::{Capacity, HoldRequest, InventoryEvent, ListingEvent, ListingTerms};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Consumer;
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
        Box::pin(apply_batch(tx, events))
    }
}

/// A row of `rm_listings` (without the generated `search`).
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ListingRow {
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub title: String,
    pub description: String,
    pub category: String,
    pub kind: String,
    pub status: String,
    pub pricing_unit: Option<String>,
    pub price: Decimal,
    pub deposit: Option<Decimal>,
    pub units: Option<i32>,
    pub stock: Option<i32>,
    pub stock_held: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A rental listing's schedule as the Inventory recorded it.
    pub schedule: Option<serde_json::Value>,
    /// Its late fee and cancellation policy as the Listing recorded them.
    pub policies: Option<serde_json::Value>,
    /// The tenant of the event that created it.
    pub tenant: String,
}

/// A row of `rm_allocations`.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct AllocationRow {
    pub listing_id: Uuid,
    pub allocation_id: Uuid,
    pub kind: String,
    pub start_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub quantity: Option<i32>,
    pub expires_at: Option<DateTime<Utc>>,
    pub order_id: Option<Uuid>,
    /// The tenant of the event that created it.
    pub tenant: String,
}

/// One event of the batch, decoded.
#[derive(Clone, Debug)]
pub enum Change {
    Listing(ListingEvent),
    Inventory(InventoryEvent),
}

type AllocationKey = (Uuid, Uuid);

/// The rows a batch touches, as they stand while its events are folded in:
/// `None` is a row that does not exist. `changed` marks what to write back.
#[derive(Debug, Default)]
pub struct Rows {
    pub listings: HashMap<Uuid, Option<ListingRow>>,
    pub allocations: HashMap<AllocationKey, Option<AllocationRow>>,
    changed_listings: Vec<Uuid>,
    changed_allocations: Vec<AllocationKey>,
}

impl Rows {
    fn listing(&mut self, listing_id: Uuid) -> Option<&mut ListingRow> {
        let row = self.listings.get_mut(&listing_id)?.as_mut()?;
        self.changed_listings.push(listing_id);
        Some(row)
    }

    fn allocation(&mut self, key: AllocationKey) -> Option<&mut AllocationRow> {
        let row = self.allocations.get_mut(&key)?.as_mut()?;
        self.changed_allocations.push(key);
        Some(row)
    }

    fn insert_allocation(&mut self, row: AllocationRow) -> Result<(), String> {
        let key = (row.listing_id, row.allocation_id);
        let slot = self.allocations.entry(key).or_insert(None);
        if slot.is_some() {
            return Err(format!("allocation {} exists already", row.allocation_id));
        }
        *slot = Some(row);
        self.changed_allocations.push(key);
        Ok(())
    }

    fn adjust_stock_held(&mut self, listing_id: Uuid, by: i32) -> Result<(), String> {
        if let Some(listing) = self.listing(listing_id) {
            listing.stock_held = listing
                .stock_held
                .checked_add(by)
                .ok_or("the stock held is out of range")?;
        }
        Ok(())
    }

    /// Sets an allocation's kind; returns its previous kind, quantity and
    /// whether it is a sale hold. Only a hold keeps its expiry.
    fn set_kind(&mut self, key: AllocationKey, kind: &str) -> Option<(String, i32, bool)> {
        let row = self.allocation(key)?;
        let previous = (
            std::mem::replace(&mut row.kind, kind.to_owned()),
            row.quantity.unwrap_or(0),
            row.start_at.is_none(),
        );
        if kind != "hold" {
            row.expires_at = None;
        }
        Some(previous)
    }

    fn release(&mut self, key: AllocationKey, kind: &str) -> Result<(), String> {
        if let Some((was, quantity, sale)) = self.set_kind(key, kind) {
            if sale && matches!(was.as_str(), "hold" | "booking") {
                let released = quantity
                    .checked_neg()
                    .ok_or("the quantity is out of range")?;
                self.adjust_stock_held(key.0, released)?;
            }
        }
        Ok(())
    }

    /// Folds one event of listing (or inventory) `id`, recorded at `at` in
    /// `tenant`, into the rows. Only the rows of `id` it names must have
    /// been loaded. The rows it creates are `tenant`'s.
    pub fn apply(
        &mut self,
        tenant: &str,
        id: Uuid,
        at: DateTime<Utc>,
        change: Change,
    ) -> Result<(), String> {
        match change {
            Change::Listing(event) => self.apply_listing(tenant, id, at, event),
            Change::Inventory(event) => self.apply_inventory(tenant, id, event),
        }
    }

    fn apply_listing(
        &mut self,
        tenant: &str,
        listing_id: Uuid,
        at: DateTime<Utc>,
        event: ListingEvent,
    ) -> Result<(), String> {
        match event {
            ListingEvent::ListingCreated {
                vendor_id,
                title,
                description,
                category,
                terms,
                ..
            } => {
                let slot = self.listings.entry(listing_id).or_insert(None);
                if slot.is_some() {
                    return Ok(());
                }
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
                        Some(column(units)?),
                        None,
                    ),
                    ListingTerms::Sale { unit_price, stock } => {
                        ("sale", None, unit_price, None, None, Some(column(stock)?))
                    }
                };
                *slot = Some(ListingRow {
                    listing_id,
                    vendor_id,
                    title,
                    description,
                    category,
                    kind: kind.to_owned(),
                    status: "draft".to_owned(),
                    pricing_unit,
                    price,
                    deposit,
                    units,
                    stock,
                    stock_held: 0,
                    created_at: at,
                    updated_at: at,
                    schedule: None,
                    policies: None,
                    tenant: tenant.to_owned(),
                });
                self.changed_listings.push(listing_id);
            }
            ListingEvent::ListingPublished => self.set_status(listing_id, "published", at),
            ListingEvent::ListingArchived => self.set_status(listing_id, "archived", at),
            ListingEvent::PriceChanged { price } => {
                if let Some(listing) = self.listing(listing_id) {
                    listing.price = price;
                    listing.updated_at = at;
                }
            }
            ListingEvent::PoliciesSet {
                late_fee_per_unit,
                cancellation_policy,
            } => {
                if let Some(listing) = self.listing(listing_id) {
                    let shown = format!("{late_fee_per_unit:.2}");
                    listing.policies = Some(serde_json::json!({
                        "late_fee_per_unit": shown,
                        "cancellation_policy": cancellation_policy,
                    }));
                    listing.updated_at = at;
                }
            }
        }
        Ok(())
    }

    /// A change awaiting payment: the instants of its period beyond its
    /// hold's own (their hull, when it grows both ways) as a hold of the
    /// same order until the change expires.
    fn hold_change(
        &mut self,
        listing_id: Uuid,
        hold_id: Uuid,
        change_id: Uuid,
        period: domain::Period,
        expires_at: DateTime<Utc>,
    ) -> Result<(), String> {
        let Some(hold) = self.allocation((listing_id, hold_id)).cloned() else {
            return Ok(());
        };
        let (Some(start), Some(end)) = (hold.start_at, hold.end_at) else {
            return Ok(());
        };
        let from = if period.start < start {
            period.start
        } else {
            period.start.max(end)
        };
        let to = if period.end > end {
            period.end
        } else {
            period.end.min(start)
        };
        if from >= to {
            return Ok(());
        }
        self.insert_allocation(AllocationRow {
            listing_id,
            allocation_id: change_id,
            kind: "hold".to_owned(),
            start_at: Some(from),
            end_at: Some(to),
            quantity: hold.quantity,
            expires_at: Some(expires_at),
            order_id: hold.order_id,
            tenant: hold.tenant,
        })
    }

    fn set_status(&mut self, listing_id: Uuid, status: &str, at: DateTime<Utc>) {
        if let Some(listing) = self.listing(listing_id) {
            status.clone_into(&mut listing.status);
            listing.updated_at = at;
        }
    }

    fn apply_inventory(
        &mut self,
        tenant: &str,
        listing_id: Uuid,
        event: InventoryEvent,
    ) -> Result<(), String> {
        match event {
            InventoryEvent::InventoryInitialized { capacity, .. } => {
                if let Some(listing) = self.listing(listing_id) {
                    match capacity {
                        Capacity::Rental { units } => listing.units = Some(column(units)?),
                        Capacity::Sale { stock } => listing.stock = Some(column(stock)?),
                    }
                }
            }
            InventoryEvent::HoldPlaced {
                hold_id,
                order_id,
                request,
                expires_at,
                buffer,
            } => {
                // A rental keeps its buffer free after its end too.
                let after = buffer.map_or(chrono::Duration::zero(), |b| b.delta());
                let (start_at, end_at, quantity) = match request {
                    HoldRequest::Rental { period, quantity } => (
                        Some(period.start),
                        Some(period.end + after),
                        column(quantity)?,
                    ),
                    HoldRequest::Sale { quantity } => (None, None, column(quantity)?),
                };
                self.insert_allocation(AllocationRow {
                    listing_id,
                    allocation_id: hold_id,
                    kind: "hold".to_owned(),
                    start_at,
                    end_at,
                    quantity: Some(quantity),
                    expires_at: Some(expires_at),
                    order_id: Some(order_id),
                    tenant: tenant.to_owned(),
                })?;
                if start_at.is_none() {
                    self.adjust_stock_held(listing_id, quantity)?;
                }
            }
            InventoryEvent::HoldConfirmed { hold_id } => {
                self.set_kind((listing_id, hold_id), "booking");
            }
            InventoryEvent::HoldReinstated { hold_id } => {
                if let Some((was, quantity, sale)) = self.set_kind((listing_id, hold_id), "hold") {
                    if sale && matches!(was.as_str(), "released" | "expired") {
                        self.adjust_stock_held(listing_id, quantity)?;
                    }
                }
            }
            InventoryEvent::HoldReleased { hold_id, .. } => {
                self.release((listing_id, hold_id), "released")?
            }
            InventoryEvent::HoldExpired { hold_id } => {
                self.release((listing_id, hold_id), "expired")?
            }
            InventoryEvent::ReturnRecorded {
                hold_id,
                returned_at,
            } => {
                // The units are free again from the return (never before the
                // start). As SQL's least/greatest: a missing bound is ignored.
                if let Some(row) = self.allocation((listing_id, hold_id)) {
                    let from = row.start_at.map_or(returned_at, |s| s.max(returned_at));
                    row.end_at = Some(row.end_at.map_or(from, |e| e.min(from)));
                }
            }
            // Out past its end: the unit is in use until it is returned.
            InventoryEvent::HoldOverdue { hold_id } => {
                if let Some(row) = self.allocation((listing_id, hold_id)) {
                    row.end_at = Some(domain::latest());
                }
            }
            InventoryEvent::ScheduleSet { schedule, .. } => {
                let shown = serde_json::to_value(&schedule).map_err(|e| e.to_string())?;
                if let Some(listing) = self.listing(listing_id) {
                    listing.schedule = Some(shown);
                }
            }
            InventoryEvent::BlackoutAdded {
                blackout_id,
                period,
                units,
                ..
            } => self.insert_allocation(AllocationRow {
                listing_id,
                allocation_id: blackout_id,
                kind: "blackout".to_owned(),
                start_at: Some(period.start),
                end_at: Some(period.end),
                quantity: units.map(column).transpose()?,
                expires_at: None,
                order_id: None,
                tenant: tenant.to_owned(),
            })?,
            InventoryEvent::BlackoutRemoved { blackout_id } => {
                let key = (listing_id, blackout_id);
                if let Some(slot) = self.allocations.get_mut(&key) {
                    if slot.take().is_some() {
                        self.changed_allocations.push(key);
                    }
                }
            }
            InventoryEvent::UnitsChanged { units } => {
                if let Some(listing) = self.listing(listing_id) {
                    listing.units = Some(column(units)?);
                }
            }
            InventoryEvent::ChangeHeld {
                hold_id,
                change_id,
                period,
                expires_at,
            } => self.hold_change(listing_id, hold_id, change_id, period, expires_at)?,
            // The hold moves (its buffer after it); the change's row goes.
            InventoryEvent::ChangeApplied {
                hold_id,
                change_id,
                period,
                buffer,
            } => {
                if let Some(row) = self.allocation((listing_id, hold_id)) {
                    row.start_at = Some(period.start);
                    row.end_at =
                        Some(period.end + buffer.map_or(chrono::Duration::zero(), |b| b.delta()));
                }
                self.release((listing_id, change_id), "released")?;
            }
            InventoryEvent::ChangeLapsed { change_id, .. } => {
                self.release((listing_id, change_id), "expired")?
            }
            InventoryEvent::StockAdjusted { delta, .. } => {
                if let Some(listing) = self.listing(listing_id) {
                    listing.stock = listing
                        .stock
                        .map(|s| {
                            i64::from(s)
                                .checked_add(delta)
                                .and_then(|stock| i32::try_from(stock).ok())
                                .ok_or_else(|| {
                                    format!("stock {s} adjusted by {delta} is out of range")
                                })
                        })
                        .transpose()?;
                }
            }
        }
        Ok(())
    }
}

/// A count of an event as an `int` column.
fn column(count: u32) -> Result<i32, String> {
    i32::try_from(count).map_err(|_| format!("{count} is out of range"))
}

/// The allocations an inventory event names.
fn allocations_of(event: &InventoryEvent) -> Vec<Uuid> {
    match event {
        // A change names its hold and the row of its extra instants.
        InventoryEvent::ChangeHeld {
            hold_id, change_id, ..
        }
        | InventoryEvent::ChangeApplied {
            hold_id, change_id, ..
        }
        | InventoryEvent::ChangeLapsed { hold_id, change_id } => vec![*hold_id, *change_id],
        other => allocation_of(other).into_iter().collect(),
    }
}

/// The allocation an inventory event names, if any.
fn allocation_of(event: &InventoryEvent) -> Option<Uuid> {
    match event {
        InventoryEvent::HoldPlaced { hold_id, .. }
        | InventoryEvent::HoldConfirmed { hold_id }
        | InventoryEvent::HoldReinstated { hold_id }
        | InventoryEvent::HoldReleased { hold_id, .. }
        | InventoryEvent::HoldExpired { hold_id }
        | InventoryEvent::ReturnRecorded { hold_id, .. }
        | InventoryEvent::HoldOverdue { hold_id } => Some(*hold_id),
        InventoryEvent::BlackoutAdded { blackout_id, .. }
        | InventoryEvent::BlackoutRemoved { blackout_id } => Some(*blackout_id),
        _ => None,
    }
}

async fn apply_batch(tx: &mut PgConnection, events: &[EventEnvelope]) -> Result<(), Error> {
    // Decode, and note the rows the batch touches.
    let mut changes = Vec::new();
    let mut listing_ids = Vec::new();
    let mut allocation_keys = Vec::new();
    for event in events {
        let change = match crate::decode(event, &[Aggregate::Listing, Aggregate::Inventory])? {
            Some(Event::Listing(listing)) => Change::Listing(listing),
            Some(Event::Inventory(inventory)) => Change::Inventory(inventory),
            _ => continue,
        };
        let id = Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))?;
        listing_ids.push(id);
        if let Change::Inventory(inventory) = &change {
            for allocation in allocations_of(inventory) {
                allocation_keys.push((id, allocation));
            }
        }
        changes.push((event, id, change));
    }
    if changes.is_empty() {
        return Ok(());
    }
    listing_ids.sort_unstable();
    listing_ids.dedup();
    allocation_keys.sort_unstable();
    allocation_keys.dedup();

    let mut rows = table::load(tx, &listing_ids, &allocation_keys).await?;
    for (event, id, change) in changes {
        rows.apply(&event.tenant, id, event.recorded_at, change)
            .map_err(|reason| Error::apply(event, reason))?;
    }
    table::store(tx, rows).await
}

mod table;
#[cfg(test)]
mod tests;
