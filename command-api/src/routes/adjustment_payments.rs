//! A payment webhook whose `metadata.adjustment_id` names an extension or
//! reschedule (API.md "Rentals"): it pays that adjustment, not the order.
//! The adjustment's order is found from its deadline (a payment may name
//! only the adjustment); a `metadata.order_id` given too must agree. An id
//! this ledger never issued is answered 200 and ignored, as an order id
//! that names nothing is.

use uuid::Uuid;

use super::webhooks::WebhookReceived;
use crate::application::adjust_line::pay_adjustment;
use crate::application::record_payment::Payment;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::AppState;

pub async fn received(
    app: &AppState,
    context: CommandContext,
    adjustment_id: &str,
    order_id: Option<&str>,
    payment: Payment,
) -> Result<WebhookReceived, ApiError> {
    let ignored = |why: &str| {
        tracing::info!(event_id = %payment.payment_id, adjustment_id, "payment webhook ignored: {why}");
        Ok(WebhookReceived::ignored(format!(
            "the payment intent names no adjustment of this ledger ({why})"
        )))
    };
    let Ok(adjustment_id) = Uuid::parse_str(adjustment_id) else {
        return ignored("metadata.adjustment_id is not an id");
    };
    let Some(due) = app.deadlines.adjustment(adjustment_id).await? else {
        return ignored("unknown metadata.adjustment_id");
    };
    if let Some(named) = order_id {
        if Uuid::parse_str(named).ok() != Some(due.order_id) {
            return ignored("metadata.order_id names another order");
        }
    }
    let recorded = pay_adjustment(app, &context, due.order_id, adjustment_id, payment).await?;
    Ok(WebhookReceived::processed(
        due.order_id,
        recorded.status,
        recorded.duplicate,
        recorded.position,
    ))
}
