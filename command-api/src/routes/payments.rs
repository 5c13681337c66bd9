//! `POST /v1/payments/{payment_id}/apply` · `/refund` (API.md "Money"): an
//! admin applies unapplied cash (a payment of another amount than was due)
//! to its order (or to the late fees it owes, up to what is owed), or
//! gives it back. The payment's order is found in the
//! event log, the source of truth (no read model decides a command).

use axum::extract::{Path, State};
use axum::Json;
use domain::{OrderCommand, OrderStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::application::refunds::order_money_command;
use crate::auth::Role;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::AppState;

/// Longest provider payment id accepted in the path.
const MAX_PAYMENT_ID: usize = 255;

#[derive(Serialize, utoipa::ToSchema)]
pub struct UnappliedSettled {
    payment_id: String,
    order_id: Uuid,
    /// `applied` or `refunded`.
    outcome: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "12.00")]
    amount: String,
    #[schema(value_type = crate::schema::OrderStatus)]
    order_status: OrderStatus,
    position: i64,
}

/// The order an unapplied payment was recorded on; 404 if none.
async fn order_of_payment(app: &AppState, payment_id: &str) -> Result<Uuid, ApiError> {
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
    found
        .and_then(|(id,)| Uuid::parse_str(&id).ok())
        .ok_or_else(|| ApiError::NotFound("unapplied payment".to_owned()))
}

async fn settle(
    app: AppState,
    context: CommandContext,
    payment_id: String,
    apply: bool,
) -> Result<Json<UnappliedSettled>, ApiError> {
    context.principal.require(&[Role::Admin])?;
    let order_id = order_of_payment(&app, &payment_id).await?;
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
    let order = app.orders.load(&order_id.to_string()).await?;
    Ok(Json(UnappliedSettled {
        payment_id,
        order_id,
        outcome: if apply { "applied" } else { "refunded" }.to_owned(),
        amount: crate::routes::money(amount),
        order_status: order.status(),
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
