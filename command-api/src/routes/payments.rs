//! `POST /v1/payments/{payment_id}/apply` · `/refund` (API.md "Money"): an
//! admin applies unapplied cash (a payment of another amount than was due)
//! to its order (or to the late fees it owes, up to what is owed), or
//! gives it back. The payment's order is found in the
//! event log, the source of truth (no read model decides a command). A
//! subscription's unapplied cash (a charge of an invoice of another amount)
//! is found the same way and can only be refunded (issue 15).

use axum::extract::{Path, State};
use axum::Json;
use domain::{DomainError, OrderCommand, OrderStatus, SubscriptionCommand, SubscriptionStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::application::billing;
use crate::application::refunds::order_money_command;
use crate::auth::Role;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::AppState;

/// Longest provider payment id accepted in the path.
const MAX_PAYMENT_ID: usize = 255;

#[derive(Serialize, utoipa::ToSchema)]
pub struct UnappliedSettled {
    payment_id: String,
    /// The order the payment was for; absent for a subscription's.
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    /// `applied` or `refunded`.
    outcome: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "12.00")]
    amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schema::OrderStatus>)]
    order_status: Option<OrderStatus>,
    /// The subscription whose invoice the payment was for (issue 15).
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "active")]
    subscription_status: Option<String>,
    position: i64,
}

/// Where an unapplied payment was recorded.
enum Holder {
    Order(Uuid),
    Subscription(Uuid),
}

/// The order or subscription an unapplied payment was recorded on; 404 if
/// none.
async fn holder_of_payment(app: &AppState, payment_id: &str) -> Result<Holder, ApiError> {
    if payment_id.is_empty() || payment_id.len() > MAX_PAYMENT_ID {
        return Err(ApiError::NotFound("unapplied payment".to_owned()));
    }
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT aggregate_id FROM events
          WHERE event_type = 'PaymentUnapplied' AND aggregate_type = 'Order'
            AND payload -> 'PaymentUnapplied' ->> 'payment_id' = $1
          LIMIT 1",
    )
    .bind(payment_id)
    .fetch_optional(&app.pool)
    .await?;
    if let Some(id) = found.and_then(|(id,)| Uuid::parse_str(&id).ok()) {
        return Ok(Holder::Order(id));
    }
    // The literals match migration 0036's partial index.
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT aggregate_id FROM events
          WHERE aggregate_type = 'Subscription' AND event_type = 'InvoicePaymentUnapplied'
            AND (payload -> 'InvoicePaymentUnapplied' ->> 'payment_ref') = $1
          LIMIT 1",
    )
    .bind(payment_id)
    .fetch_optional(&app.pool)
    .await?;
    found
        .and_then(|(id,)| Uuid::parse_str(&id).ok())
        .map(Holder::Subscription)
        .ok_or_else(|| ApiError::NotFound("unapplied payment".to_owned()))
}

/// A subscription's unapplied cash refunded in full (there is nothing to
/// apply it to but the invoice it did not pay: 409 for `apply`).
async fn settle_subscription(
    app: AppState,
    context: CommandContext,
    payment_id: String,
    subscription_id: Uuid,
    apply: bool,
) -> Result<Json<UnappliedSettled>, ApiError> {
    if apply {
        return Err(CommandError::Rejected(DomainError::invalid_state(
            "a subscription's unapplied cash can only be refunded",
        ))
        .into());
    }
    let command = SubscriptionCommand::RefundUnappliedPayment {
        payment_ref: payment_id.clone(),
        at: app.clock.now(),
    };
    let committed = billing::execute(
        &app,
        &context,
        subscription_id,
        command,
        "RefundUnappliedPayment",
    )
    .await?;
    let amount = committed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            domain::SubscriptionEvent::UnappliedPaymentRefunded { amount, .. } => Some(*amount),
            _ => None,
        })
        .unwrap_or_default();
    let state = app
        .subscriptions
        .load(&subscription_id.to_string(), &context.principal)
        .await?;
    let status: SubscriptionStatus = state.status();
    Ok(Json(UnappliedSettled {
        payment_id,
        order_id: None,
        outcome: "refunded".to_owned(),
        amount: crate::routes::money(amount),
        order_status: None,
        subscription_id: Some(subscription_id),
        subscription_status: Some(status.as_str().to_owned()),
        position: committed.position,
    }))
}

async fn settle(
    app: AppState,
    context: CommandContext,
    payment_id: String,
    apply: bool,
) -> Result<Json<UnappliedSettled>, ApiError> {
    context.principal.require(&[Role::Admin])?;
    let order_id = match holder_of_payment(&app, &payment_id).await? {
        Holder::Order(id) => id,
        Holder::Subscription(id) => {
            return settle_subscription(app, context, payment_id, id, apply).await
        }
    };
    let at = app.clock.now();
    let (command, name) = if apply {
        (
            OrderCommand::ApplyPayment {
                payment_id: payment_id.clone(),
                at,
            },
            "ApplyPayment",
        )
    } else {
        (
            OrderCommand::RefundPayment {
                payment_id: payment_id.clone(),
                at,
            },
            "RefundPayment",
        )
    };
    let (committed, position) =
        order_money_command(&app, &context, order_id, command, name).await?;
    let amount = committed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            domain::OrderEvent::UnappliedPaymentApplied { amount, .. }
            | domain::OrderEvent::UnappliedPaymentRefunded { amount, .. }
            | domain::OrderEvent::LateFeePaid { amount, .. } => Some(*amount),
            _ => None,
        })
        .unwrap_or_default();
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    Ok(Json(UnappliedSettled {
        payment_id,
        order_id: Some(order_id),
        outcome: if apply { "applied" } else { "refunded" }.to_owned(),
        amount: crate::routes::money(amount),
        order_status: Some(order.status()),
        subscription_id: None,
        subscription_status: None,
        position,
    }))
}

#[utoipa::path(post, path = "/v1/payments/{payment_id}/apply", tag = "commands", params(("payment_id" = String, Path, description = "The provider's payment event id of an unapplied payment")), responses((status = 200, description = "The unapplied cash applied to its order (which is confirmed once nothing is due), or to the late fees it owes up to what is owed (the rest stays unapplied); 409 above what is due", body = UnappliedSettled)), security(("bearer" = [])))]
pub async fn apply(
    State(app): State<AppState>,
    context: CommandContext,
    Path(payment_id): Path<String>,
) -> Result<Json<UnappliedSettled>, ApiError> {
    settle(app, context, payment_id, true).await
}

#[utoipa::path(post, path = "/v1/payments/{payment_id}/refund", tag = "commands", params(("payment_id" = String, Path, description = "The provider's payment event id of an unapplied payment")), responses((status = 200, description = "The unapplied cash refunded", body = UnappliedSettled)), security(("bearer" = [])))]
pub async fn refund(
    State(app): State<AppState>,
    context: CommandContext,
    Path(payment_id): Path<String>,
) -> Result<Json<UnappliedSettled>, ApiError> {
    settle(app, context, payment_id, false).await
}
