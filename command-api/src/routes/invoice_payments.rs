//! A payment webhook whose `metadata.invoice_id` names a subscription
//! invoice (API.md "Subscriptions and instalments"): it pays that invoice,
//! or fails an attempt at it. An id this ledger never issued is answered
//! 200 and ignored, as an order id that names nothing is, so the provider
//! stops redelivering it.

use uuid::Uuid;

use super::webhooks::WebhookReceived;
use crate::application::invoice_payments::{pay_invoice, subscription_of_invoice};
use crate::application::record_payment::Payment;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::AppState;

pub async fn received(
    app: &AppState,
    context: CommandContext,
    invoice_id: &str,
    payment: Payment,
) -> Result<WebhookReceived, ApiError> {
    let ignored = |why: &str| {
        tracing::info!(event_id = %payment.payment_id, invoice_id, "payment webhook ignored: {why}");
        Ok(WebhookReceived::ignored(format!(
            "the payment intent names no subscription invoice of this ledger ({why})"
        )))
    };
    let Ok(invoice_id) = Uuid::parse_str(invoice_id) else {
        return ignored("metadata.invoice_id is not an id");
    };
    let Some(subscription_id) = subscription_of_invoice(app, invoice_id).await? else {
        return ignored("unknown metadata.invoice_id");
    };
    let recorded = pay_invoice(app, &context, subscription_id, invoice_id, payment).await?;
    Ok(WebhookReceived::subscription(
        recorded.subscription_id,
        recorded.status.as_str(),
        recorded.duplicate,
        recorded.position,
    ))
}
