//! `GET /v1/listings`, `GET /v1/listings/{id}` and
//! `GET /v1/listings/{id}/availability`, from the availability read model.
//!
//! Customers, analysts and auditors see published listings; a vendor also
//! sees its own drafts and archived listings; an admin sees everything.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::{ApiQuery, Ids};
use ledger_http::{ApiError, Principal, Role};
use projectors::availability;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use uuid::Uuid;

use crate::freshness::{self, AtPosition, MinPosition};
use crate::page::{self, Page};
use crate::ReadState;

const MODELS: &[&str] = &[availability::NAME];
/// Longest period an availability query may span.
const MAX_PERIOD_DAYS: i64 = 400;
/// Most rows one search fetches at once while refilling a page whose rows
/// the schedules left out.
const SCHEDULE_BATCH_MAX: i64 = 1000;

#[derive(FromRow)]
struct ListingRow {
    listing_id: Uuid,
    vendor_id: Uuid,
    title: String,
    description: String,
    category: String,
    kind: String,
    status: String,
    pricing_unit: Option<String>,
    price: Decimal,
    deposit: Option<Decimal>,
    units: Option<i32>,
    stock: Option<i32>,
    stock_held: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    schedule: Option<serde_json::Value>,
    policies: Option<serde_json::Value>,
}

/// A listing with its allocations over a period, as parallel arrays
/// (`None` when there are none).
#[derive(FromRow)]
struct ListingWithAllocations {
    #[sqlx(flatten)]
    listing: ListingRow,
    starts: Option<Vec<DateTime<Utc>>>,
    ends: Option<Vec<DateTime<Utc>>>,
    quantities: Option<Vec<Option<i32>>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingView {
    listing_id: Uuid,
    vendor_id: Uuid,
    title: String,
    description: String,
    category: String,
    kind: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    price_per_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    deposit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    units: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    unit_price: Option<String>,
    /// Sale listings: units free to buy now.
    #[serde(skip_serializing_if = "Option::is_none")]
    stock: Option<i32>,
    /// Rental listings: opening hours and booking rules (API.md "Rentals"),
    /// absent when open all the time.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    schedule: Option<serde_json::Value>,
    /// Rental listings: `late_fee_per_unit` and `cancellation_policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    policies: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<ListingRow> for ListingView {
    fn from(row: ListingRow) -> Self {
        let rental = row.kind == "rental";
        let money = ledger_http::money::money;
        Self {
            listing_id: row.listing_id,
            vendor_id: row.vendor_id,
            title: row.title,
            description: row.description,
            category: row.category,
            kind: row.kind,
            status: row.status,
            pricing_unit: row.pricing_unit,
            price_per_unit: rental.then(|| money(row.price)),
            deposit: row.deposit.filter(|_| rental).map(money),
            units: row.units.filter(|_| rental),
            unit_price: (!rental).then(|| money(row.price)),
            stock: row
                .stock
                .filter(|_| !rental)
                .map(|s| (s - row.stock_held).max(0)),
            schedule: row.schedule,
            policies: row.policies,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const LISTING_COLUMNS: &str = "listing_id, vendor_id, title, description, category, kind, status, \
     pricing_unit, price, deposit, units, stock, stock_held, created_at, updated_at, schedule, \
     policies";

/// SQL condition: the listing is visible to the principal (`$1` = its
/// vendor id, if any; `$tenant` = its tenant). Another tenant's listings
/// are never visible: by id they answer 404, like a missing one.
fn visibility(principal: &Principal, tenant: u8) -> String {
    let role = match principal.role {
        Role::Admin => "TRUE",
        Role::Vendor => "(status = 'published' OR vendor_id = $1)",
        _ => "status = 'published'",
    };
    format!("tenant = ${tenant} AND {role}")
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    q: Option<String>,
    category: Option<String>,
    vendor_id: Option<Uuid>,
    available_from: Option<DateTime<Utc>>,
    available_to: Option<DateTime<Utc>>,
    quantity: Option<i32>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/listings", tag = "queries", params(SearchParams), responses((status = 200, description = "A page of listings; with a period, only those free for the whole of it", body = crate::schema::ListingPage, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn search(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<Page<ListingView>>), ApiError> {
    crate::in_a_tenant(&principal)?;
    let limit = page::limit(params.limit)?;
    let cursor = page::cursor(params.cursor.as_deref())?;
    let quantity = params.quantity.unwrap_or(1);
    if quantity < 1 {
        return Err(ledger_http::invalid("quantity", "must be at least 1"));
    }
    let period = match (params.available_from, params.available_to) {
        (None, None) => None,
        (Some(from), Some(to)) => Some(check_period(from, to, "available_to")?),
        _ => {
            return Err(ledger_http::invalid(
                "available_to",
                "available_from and available_to go together",
            ))
        }
    };
    let reached = freshness::wait_for(&app, MODELS, min).await?;

    // $1 vendor of the principal, $2 cursor, $3 limit + 1, $4 q, $5 category,
    // $6 vendor filter, $7 from, $8 to, $9 quantity, $10 now (the clock's:
    // a hold counts until its expiry by the ledger's time, not the
    // database's), $11 the principal's tenant.
    let q = params.q.filter(|q| !q.trim().is_empty());
    let filters = format!(
        "{} AND ($2::uuid IS NULL OR listing_id > $2)
           AND ($4::text IS NULL OR search @@ plainto_tsquery('simple', $4))
           AND ($5::text IS NULL OR category = $5)
           AND ($6::uuid IS NULL OR vendor_id = $6)",
        visibility(&principal, 11)
    );
    let sql = match (period, &q) {
        // Words and a period: the words first (the text index), then the
        // period for what they matched. Left to itself the planner walks
        // every listing in id order testing both (0.5 s over 100,000
        // listings for a word that matches none).
        (Some(_), Some(_)) => format!(
            "WITH matches AS MATERIALIZED (SELECT * FROM rm_listings WHERE {filters})
             SELECT {LISTING_COLUMNS} FROM matches l WHERE {FREE_FOR_PERIOD}
              ORDER BY listing_id LIMIT $3"
        ),
        (Some(_), None) => format!(
            "SELECT {LISTING_COLUMNS} FROM rm_listings l WHERE {filters} AND {FREE_FOR_PERIOD}
              ORDER BY listing_id LIMIT $3"
        ),
        (None, _) => format!(
            "SELECT {LISTING_COLUMNS} FROM rm_listings l WHERE {filters}
              ORDER BY listing_id LIMIT $3"
        ),
    };
    // Unnamed (not prepared): the optional filters need a plan made for
    // these parameters. A generic plan, which PostgreSQL switches a prepared
    // statement to after five runs, cannot use the text index for
    // `$4 IS NULL OR …`: a search over 100,000 listings went from 4 ms to
    // over a second.
    //
    // With a period, a rental listing whose schedule refuses it is left out
    // (`Schedule::check`, as the Inventory judges a hold), so a page may
    // need more than one batch of rows to fill.
    let now = app.clock.now();
    let mut kept: Vec<ListingRow> = Vec::new();
    let mut after = cursor;
    let mut batch = limit + 1;
    loop {
        let rows: Vec<ListingRow> = sqlx::query_as(&sql)
            .persistent(false)
            .bind(principal.vendor_id)
            .bind(after)
            .bind(batch)
            .bind(&q)
            .bind(&params.category)
            .bind(params.vendor_id)
            .bind(period.map(|p| p.0))
            .bind(period.map(|p| p.1))
            .bind(quantity)
            .bind(now)
            .bind(&principal.tenant)
            .fetch_all(&app.pool)
            .await?;
        let full = rows.len() as i64 == batch;
        after = rows.last().map(|r| r.listing_id).or(after);
        match period {
            None => kept.extend(rows),
            Some((from, to)) => kept.extend(
                rows.into_iter()
                    .filter(|r| schedule::allows(r, from, to, now)),
            ),
        }
        if !full || kept.len() as i64 > limit {
            break;
        }
        batch = (batch * 2).min(SCHEDULE_BATCH_MAX);
    }
    kept.truncate(usize::try_from(limit + 1).unwrap_or(usize::MAX));
    let page = page::page(
        kept.into_iter().map(ListingView::from).collect(),
        limit,
        |l| l.listing_id,
    );
    Ok(([freshness::header_value(reached)], Json(page)))
}

/// A listing free for the whole of [$7, $8) in quantity $9: sale stock
/// suffices, or no instant of the period (its start, or the start of any
/// allocation inside it) uses more than `units - $9`; a hold counts until
/// its expiry passes $10 (now).
const FREE_FOR_PERIOD: &str = "(
    (kind = 'sale' AND stock - stock_held >= $9)
 OR (kind = 'rental' AND units - $9 >= coalesce((
        SELECT max(used) FROM (
            SELECT (SELECT coalesce(sum(coalesce(a.quantity, l.units)), 0)
                      FROM rm_allocations a
                     WHERE a.listing_id = l.listing_id
                       AND a.start_at <= t.at AND a.end_at > t.at
                       AND (a.kind IN ('booking', 'blackout')
                            OR (a.kind = 'hold' AND a.expires_at > $10))) AS used
              FROM (SELECT $7::timestamptz AS at
                    UNION
                    SELECT a.start_at FROM rm_allocations a
                     WHERE a.listing_id = l.listing_id
                       AND a.start_at > $7 AND a.start_at < $8) AS t
        ) AS usage), 0)))";

fn check_period(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    field: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let (from_field, to_field) = match field {
        "available_to" => ("available_from", "available_to"),
        _ => ("from", "to"),
    };
    // The range periods may touch (domain::period), named in the message.
    let out_of_range: Vec<domain::FieldError> = [(from_field, from), (to_field, to)]
        .into_iter()
        .filter_map(|(name, t)| domain::check_in_range(name, t).err())
        .collect();
    if !out_of_range.is_empty() {
        return Err(ApiError::Validation(out_of_range));
    }
    if to <= from {
        return Err(ledger_http::invalid(field, "must be after the start"));
    }
    if to - from > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(ledger_http::invalid(
            field,
            format!("a period spans at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    Ok((from, to))
}

async fn visible_listing(
    app: &ReadState,
    principal: &Principal,
    listing_id: Uuid,
) -> Result<ListingRow, ApiError> {
    let sql = format!(
        "SELECT {LISTING_COLUMNS} FROM rm_listings WHERE listing_id = $2 AND {}",
        visibility(principal, 3)
    );
    sqlx::query_as(&sql)
        .bind(principal.vendor_id)
        .bind(listing_id)
        .bind(&principal.tenant)
        .fetch_optional(&app.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound("listing".to_owned()))
}

#[utoipa::path(get, path = "/v1/listings/{listing_id}", tag = "queries", params(("listing_id" = Uuid, Path, description = "Listing id")), responses((status = 200, description = "The listing", body = ListingView, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn detail(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([listing_id]): Ids<1>,
) -> Result<AtPosition<Json<ListingView>>, ApiError> {
    crate::in_a_tenant(&principal)?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let row = visible_listing(&app, &principal, listing_id).await;
    Ok(AtPosition(reached, row.map(|row| Json(row.into()))))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityParams {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    quantity: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Slot {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    free: i64,
    /// Outside the listing's opening hours (then `free` is 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    closed: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Availability {
    listing_id: Uuid,
    kind: String,
    units: i64,
    available: bool,
    free_min: i64,
    slots: Vec<Slot>,
}

#[utoipa::path(get, path = "/v1/listings/{listing_id}/availability", tag = "queries", params(("listing_id" = Uuid, Path, description = "Listing id"), AvailabilityParams), responses((status = 200, description = "Free units in each maximal sub-period of constant availability", body = Availability, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn availability(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([listing_id]): Ids<1>,
    ApiQuery(params): ApiQuery<AvailabilityParams>,
) -> Result<AtPosition<Json<Availability>>, ApiError> {
    crate::in_a_tenant(&principal)?;
    let (from, to) = check_period(params.from, params.to, "to")?;
    let quantity = i64::from(params.quantity.unwrap_or(1));
    if quantity < 1 {
        return Err(ledger_http::invalid("quantity", "must be at least 1"));
    }
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let answer = free_units(&app, &principal, listing_id, from, to, quantity).await;
    Ok(AtPosition(reached, answer.map(Json)))
}

async fn free_units(
    app: &ReadState,
    principal: &Principal,
    listing_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    quantity: i64,
) -> Result<Availability, ApiError> {
    // The listing and, for a rental, its allocations over the period, in
    // one statement: the query route's whole cost is its round trips.
    let sql = format!(
        "SELECT {LISTING_COLUMNS}, a.starts, a.ends, a.quantities
           FROM rm_listings l
           LEFT JOIN LATERAL (
               SELECT array_agg(greatest(start_at, $3)) AS starts,
                      array_agg(least(end_at, $4)) AS ends,
                      array_agg(quantity) AS quantities
                 FROM rm_allocations
                WHERE l.kind = 'rental' AND listing_id = l.listing_id
                  AND start_at < $4 AND end_at > $3
                  AND (kind IN ('booking', 'blackout') OR (kind = 'hold' AND expires_at > $5))
           ) a ON TRUE
          WHERE l.listing_id = $2 AND {}",
        visibility(principal, 6)
    );
    let found: Option<ListingWithAllocations> = sqlx::query_as(&sql)
        .bind(principal.vendor_id)
        .bind(listing_id)
        .bind(from)
        .bind(to)
        .bind(app.clock.now())
        .bind(&principal.tenant)
        .fetch_optional(&app.pool)
        .await?;
    let ListingWithAllocations {
        listing,
        starts,
        ends,
        quantities,
    } = found.ok_or_else(|| ApiError::NotFound("listing".to_owned()))?;
    let answer = if listing.kind == "sale" {
        let free = i64::from(listing.stock.unwrap_or(0) - listing.stock_held).max(0);
        Availability {
            listing_id,
            kind: listing.kind,
            units: free,
            available: free >= quantity,
            free_min: free,
            slots: vec![Slot {
                start: from,
                end: to,
                free,
                closed: false,
            }],
        }
    } else {
        let units = i64::from(listing.units.unwrap_or(0));
        let allocations: Vec<(DateTime<Utc>, DateTime<Utc>, Option<i32>)> = starts
            .unwrap_or_default()
            .into_iter()
            .zip(ends.unwrap_or_default())
            .zip(quantities.unwrap_or_default())
            .map(|((start, end), quantity)| (start, end, quantity))
            .collect();
        let mut slots = slots(from, to, units, &allocations);
        // Where the schedule is shut nothing can be booked: free 0, closed.
        let schedule = listing
            .schedule
            .as_ref()
            .and_then(|s| serde_json::from_value::<domain::Schedule>(s.clone()).ok());
        if let Some(schedule) = schedule {
            slots = close_outside(slots, &schedule.open_intervals(from, to));
        }
        let free_min = slots.iter().map(|s| s.free).min().unwrap_or(units);
        Availability {
            listing_id,
            kind: listing.kind,
            units,
            available: free_min >= quantity,
            free_min,
            slots,
        }
    };
    Ok(answer)
}

mod schedule;
mod slots;
use slots::{close_outside, slots};
