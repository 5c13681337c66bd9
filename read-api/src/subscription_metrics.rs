//! The subscription figures of `GET /v1/analytics/summary` (API.md
//! "Subscriptions and instalments"), from the subscriptions read model:
//!
//! - `active_subscriptions`: subscriptions `active`, or `past_due` after
//!   paying at least one invoice, now (neither suspended nor cancelled;
//!   trials and subscriptions that never paid do not count);
//! - `mrr`: their plans' prices as a month's worth (a week's price × 52 ÷
//!   12, a year's ÷ 12), summed and rounded to the cent once;
//! - `churn_rate`: subscriptions cancelled in `[from, to)` ÷ those running
//!   in the window (started before `to`, not cancelled before `from`);
//! - `past_due`: what open invoices with a failed or missing payment still
//!   owe now.
//!
//! `mrr`, `active_subscriptions` and `past_due` are the state now (as of
//! the read model's position); only churn depends on the window.
//!
//! All of them are one tenant's (issue 15): every row of the subscription
//! and order read models carries its tenant (migration 0039).

use chrono::{DateTime, Utc};
use ledger_http::money::money;
use rust_decimal::Decimal;
use serde::Serialize;

/// What the summary adds for subscriptions.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionFigures {
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "890.00")]
    pub mrr: String,
    pub active_subscriptions: i64,
    /// Decimal string, 0 to 1.
    #[schema(example = "0.05")]
    pub churn_rate: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "89.00")]
    pub past_due: String,
}

pub async fn figures(
    pool: &sqlx::PgPool,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<SubscriptionFigures, sqlx::Error> {
    let (active, mrr): (i64, Decimal) = sqlx::query_as(
        "SELECT count(*),
                coalesce(sum(CASE billing_interval
                                 WHEN 'week' THEN price * 52 / 12
                                 WHEN 'year' THEN price / 12
                                 ELSE price END), 0)
           FROM rm_subscriptions s
          WHERE (s.status = 'active'
                 OR (s.status = 'past_due'
                     AND EXISTS (SELECT 1 FROM rm_subscription_invoices i
                                  WHERE i.subscription_id = s.subscription_id
                                    AND i.status = 'paid')))
            AND s.tenant = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let (cancelled, running): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE cancelled_at >= $1 AND cancelled_at < $2),
                count(*)
           FROM rm_subscriptions s
          WHERE started_at < $2 AND (cancelled_at IS NULL OR cancelled_at >= $1)
            AND s.tenant = $3",
    )
    .bind(from)
    .bind(to)
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let past_due: Decimal = sqlx::query_scalar(
        "SELECT coalesce(sum(amount), 0) FROM rm_subscription_invoices s
          WHERE status = 'open' AND failures > 0 AND s.tenant = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let churn = if running == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(cancelled) / Decimal::from(running)).round_dp(4)
    };
    Ok(SubscriptionFigures {
        mrr: money(
            mrr.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        ),
        active_subscriptions: active,
        churn_rate: churn.to_string(),
        past_due: money(past_due),
    })
}

/// Lease instalments overdue now (issue 15): how many, and what they owe,
/// from the orders read model (orders with a lease; index of migration
/// 0033).
pub async fn instalments_overdue(
    pool: &sqlx::PgPool,
    tenant: &str,
) -> Result<(i64, Decimal), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), coalesce(sum((i->>'amount')::numeric), 0)
           FROM rm_orders o,
                jsonb_array_elements(o.document->'lease'->'schedule') AS i
          WHERE o.document ? 'lease' AND i->>'status' = 'overdue' AND o.tenant = $1",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
}
