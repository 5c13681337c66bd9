//! The availability tables as the projector reads and writes them:
//! the rows a batch touches, read in two statements, and what changed,
//! written back set-wise (upserts and deletes over arrays).

use sqlx::PgConnection;
use uuid::Uuid;

use super::{AllocationKey, AllocationRow, ListingRow, Rows};
use crate::Error;

const LISTING_COLUMNS: &str = "listing_id, vendor_id, title, description, category, kind, status,
     pricing_unit, price, deposit, units, stock, stock_held, created_at, updated_at, schedule,
     policies, tenant";
const ALLOCATION_COLUMNS: &str =
    "listing_id, allocation_id, kind, start_at, end_at, quantity, expires_at, order_id, tenant";

pub(super) async fn load(
    tx: &mut PgConnection,
    listing_ids: &[Uuid],
    allocation_keys: &[AllocationKey],
) -> Result<Rows, Error> {
    let mut rows = Rows {
        listings: listing_ids.iter().map(|id| (*id, None)).collect(),
        allocations: allocation_keys.iter().map(|key| (*key, None)).collect(),
        ..Rows::default()
    };
    let listings: Vec<ListingRow> = sqlx::query_as(&format!(
        "SELECT {LISTING_COLUMNS} FROM rm_listings WHERE listing_id = ANY($1)"
    ))
    .bind(listing_ids)
    .fetch_all(&mut *tx)
    .await?;
    for listing in listings {
        rows.listings.insert(listing.listing_id, Some(listing));
    }
    if !allocation_keys.is_empty() {
        let (listings, allocations): (Vec<Uuid>, Vec<Uuid>) =
            allocation_keys.iter().copied().unzip();
        let found: Vec<AllocationRow> = sqlx::query_as(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM rm_allocations
              WHERE (listing_id, allocation_id) IN
                    (SELECT * FROM unnest($1::uuid[], $2::uuid[]))"
        ))
        .bind(&listings)
        .bind(&allocations)
        .fetch_all(&mut *tx)
        .await?;
        for allocation in found {
            let key = (allocation.listing_id, allocation.allocation_id);
            rows.allocations.insert(key, Some(allocation));
        }
    }
    Ok(rows)
}

pub(super) async fn store(tx: &mut PgConnection, mut rows: Rows) -> Result<(), Error> {
    rows.changed_listings.sort_unstable();
    rows.changed_listings.dedup();
    let listings: Vec<&ListingRow> = rows
        .changed_listings
        .iter()
        .filter_map(|id| rows.listings.get(id)?.as_ref())
        .collect();
    if !listings.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO rm_listings ({LISTING_COLUMNS})
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::numeric[],
                                  $10::numeric[], $11::int[], $12::int[], $13::int[],
                                  $14::timestamptz[], $15::timestamptz[], $16::jsonb[],
                                  $17::jsonb[], $18::text[])
             ON CONFLICT (listing_id) DO UPDATE SET
                 status = EXCLUDED.status, price = EXCLUDED.price, units = EXCLUDED.units,
                 stock = EXCLUDED.stock, stock_held = EXCLUDED.stock_held,
                 updated_at = EXCLUDED.updated_at, schedule = EXCLUDED.schedule,
                 policies = EXCLUDED.policies"
        ))
        .bind(listings.iter().map(|l| l.listing_id).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.vendor_id).collect::<Vec<_>>())
        .bind(
            listings
                .iter()
                .map(|l| l.title.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            listings
                .iter()
                .map(|l| l.description.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            listings
                .iter()
                .map(|l| l.category.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(listings.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>())
        .bind(
            listings
                .iter()
                .map(|l| l.status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            listings
                .iter()
                .map(|l| l.pricing_unit.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(listings.iter().map(|l| l.price).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.deposit).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.units).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.stock).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.stock_held).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.created_at).collect::<Vec<_>>())
        .bind(listings.iter().map(|l| l.updated_at).collect::<Vec<_>>())
        .bind(
            listings
                .iter()
                .map(|l| l.schedule.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            listings
                .iter()
                .map(|l| l.policies.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            listings
                .iter()
                .map(|l| l.tenant.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
    }

    rows.changed_allocations.sort_unstable();
    rows.changed_allocations.dedup();
    let mut kept = Vec::new();
    let mut removed = Vec::new();
    for key in &rows.changed_allocations {
        match rows.allocations.get(key) {
            Some(Some(row)) => kept.push(row),
            _ => removed.push(*key),
        }
    }
    if !removed.is_empty() {
        let (listings, allocations): (Vec<Uuid>, Vec<Uuid>) = removed.into_iter().unzip();
        sqlx::query(
            "DELETE FROM rm_allocations
              WHERE (listing_id, allocation_id) IN
                    (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
        )
        .bind(&listings)
        .bind(&allocations)
        .execute(&mut *tx)
        .await?;
    }
    if !kept.is_empty() {
        sqlx::query(&format!(
            "INSERT INTO rm_allocations ({ALLOCATION_COLUMNS})
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[],
                                  $5::timestamptz[], $6::int[], $7::timestamptz[], $8::uuid[],
                                  $9::text[])
             ON CONFLICT (listing_id, allocation_id) DO UPDATE SET
                 kind = EXCLUDED.kind, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
                 quantity = EXCLUDED.quantity, expires_at = EXCLUDED.expires_at,
                 order_id = EXCLUDED.order_id"
        ))
        .bind(kept.iter().map(|a| a.listing_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.allocation_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.kind.as_str()).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.start_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.end_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.quantity).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.expires_at).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.order_id).collect::<Vec<_>>())
        .bind(kept.iter().map(|a| a.tenant.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
