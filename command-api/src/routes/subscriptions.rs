//! `POST /v1/plans`, `POST /v1/subscriptions` and a subscription's
//! `/cancel` and `/change-plan` (API.md "Subscriptions and instalments").
//! The billing itself runs in the background (`application::billing`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{DomainError, Interval, PlanCommand, Subscription, SubscriptionCommand};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::billing;
use crate::auth::{Principal, Role};
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::{deserialize_money, money};
use crate::AppState;

/// How often a plan bills.
#[derive(Deserialize, utoipa::ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PlanInterval {
    Week,
    Month,
    Year,
}

impl From<PlanInterval> for Interval {
    fn from(interval: PlanInterval) -> Self {
        match interval {
            PlanInterval::Week => Interval::Week,
            PlanInterval::Month => Interval::Month,
            PlanInterval::Year => Interval::Year,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    #[schema(max_length = 200, example = "Monthly garage pass")]
    name: String,
    #[serde(deserialize_with = "deserialize_money")]
    #[schema(value_type = String, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "89.00")]
    price: Decimal,
    interval: PlanInterval,
    /// Days free before the first period (at most 365).
    #[serde(default)]
    #[schema(maximum = 365)]
    trial_days: u32,
    /// What the pass grants; shown, not enforced.
    #[serde(default)]
    #[schema(max_length = 500)]
    entitlement: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanCreated {
    plan_id: Uuid,
    position: i64,
}

#[utoipa::path(post, path = "/v1/plans", tag = "commands", request_body = CreatePlan, responses((status = 201, description = "Plan created", body = PlanCreated)), security(("bearer" = [])))]
pub async fn create_plan(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<CreatePlan>,
) -> Result<(StatusCode, Json<PlanCreated>), ApiError> {
    context.principal.require(&[Role::Admin])?;
    let plan_id = Uuid::now_v7();
    let command = PlanCommand::Create {
        plan_id,
        name: body.name,
        price: body.price,
        interval: body.interval.into(),
        trial_days: body.trial_days,
        entitlement: body.entitlement,
        at: app.clock.now(),
    };
    let committed = app
        .plans
        .execute_new(&plan_id.to_string(), command, &context, "CreatePlan")
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(PlanCreated {
            plan_id,
            position: committed.position,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    plan_id: Uuid,
}

/// `[start, end)` of a period.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PeriodView {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionStarted {
    subscription_id: Uuid,
    /// `trialing` or `pending` (until the first invoice is paid).
    #[schema(example = "pending")]
    status: String,
    current_period: Option<PeriodView>,
    /// The first period's invoice, unless the plan starts with a trial.
    invoice_id: Option<Uuid>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/subscriptions", tag = "commands", request_body = Subscribe, responses((status = 201, description = "Subscription started", body = SubscriptionStarted)), security(("bearer" = [])))]
pub async fn subscribe(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<Subscribe>,
) -> Result<(StatusCode, Json<SubscriptionStarted>), ApiError> {
    context.principal.require(&[Role::Customer])?;
    let subscription_id = Uuid::now_v7();
    let (committed, state) = billing::start(
        &app,
        &context,
        subscription_id,
        body.plan_id,
        &context.principal.subject,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(SubscriptionStarted {
            subscription_id,
            status: state.status().as_str().to_owned(),
            current_period: state
                .current_period()
                .map(|(start, end)| PeriodView { start, end }),
            invoice_id: billing::issued_invoice(&committed),
            position: committed.position,
        }),
    ))
}

/// The subscription if `principal` may act on it: its own customer or an
/// admin. Another customer's, like a missing one, is 404 (no existence leak).
async fn owned(
    app: &AppState,
    principal: &Principal,
    subscription_id: Uuid,
) -> Result<Subscription, ApiError> {
    principal.require(&[Role::Customer, Role::Admin])?;
    let state = app
        .subscriptions
        .load(&subscription_id.to_string(), principal)
        .await?;
    let visible = state.subscription_id().is_some()
        && (principal.role == Role::Admin || state.customer() == principal.subject);
    if visible {
        Ok(state)
    } else {
        Err(DomainError::not_found("subscription").into())
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelSubscription {
    /// `true`: it runs to the end of the current period; `false`: it ends
    /// now and what is unpaid is voided.
    at_period_end: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubscriptionChanged {
    subscription_id: Uuid,
    #[schema(example = "active")]
    status: String,
    position: i64,
}

#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/cancel", tag = "commands", params(("subscription_id" = Uuid, Path, description = "Subscription id")), request_body = CancelSubscription, responses((status = 200, description = "Cancelled, or its cancellation scheduled", body = SubscriptionChanged)), security(("bearer" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([subscription_id]): Ids<1>,
    ApiJson(body): ApiJson<CancelSubscription>,
) -> Result<Json<SubscriptionChanged>, ApiError> {
    owned(&app, &context.principal, subscription_id).await?;
    let command = SubscriptionCommand::Cancel {
        at_period_end: body.at_period_end,
        at: app.clock.now(),
    };
    let committed = billing::execute(
        &app,
        &context,
        subscription_id,
        command,
        "CancelSubscription",
    )
    .await?;
    let state = app
        .subscriptions
        .load(&subscription_id.to_string(), &context.principal)
        .await?;
    Ok(Json(SubscriptionChanged {
        subscription_id,
        status: state.status().as_str().to_owned(),
        position: committed.position,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlan {
    plan_id: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanChangedView {
    subscription_id: Uuid,
    /// Owed now for the rest of the period (positive, invoiced as
    /// `invoice_id`) or credited to the next invoice (negative).
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "4.84")]
    proration: String,
    invoice_id: Option<Uuid>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/subscriptions/{subscription_id}/change-plan", tag = "commands", params(("subscription_id" = Uuid, Path, description = "Subscription id")), request_body = ChangePlan, responses((status = 200, description = "Plan changed, the rest of the period prorated", body = PlanChangedView)), security(("bearer" = [])))]
pub async fn change_plan(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([subscription_id]): Ids<1>,
    ApiJson(body): ApiJson<ChangePlan>,
) -> Result<Json<PlanChangedView>, ApiError> {
    owned(&app, &context.principal, subscription_id).await?;
    let plan = app
        .plans
        .load(&body.plan_id.to_string(), &context.principal)
        .await?;
    let terms = plan
        .terms()
        .cloned()
        .ok_or(DomainError::not_found("plan"))?;
    let command = SubscriptionCommand::ChangePlan {
        plan: terms,
        invoice_id: Uuid::now_v7(),
        at: app.clock.now(),
    };
    let committed = billing::execute(
        &app,
        &context,
        subscription_id,
        command,
        "ChangeSubscriptionPlan",
    )
    .await?;
    let proration = committed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            domain::SubscriptionEvent::PlanChanged { proration, .. } => Some(*proration),
            _ => None,
        })
        .unwrap_or(Decimal::ZERO);
    Ok(Json(PlanChangedView {
        subscription_id,
        proration: money(proration),
        invoice_id: billing::issued_invoice(&committed),
        position: committed.position,
    }))
}
