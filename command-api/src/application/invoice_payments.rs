//! The payment provider reports a charge of a subscription invoice (the
//! payment webhook with `metadata.invoice_id`): the Subscription that issued
//! the invoice records it once per provider event (the aggregate decides
//! whether it pays the invoice, is unapplied cash, or is a failed attempt
//! that dunning counts), then its schedule is brought up to date.

use domain::subscription::InvoicePaymentOutcome;
use domain::{PaymentOutcome, SubscriptionCommand, SubscriptionStatus};
use uuid::Uuid;

use super::billing;
use super::record_payment::Payment;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// How recording an invoice payment came out.
pub struct InvoicePaymentRecorded {
    pub subscription_id: Uuid,
    /// The provider's event was recorded before (or changed nothing).
    pub duplicate: bool,
    pub status: SubscriptionStatus,
    pub position: i64,
}

/// The subscription that issued `invoice_id`, found in the log itself
/// (migration 0028 indexes it), so no crash can leave it unknown.
pub async fn subscription_of_invoice(
    app: &CommandApp,
    invoice_id: Uuid,
) -> Result<Option<Uuid>, CommandError> {
    // The literals match the partial index's predicate.
    let found: Option<String> = sqlx::query_scalar(
        "SELECT aggregate_id FROM events
         WHERE aggregate_type = 'Subscription' AND event_type = 'InvoiceIssued'
           AND (payload -> 'InvoiceIssued' ->> 'invoice_id') = $1
         LIMIT 1",
    )
    .bind(invoice_id.to_string())
    .fetch_optional(&app.pool)
    .await?;
    Ok(found.and_then(|id| Uuid::parse_str(&id).ok()))
}

/// Records `payment` for `invoice_id` of `subscription_id`.
pub async fn pay_invoice(
    app: &CommandApp,
    context: &CommandContext,
    subscription_id: Uuid,
    invoice_id: Uuid,
    payment: Payment,
) -> Result<InvoicePaymentRecorded, CommandError> {
    let outcome = match payment.outcome {
        PaymentOutcome::Succeeded => InvoicePaymentOutcome::Succeeded,
        PaymentOutcome::Failed { reason, .. } => InvoicePaymentOutcome::Failed { reason },
    };
    // The provider acts in every tenant: the books are the subscription's
    // tenant's, in its currency.
    let tenant = app
        .subscriptions
        .load_stored(&subscription_id.to_string(), &context.principal)
        .await?
        .tenant
        .unwrap_or_else(|| event_log::DEFAULT_TENANT.to_owned());
    let ledger_currency = app
        .tenant_terms(&context.principal.clone().in_tenant(&tenant))
        .await?
        .currency;
    let command = SubscriptionCommand::ReceivePayment {
        invoice_id,
        payment_ref: payment.payment_id,
        amount_minor: payment.amount_minor,
        currency: payment.currency,
        ledger_currency,
        outcome,
        at: app.clock.now(),
    };
    let committed = billing::execute(
        app,
        context,
        subscription_id,
        command,
        "RecordSubscriptionPayment",
    )
    .await?;
    let state = app
        .subscriptions
        .load(&subscription_id.to_string(), &context.principal)
        .await?;
    Ok(InvoicePaymentRecorded {
        subscription_id,
        duplicate: committed.events.is_empty(),
        status: state.status(),
        position: committed.position,
    })
}
