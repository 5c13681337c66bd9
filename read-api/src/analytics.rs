//! `GET /v1/analytics/summary` and `GET /v1/analytics/revenue`, from the
//! analytics facts.
//!
//! Definitions (all amounts to the cent; the window is `[from, to)`, UTC):
//! - `orders`: orders placed in the window;
//! - `gmv`: Σ subtotal of those orders that were paid and are not cancelled
//!   or refunded, each as changed by its confirmed adjustments (extensions,
//!   reschedules, early-pickup extensions); `avg_order_value` = gmv ÷ their
//!   number;
//! - `cancellation_rate`: cancelled or refunded ÷ placed;
//! - `refunds`: Σ refunded on orders placed in the window;
//! - `rental_days`: booked unit-days of paid rental lines inside the window
//!   (only the part of each rental period that falls in it), each period as
//!   its confirmed adjustments left it and ending at an early return;
//! - `utilization`: that booked unit-time ÷ the unit-time rental listings
//!   offered in the window (from their creation);
//! - `top_listings`: the ten listings with the most GMV;
//! - `payment_failures`: failed payments in the window by reason;
//!   `payment_failures_by_code` and `payment_failures_by_decline_code`: the
//!   same failures by the provider's `code` and `decline_code` (`null`: the
//!   provider gave none, or the failure predates their being kept);
//! - `payouts`: payouts requested in the window by where they stand now
//!   (`requested`, `paid`, `failed`), counted and summed (ledger read model,
//!   `crate::payouts`).
//! - `mrr`, `active_subscriptions`, `churn_rate`, `past_due`: see
//!   `crate::subscription_metrics` (subscriptions read model);
//!   `instalments_overdue` (and `_count`): leases' instalments overdue now
//!   (orders read model).
//!
//! Revenue buckets group the same paid orders by the day, week (Monday) or
//! month they were placed, optionally per vendor or category; a bucket's
//! `platform_fees` sums each line's exact share of its vendor's fee, rounded
//! to the cent per bucket.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::ApiQuery;
use ledger_http::money::money;
use ledger_http::{ApiError, Principal, Role};
use projectors::analytics;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::freshness::{self, MinPosition};
use crate::ReadState;

const MODELS: &[&str] = &[analytics::NAME];
/// The summary reads the payouts of the ledger read model too.
const SUMMARY_MODELS: &[&str] = &[
    analytics::NAME,
    projectors::ledger::NAME,
    projectors::subscriptions::NAME,
    projectors::orders::NAME,
];

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// The window asked for; without `to`, ten years past `now`.
fn window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    // A window given lies in the range every instant of the API does
    // (domain::period): year -5000 would reach PostgreSQL as an error.
    let out_of_range: Vec<domain::FieldError> = [("from", from), ("to", to)]
        .into_iter()
        .filter_map(|(field, t)| domain::check_in_range(field, t?).err())
        .collect();
    if !out_of_range.is_empty() {
        return Err(ApiError::Validation(out_of_range));
    }
    let from = from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let to = to.unwrap_or_else(|| now + chrono::Duration::days(3660));
    if to <= from {
        return Err(ledger_http::invalid("to", "must be after from"));
    }
    Ok((from, to))
}

fn ratio(numerator: Decimal, denominator: Decimal) -> Decimal {
    if denominator.is_zero() {
        Decimal::ZERO
    } else {
        (numerator / denominator).round_dp(4)
    }
}

#[utoipa::path(get, path = "/v1/analytics/summary", tag = "analytics", params(SummaryParams), responses((status = 200, description = "Sales, rentals and payment failures in the window", body = crate::schema::AnalyticsSummary, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn summary(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<Value>), ApiError> {
    principal.require(&[Role::Analyst, Role::Admin])?;
    let (from, to) = window(params.from, params.to, app.clock.now())?;
    let reached = freshness::wait_for(&app, SUMMARY_MODELS, min).await?;
    let pool = &app.pool;
    // Every figure is the principal's tenant's (issue 15): each fact
    // records its event's tenant.
    let tenant = principal.tenant.as_str();

    let (orders, gmv, paid, cancelled, refunds): (i64, Decimal, i64, i64, Decimal) =
        sqlx::query_as(
            "SELECT count(*),
                    coalesce(sum(subtotal) FILTER (WHERE paid AND NOT cancelled), 0),
                    count(*) FILTER (WHERE paid AND NOT cancelled),
                    count(*) FILTER (WHERE cancelled),
                    coalesce(sum(refunded), 0)
               FROM an_orders WHERE placed_at >= $1 AND placed_at < $2 AND tenant = $3",
        )
        .bind(from)
        .bind(to)
        .bind(tenant)
        .fetch_one(pool)
        .await?;
    // API.md "Money": disputes open and lost, and unapplied cash held, of
    // the orders placed in the window.
    let (disputed, disputes_lost, unapplied): (Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT coalesce(sum(disputed), 0), coalesce(sum(disputes_lost), 0),
                coalesce(sum(unapplied), 0)
           FROM an_orders WHERE placed_at >= $1 AND placed_at < $2 AND tenant = $3",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_one(pool)
    .await?;

    // Booked unit-seconds of paid rental lines inside the window, and the
    // unit-seconds rental listings offered in it.
    let (booked, offered): (Decimal, Decimal) = sqlx::query_as(
        "SELECT
            (SELECT coalesce(sum(l.quantity * greatest(0, extract(epoch FROM
                        least(l.end_at, $2) - greatest(l.start_at, $1)))), 0)
               FROM an_order_lines l JOIN an_orders o USING (order_id)
              WHERE l.kind = 'rental' AND o.paid AND NOT o.cancelled
                AND l.start_at < $2 AND l.end_at > $1 AND o.tenant = $3)::numeric,
            (SELECT coalesce(sum(units * greatest(0, extract(epoch FROM $2 - greatest($1, created_at)))), 0)
               FROM an_listings WHERE kind = 'rental' AND created_at < $2 AND tenant = $3)::numeric",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_one(pool)
    .await?;

    let top: Vec<(Uuid, String, Decimal, i64)> = sqlx::query_as(
        "SELECT l.listing_id, max(l.title), sum(l.subtotal), count(DISTINCT l.order_id)
           FROM an_order_lines l JOIN an_orders o USING (order_id)
          WHERE o.paid AND NOT o.cancelled AND o.placed_at >= $1 AND o.placed_at < $2
            AND o.tenant = $3
          GROUP BY l.listing_id
          ORDER BY sum(l.subtotal) DESC, l.listing_id
          LIMIT 10",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_all(pool)
    .await?;

    let failures: Vec<(String, i64)> = sqlx::query_as(
        "SELECT reason, count(*) FROM an_payment_failures
          WHERE failed_at >= $1 AND failed_at < $2 AND tenant = $3
          GROUP BY reason ORDER BY count(*) DESC, reason",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    // Late returns (API.md "Rentals"): lines that went overdue in the
    // window, and the late fees of the returns in it (with the part the
    // deposits did not cover, owed by customers).
    let (overdue_lines, late_fees, late_fees_owed): (i64, Decimal, Decimal) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE overdue_at >= $1 AND overdue_at < $2),
                coalesce(sum(late_fee) FILTER (WHERE returned_at >= $1 AND returned_at < $2), 0),
                coalesce(sum(late_fee_owed) FILTER (WHERE returned_at >= $1 AND returned_at < $2), 0)
           FROM an_rental_returns WHERE tenant = $3",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let by_code = failures_by(pool, tenant, "code", from, to).await?;
    let by_decline_code = failures_by(pool, tenant, "decline_code", from, to).await?;
    let payouts = crate::payouts::by_status(pool, tenant, from, to).await?;
    let subscriptions = crate::subscription_metrics::figures(pool, tenant, from, to).await?;
    let (overdue_count, overdue_amount) =
        crate::subscription_metrics::instalments_overdue(pool, tenant).await?;

    let body = json!({
        "from": from,
        "to": to,
        "currency": app.currency,
        "gmv": money(gmv),
        "orders": orders,
        "paid_orders": paid,
        "avg_order_value": money(if paid == 0 { Decimal::ZERO } else { gmv / Decimal::from(paid) }),
        "cancellation_rate": ratio(Decimal::from(cancelled), Decimal::from(orders)).to_string(),
        "refunds": money(refunds),
        "disputes": {"open": money(disputed), "lost": money(disputes_lost)},
        "unapplied_cash": money(unapplied),
        "rental_days": (booked / Decimal::from(86_400)).round_dp(2).to_string(),
        "utilization": ratio(booked, offered).to_string(),
        "overdue_lines": overdue_lines,
        "late_fees": money(late_fees),
        "late_fees_owed": money(late_fees_owed),
        "top_listings": top.into_iter().map(|(listing_id, title, gmv, orders)| json!({
            "listing_id": listing_id, "title": title, "gmv": money(gmv), "orders": orders,
        })).collect::<Vec<_>>(),
        "payment_failures": failures.into_iter().map(|(reason, count)| json!({
            "reason": reason, "count": count,
        })).collect::<Vec<_>>(),
        "payment_failures_by_code": by_code.into_iter().map(|(code, count)| json!({
            "code": code, "count": count,
        })).collect::<Vec<_>>(),
        "payment_failures_by_decline_code": by_decline_code.into_iter().map(|(code, count)| json!({
            "decline_code": code, "count": count,
        })).collect::<Vec<_>>(),
        "payouts": payouts,
        "mrr": subscriptions.mrr,
        "active_subscriptions": subscriptions.active_subscriptions,
        "churn_rate": subscriptions.churn_rate,
        "past_due": subscriptions.past_due,
        "instalments_overdue": money(overdue_amount),
        "instalments_overdue_count": overdue_count,
    });
    Ok(([freshness::header_value(reached)], Json(body)))
}

/// Failed payments in `[from, to)` counted by one of the provider's codes
/// (`column` is `code` or `decline_code`, never input); most first, the
/// ones without a code last among equals.
async fn failures_by(
    pool: &sqlx::PgPool,
    tenant: &str,
    column: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Option<String>, i64)>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {column}, count(*) FROM an_payment_failures
          WHERE failed_at >= $1 AND failed_at < $2 AND tenant = $3
          GROUP BY {column} ORDER BY count(*) DESC, {column} NULLS LAST"
    ))
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_all(pool)
    .await
}

#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    #[default]
    Day,
    Week,
    Month,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    None,
    Vendor,
    Category,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RevenueParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    #[serde(default)]
    granularity: Granularity,
    #[serde(default)]
    group_by: GroupBy,
}

/// Start, key, GMV, fees and orders of one bucket.
type BucketRow = (DateTime<Utc>, Option<String>, Decimal, Decimal, i64);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Bucket {
    start: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    gmv: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    platform_fees: String,
    orders: i64,
}

#[utoipa::path(get, path = "/v1/analytics/revenue", tag = "analytics", params(RevenueParams), responses((status = 200, description = "Revenue buckets", body = crate::schema::Revenue, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn revenue(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    ApiQuery(params): ApiQuery<RevenueParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<Value>), ApiError> {
    principal.require(&[Role::Analyst, Role::Admin])?;
    let (from, to) = window(params.from, params.to, app.clock.now())?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let unit = match params.granularity {
        Granularity::Day => "day",
        Granularity::Week => "week",
        Granularity::Month => "month",
    };
    let key = match params.group_by {
        GroupBy::None => "NULL::text",
        GroupBy::Vendor => "l.vendor_id::text",
        GroupBy::Category => "l.category",
    };
    let rows: Vec<BucketRow> = sqlx::query_as(&format!(
        "SELECT date_trunc('{unit}', l.placed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS bucket,
                    {key} AS key, sum(l.subtotal), sum(l.platform_fee), count(DISTINCT l.order_id)
               FROM an_order_lines l JOIN an_orders o USING (order_id)
              WHERE o.paid AND NOT o.cancelled AND o.placed_at >= $1 AND o.placed_at < $2
                AND o.tenant = $3
              GROUP BY 1, 2 ORDER BY 1, 2"
    ))
    .bind(from)
    .bind(to)
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let buckets: Vec<Bucket> = rows
        .into_iter()
        .map(|(start, key, gmv, fees, orders)| Bucket {
            start,
            key,
            gmv: money(gmv),
            platform_fees: money(fees),
            orders,
        })
        .collect();
    Ok((
        [freshness::header_value(reached)],
        Json(json!({"currency": app.currency, "buckets": buckets})),
    ))
}
