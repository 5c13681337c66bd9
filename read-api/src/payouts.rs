//! `GET /v1/vendors/{id}/payouts`: a vendor's payouts and where each stands
//! (`requested`, `paid`, `failed`), from the ledger read model's
//! `ledger_payouts` (projectors `ledger::payouts`).

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::{ApiQuery, Ids};
use ledger_http::money::money;
use ledger_http::{ApiError, Principal, Role};
use projectors::ledger;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::freshness::{self, AtPosition, MinPosition};
use crate::page::{self, Page};
use crate::ReadState;

const MODELS: &[&str] = &[ledger::NAME];

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PayoutsParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Payout {
    payout_id: Uuid,
    vendor_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    amount: String,
    #[schema(value_type = String, example = "paid")]
    status: String,
    /// The provider's reason, for a failed payout.
    #[serde(skip_serializing_if = "Option::is_none")]
    failure_reason: Option<String>,
    requested_at: DateTime<Utc>,
    /// When it was paid or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    settled_at: Option<DateTime<Utc>>,
}

type PayoutRow = (
    Uuid,
    Uuid,
    Decimal,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

#[utoipa::path(get, path = "/v1/vendors/{vendor_id}/payouts", tag = "queries", params(("vendor_id" = Uuid, Path, description = "Vendor id"), PayoutsParams), responses((status = 200, description = "A page of the vendor's payouts, oldest first", body = crate::schema::PayoutPage, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn list(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([vendor_id]): Ids<1>,
    ApiQuery(params): ApiQuery<PayoutsParams>,
) -> Result<AtPosition<Json<Page<Payout>>>, ApiError> {
    principal.require(&[Role::Vendor, Role::Admin])?;
    principal.require_vendor_or_admin(vendor_id)?;
    let limit = page::limit(params.limit)?;
    let cursor = page::cursor(params.cursor.as_deref())?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    Ok(AtPosition(
        reached,
        vendor_payouts(&app, &principal.tenant, vendor_id, cursor, limit)
            .await
            .map(Json),
    ))
}

/// Payouts requested in `[from, to)` by status: `{status, count, amount}`
/// for each status that has any (the analytics summary's `payouts`), of
/// `tenant`'s vendors.
pub async fn by_status(
    pool: &sqlx::PgPool,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<PayoutsByStatus>, sqlx::Error> {
    let rows: Vec<(String, i64, Decimal)> = sqlx::query_as(
        "SELECT status, count(*), coalesce(sum(amount), 0) FROM ledger_payouts
          WHERE requested_at >= $1 AND requested_at < $2 AND tenant = $3
          GROUP BY status ORDER BY status",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(status, count, amount)| PayoutsByStatus {
            status,
            count,
            amount: money(amount),
        })
        .collect())
}

/// Payouts of one status in the analytics summary.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutsByStatus {
    /// `requested`, `paid` or `failed`.
    #[schema(example = "paid")]
    status: String,
    count: i64,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    amount: String,
}

/// Another tenant's vendor is not found.
async fn vendor_payouts(
    app: &ReadState,
    tenant: &str,
    vendor_id: Uuid,
    cursor: Option<Uuid>,
    limit: i64,
) -> Result<Page<Payout>, ApiError> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_vendor_earnings WHERE vendor_id = $1 AND tenant = $2)",
    )
    .bind(vendor_id)
    .bind(tenant)
    .fetch_one(&app.pool)
    .await?;
    if !known {
        return Err(ApiError::NotFound("vendor".to_owned()));
    }
    // Payout ids are UUIDv7: their order is the order they were requested.
    let rows: Vec<PayoutRow> = sqlx::query_as(
        "SELECT payout_id, vendor_id, amount, status, failure_reason, requested_at, settled_at
           FROM ledger_payouts
          WHERE vendor_id = $1 AND ($2::uuid IS NULL OR payout_id > $2) AND tenant = $4
          ORDER BY payout_id LIMIT $3",
    )
    .bind(vendor_id)
    .bind(cursor)
    .bind(limit + 1)
    .bind(tenant)
    .fetch_all(&app.pool)
    .await?;
    let items = rows
        .into_iter()
        .map(
            |(payout_id, vendor_id, amount, status, failure_reason, requested_at, settled_at)| {
                Payout {
                    payout_id,
                    vendor_id,
                    amount: money(amount),
                    status,
                    failure_reason,
                    requested_at,
                    settled_at,
                }
            },
        )
        .collect();
    Ok(page::page(items, limit, |p| p.payout_id))
}
