//! `GET /v1/plans`, `GET /v1/plans/{id}`, `GET /v1/subscriptions?status=`
//! and `GET /v1/subscriptions/{id}` (API.md "Subscriptions and
//! instalments"), from the subscriptions read model.
//!
//! Plans are what anyone signed in may buy, so every role reads them. A
//! subscription is its customer's and the admins': another customer's is
//! 404, like one that does not exist (no existence leak, as the command
//! routes answer), and the other roles are 403.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue};
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::{ApiQuery, Ids};
use ledger_http::money::money;
use ledger_http::{ApiError, Principal, Role};
use projectors::subscriptions as model;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::freshness::{self, AtPosition, MinPosition};
use crate::page;
use crate::ReadState;

const MODELS: &[&str] = &[model::NAME];
const STATUSES: [&str; 6] = [
    "trialing",
    "pending",
    "active",
    "past_due",
    "suspended",
    "cancelled",
];

#[derive(sqlx::FromRow)]
struct PlanRow {
    plan_id: Uuid,
    name: String,
    price: Decimal,
    billing_interval: String,
    trial_days: i32,
    entitlement: Option<String>,
    created_at: DateTime<Utc>,
}

/// A plan, as `GET /v1/plans` lists it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanView {
    plan_id: Uuid,
    name: String,
    #[schema(example = "89.00")]
    price: String,
    /// `week`, `month` or `year`.
    #[schema(example = "month")]
    interval: String,
    trial_days: i32,
    entitlement: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<PlanRow> for PlanView {
    fn from(row: PlanRow) -> Self {
        Self {
            plan_id: row.plan_id,
            name: row.name,
            price: money(row.price),
            interval: row.billing_interval,
            trial_days: row.trial_days,
            entitlement: row.entitlement,
            created_at: row.created_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanPage {
    items: Vec<PlanView>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PlanListParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

const PLAN_COLUMNS: &str =
    "plan_id, name, price, billing_interval, trial_days, entitlement, created_at";

#[utoipa::path(get, path = "/v1/plans", tag = "queries", params(PlanListParams), responses((status = 200, description = "A page of plans", body = PlanPage, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn plans(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    ApiQuery(params): ApiQuery<PlanListParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<PlanPage>), ApiError> {
    crate::in_a_tenant(&principal)?;
    let limit = page::limit(params.limit)?;
    let cursor = page::cursor(params.cursor.as_deref())?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let rows: Vec<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM rm_plans
          WHERE tenant = $3 AND ($1::uuid IS NULL OR plan_id > $1) ORDER BY plan_id LIMIT $2"
    ))
    .bind(cursor)
    .bind(limit + 1)
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let page = page::page(rows, limit, |p| p.plan_id);
    let answer = PlanPage {
        items: page.items.into_iter().map(PlanView::from).collect(),
        next_cursor: page.next_cursor,
    };
    Ok(([freshness::header_value(reached)], Json(answer)))
}

#[utoipa::path(get, path = "/v1/plans/{plan_id}", tag = "queries", params(("plan_id" = Uuid, Path, description = "Plan id")), responses((status = 200, description = "The plan", body = PlanView, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn plan(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([plan_id]): Ids<1>,
) -> Result<AtPosition<Json<PlanView>>, ApiError> {
    crate::in_a_tenant(&principal)?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let row: Option<PlanRow> = sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM rm_plans WHERE plan_id = $1 AND tenant = $2"
    ))
    .bind(plan_id)
    .bind(&principal.tenant)
    .fetch_optional(&app.pool)
    .await?;
    let answer = row
        .map(|row| Json(PlanView::from(row)))
        .ok_or_else(|| ApiError::NotFound("plan".to_owned()));
    Ok(AtPosition(reached, answer))
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    subscription_id: Uuid,
    customer_id: String,
    plan_id: Uuid,
    price: Decimal,
    billing_interval: String,
    status: String,
    started_at: DateTime<Utc>,
    trial_end: Option<DateTime<Utc>>,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    cancel_cause: Option<String>,
    credit: Decimal,
}

const SUBSCRIPTION_COLUMNS: &str =
    "subscription_id, customer_id, plan_id, price, billing_interval, \
     status, started_at, trial_end, current_period_start, current_period_end, cancel_at, \
     cancelled_at, cancel_cause, credit";

#[derive(sqlx::FromRow)]
struct InvoiceRow {
    invoice_id: Uuid,
    subscription_id: Uuid,
    number: i32,
    kind: String,
    period_start: Option<DateTime<Utc>>,
    period_end: Option<DateTime<Utc>>,
    amount: Decimal,
    credit_applied: Decimal,
    due_at: DateTime<Utc>,
    status: String,
    failures: i32,
    paid_at: Option<DateTime<Utc>>,
    unapplied: Decimal,
    refunded: Decimal,
    tax: Decimal,
}

/// `[start, end)`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

fn period(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Option<Period> {
    Some(Period {
        start: start?,
        end: end?,
    })
}

/// One invoice of a subscription.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionInvoiceView {
    invoice_id: Uuid,
    /// 1, 2, 3 … within the subscription, gapless.
    number: i32,
    /// `period` or `proration` (an upgrade's difference).
    #[schema(example = "period")]
    kind: String,
    period: Option<Period>,
    /// The net price less `credit_applied`.
    #[schema(example = "89.00")]
    subtotal: String,
    /// The tax on `subtotal` at the deployment's rate when the subscription
    /// started.
    #[schema(example = "0.00")]
    tax: String,
    /// What is due: `subtotal` plus `tax`.
    #[schema(example = "89.00")]
    amount: String,
    #[schema(example = "0.00")]
    credit_applied: String,
    due_at: DateTime<Utc>,
    /// `open`, `paid` or `void` (written off with its cancelled subscription).
    #[schema(example = "open")]
    status: String,
    /// Failed payment attempts (a missing payment counts as one).
    failures: i32,
    paid_at: Option<DateTime<Utc>>,
    /// Money received for it that did not pay it (another amount, a second
    /// charge, after it was voided): held for an admin to return.
    #[schema(example = "0.00")]
    unapplied: String,
    /// What of `unapplied` an admin refunded
    /// (`POST /v1/payments/{payment_id}/refund`).
    #[schema(example = "0.00")]
    refunded: String,
}

impl From<InvoiceRow> for SubscriptionInvoiceView {
    fn from(row: InvoiceRow) -> Self {
        Self {
            invoice_id: row.invoice_id,
            number: row.number,
            kind: row.kind,
            period: period(row.period_start, row.period_end),
            subtotal: money(row.amount - row.tax),
            tax: money(row.tax),
            amount: money(row.amount),
            credit_applied: money(row.credit_applied),
            due_at: row.due_at,
            status: row.status,
            failures: row.failures,
            paid_at: row.paid_at,
            unapplied: money(row.unapplied),
            refunded: money(row.refunded),
        }
    }
}

/// A subscription with its invoices.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionView {
    subscription_id: Uuid,
    customer_id: String,
    plan_id: Uuid,
    #[schema(example = "89.00")]
    price: String,
    #[schema(example = "month")]
    interval: String,
    /// `trialing`, `pending` (first invoice unpaid), `active`, `past_due`,
    /// `suspended` or `cancelled`.
    #[schema(example = "active")]
    status: String,
    started_at: DateTime<Utc>,
    trial_end: Option<DateTime<Utc>>,
    /// The trial while trialing, then the period invoiced last.
    current_period: Option<Period>,
    /// When a cancellation at period end takes effect.
    cancel_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    /// `requested`, `at_period_end` or `non_payment`.
    cancel_cause: Option<String>,
    /// Downgrade credit to be taken off the next invoices.
    #[schema(example = "0.00")]
    credit: String,
    invoices: Vec<SubscriptionInvoiceView>,
}

impl SubscriptionView {
    fn of(row: SubscriptionRow, invoices: Vec<SubscriptionInvoiceView>) -> Self {
        Self {
            subscription_id: row.subscription_id,
            customer_id: row.customer_id,
            plan_id: row.plan_id,
            price: money(row.price),
            interval: row.billing_interval,
            status: row.status,
            started_at: row.started_at,
            trial_end: row.trial_end,
            current_period: period(row.current_period_start, row.current_period_end),
            cancel_at: row.cancel_at,
            cancelled_at: row.cancelled_at,
            cancel_cause: row.cancel_cause,
            credit: money(row.credit),
            invoices,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionPage {
    items: Vec<SubscriptionView>,
    next_cursor: Option<String>,
}

fn may_read(principal: &Principal) -> Result<(), ApiError> {
    principal.require(&[Role::Customer, Role::Admin])
}

/// The invoices of `subscriptions`, by number, grouped in their order.
async fn invoices_of(
    app: &ReadState,
    subscriptions: Vec<SubscriptionRow>,
) -> Result<Vec<SubscriptionView>, ApiError> {
    let ids: Vec<Uuid> = subscriptions.iter().map(|s| s.subscription_id).collect();
    let rows: Vec<InvoiceRow> = sqlx::query_as(
        "SELECT invoice_id, subscription_id, number, kind, period_start, period_end, amount,
                credit_applied, due_at, status, failures, paid_at, unapplied,
                refunded, tax
           FROM rm_subscription_invoices WHERE subscription_id = ANY($1)
          ORDER BY subscription_id, number",
    )
    .bind(&ids)
    .fetch_all(&app.pool)
    .await?;
    let mut by_subscription: std::collections::HashMap<Uuid, Vec<SubscriptionInvoiceView>> =
        std::collections::HashMap::new();
    for row in rows {
        by_subscription
            .entry(row.subscription_id)
            .or_default()
            .push(row.into());
    }
    Ok(subscriptions
        .into_iter()
        .map(|s| {
            let invoices = by_subscription
                .remove(&s.subscription_id)
                .unwrap_or_default();
            SubscriptionView::of(s, invoices)
        })
        .collect())
}

#[utoipa::path(get, path = "/v1/subscriptions/{subscription_id}", tag = "queries", params(("subscription_id" = Uuid, Path, description = "Subscription id")), responses((status = 200, description = "The subscription with its status, current period and invoices (its customer and admins; another customer's is 404)", body = SubscriptionView, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn detail(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    Ids([subscription_id]): Ids<1>,
) -> Result<AtPosition<Json<SubscriptionView>>, ApiError> {
    may_read(&principal)?;
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    let row: Option<SubscriptionRow> = sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM rm_subscriptions
          WHERE subscription_id = $1 AND tenant = $2"
    ))
    .bind(subscription_id)
    .bind(&principal.tenant)
    .fetch_optional(&app.pool)
    .await?;
    let visible =
        row.filter(|s| principal.role == Role::Admin || s.customer_id == principal.subject);
    let answer = match visible {
        Some(row) => invoices_of(&app, vec![row])
            .await
            .map(|mut views| Json(views.remove(0))),
        None => Err(ApiError::NotFound("subscription".to_owned())),
    };
    Ok(AtPosition(reached, answer))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionListParams {
    /// `trialing`, `pending`, `active`, `past_due`, `suspended` or `cancelled`.
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/subscriptions", tag = "queries", params(SubscriptionListParams), responses((status = 200, description = "A page of subscriptions with their invoices: a customer's own, or all for an admin", body = SubscriptionPage, headers(("Ledger-Position" = i64, description = "The position the read model stood at")))), security(("bearer" = [])))]
pub async fn list(
    State(app): State<ReadState>,
    principal: Principal,
    min: MinPosition,
    ApiQuery(params): ApiQuery<SubscriptionListParams>,
) -> Result<([(HeaderName, HeaderValue); 1], Json<SubscriptionPage>), ApiError> {
    may_read(&principal)?;
    let limit = page::limit(params.limit)?;
    let cursor = page::cursor(params.cursor.as_deref())?;
    if let Some(status) = &params.status {
        if !STATUSES.contains(&status.as_str()) {
            return Err(ledger_http::invalid(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let reached = freshness::wait_for(&app, MODELS, min).await?;
    // A customer's own only; an admin's all.
    let customer = (principal.role == Role::Customer).then_some(principal.subject.as_str());
    let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM rm_subscriptions
          WHERE tenant = $5 AND ($1::text IS NULL OR customer_id = $1)
            AND ($2::text IS NULL OR status = $2)
            AND ($3::uuid IS NULL OR subscription_id > $3)
          ORDER BY subscription_id LIMIT $4"
    ))
    .persistent(false)
    .bind(customer)
    .bind(params.status)
    .bind(cursor)
    .bind(limit + 1)
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let page = page::page(rows, limit, |s| s.subscription_id);
    let answer = SubscriptionPage {
        items: invoices_of(&app, page.items).await?,
        next_cursor: page.next_cursor,
    };
    Ok(([freshness::header_value(reached)], Json(answer)))
}
