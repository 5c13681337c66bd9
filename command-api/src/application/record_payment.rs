//! The payment provider reports a payment for an order: the Order
//! aggregate records it once per provider event, then the holds are
//! brought in line (`settle_payment`) and a deadline no longer needed is
//! settled. The webhook's signature and body are the route's to check.

use domain::{OrderCommand, OrderStatus, PaymentOutcome};
use uuid::Uuid;

use super::settle_payment::settle_payment;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// A payment event of the provider.
pub struct Payment {
    /// The provider's event id: a redelivery records nothing new.
    pub payment_id: String,
    pub intent_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub outcome: PaymentOutcome,
}

/// How recording a payment came out.
pub struct PaymentRecorded {
    /// The provider's event was recorded before.
    pub duplicate: bool,
    pub status: OrderStatus,
    pub position: i64,
}

pub async fn record_payment(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    payment: Payment,
) -> Result<PaymentRecorded, CommandError> {
    record_payment_of(app, context, order_id, payment, None).await
}

/// [`record_payment`] naming an instalment of the order's plan
/// (`metadata.instalment`), when `instalment` is given.
pub async fn record_payment_of(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    payment: Payment,
    instalment: Option<u32>,
) -> Result<PaymentRecorded, CommandError> {
    let command = match instalment {
        Some(number) => OrderCommand::PayInstalment {
            instalment: Some(number),
            payment_id: payment.payment_id,
            intent_id: payment.intent_id,
            amount_minor: payment.amount_minor,
            currency: payment.currency,
            outcome: payment.outcome,
            received_at: app.clock.now(),
        },
        None => OrderCommand::RecordPayment {
            payment_id: payment.payment_id,
            intent_id: payment.intent_id,
            amount_minor: payment.amount_minor,
            currency: payment.currency,
            outcome: payment.outcome,
            received_at: app.clock.now(),
        },
    };
    let committed = app
        .orders
        .execute(&order_id.to_string(), command, context, "RecordPayment")
        .await?;
    let duplicate = committed.events.is_empty();
    // A late fee paid: its vendors' pending late fees made available.
    let collected = super::refunds::follow_up(app, context, order_id, &committed).await?;
    // Settling runs on duplicates too, so a redelivery repairs holds that a
    // crash after the payment was recorded left unconfirmed.
    let settled = settle_payment(app, context, order_id).await?;
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    // A lease's dunning starts with its confirmation and moves with each
    // instalment paid.
    super::leases::reschedule(app, &order).await?;
    Ok(PaymentRecorded {
        duplicate,
        status: order.status(),
        position: committed.position.max(settled).max(collected),
    })
}
