//! Policies: process managers that consume the event stream and issue the
//! follow-up commands an outcome needs, so that a crash between two
//! commands of a request never leaves the aggregates disagreeing.
//!
//! - payment captured or order (re)confirmed → confirm the order's holds,
//!   or re-hold after expiry, or cancel and refund when the units are gone;
//! - order cancelled or refunded → release its holds; expired unpaid →
//!   expire them (a late payment may still re-hold expired holds);
//! - a rental line returned → record the return on the inventory and credit
//!   the damage withheld to the vendor;
//! - a vendor's part fulfilled → make its net available for payout;
//! - a refund or dispute of a fulfilled part → take its net back from the
//!   vendor (a won dispute: give it back); a late fee paid → make the
//!   vendors' pending late fees available.
//! - order confirmed → one invoice per vendor part (`invoicing`); a refund
//!   (`RefundRecorded`), a cancellation's refund of a confirmed order
//!   (`RefundIssued`) or a booking change that made a line cheaper
//!   (`AdjustmentConfirmed`) → a credit note per vendor part it touched.
//!
//! Each decision reads the aggregates' current state, not the (possibly
//! old) event, and every command is idempotent, so redelivery and the
//! command handlers doing the same work first are both harmless.

use domain::{InventoryCommand, OrderEvent, OrderStatus, VendorCommand};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use futures::StreamExt;
use ledger_nats::consumer::{self, Consumer};
use ledger_nats::{Error, EventEnvelope};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::application::{earnings, holds, invoicing, refunds, settle_payment};
use crate::auth::Principal;
use crate::bus::{CommandError, StoreError};
use crate::context::CommandContext;
use crate::{AppState, CommandApp};

pub const NAME: &str = "policies";

pub struct Policies {
    app: AppState,
}

impl Policies {
    pub fn new(app: AppState) -> Self {
        Self { app }
    }
}

impl Consumer for Policies {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            // Orders are independent: each order's events are handled in
            // order, different orders side by side.
            let mut index: std::collections::HashMap<&str, usize> = Default::default();
            let mut by_order: Vec<Vec<&EventEnvelope>> = Vec::new();
            for event in events
                .iter()
                .filter(|e| e.aggregate() == Some(Aggregate::Order))
            {
                let slot = *index.entry(event.aggregate_id.as_str()).or_insert_with(|| {
                    by_order.push(Vec::new());
                    by_order.len() - 1
                });
                by_order[slot].push(event);
            }
            let mut tasks = Vec::with_capacity(by_order.len());
            for list in by_order {
                tasks.push(handle_order(&self.app, list));
            }
            let mut outcomes = futures::stream::iter(tasks).buffer_unordered(CONCURRENT_ORDERS);
            while let Some(outcome) = outcomes.next().await {
                outcome?;
            }
            Ok(())
        })
    }
}

/// Orders whose events are handled at the same time.
const CONCURRENT_ORDERS: usize = 16;

/// One order's events, in order.
async fn handle_order(app: &CommandApp, events: Vec<&EventEnvelope>) -> Result<(), Error> {
    for event in events {
        react_or_note(app, event).await?;
    }
    Ok(())
}

async fn react_or_note(app: &CommandApp, event: &EventEnvelope) -> Result<(), Error> {
    match react(app, event).await {
        Ok(()) => Ok(()),
        // Outages and bugs stop the batch; it is retried.
        Err(err) if err.is_failure() => Err(Error::apply(event, err)),
        // A business refusal will not change on retry: an aggregate already
        // moved on. Note it and go on.
        Err(err) => {
            tracing::warn!(
                position = event.position,
                event_type = %event.event_type,
                error = %err,
                "policy command refused"
            );
            Ok(())
        }
    }
}

/// One credit note per vendor part a refund touched (each idempotent by the
/// refund id in that vendor's invoice book).
async fn credit_refund_parts(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    refund_id: Uuid,
    parts: &[domain::RefundPart],
) -> Result<(), CommandError> {
    for part in parts {
        let credit = invoicing::RefundCredit {
            vendor_id: part.vendor_id,
            order_id,
            refund_id,
            // Lines may be refunded in part: the note credits the amounts.
            lines: Vec::new(),
            amount: part.subtotal,
            tax: part.tax,
            fee_reversed: part.fee_reversed,
            net_reversed: part.net_reversed,
        };
        invoicing::credit_refund(app, context, credit).await?;
    }
    Ok(())
}

fn context_for(event: &EventEnvelope) -> CommandContext {
    let correlation_id = event.metadata["correlation_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| event.event_id.to_string());
    CommandContext {
        principal: Principal::system("policies").in_tenant(&event.tenant),
        correlation_id,
        causation_id: event.event_id.to_string(),
        idempotency_key: None,
    }
}

async fn react(app: &CommandApp, event: &EventEnvelope) -> Result<(), CommandError> {
    let parsed = match consumer::decode(event, &[Aggregate::Order]) {
        Ok(Some(Event::Order(parsed))) => parsed,
        Ok(_) => return Ok(()),
        Err(e) => return Err(StoreError::Failed(format!("undecodable order event: {e}")).into()),
    };
    let order_id = Uuid::parse_str(&event.aggregate_id)
        .map_err(|e| StoreError::Failed(format!("bad order id: {e}")))?;
    let context = context_for(event);
    match parsed {
        OrderEvent::PaymentCaptured { .. } => {
            settle_payment::settle_payment(app, &context, order_id).await?;
        }
        OrderEvent::OrderConfirmed { .. } | OrderEvent::OrderReconfirmed { .. } => {
            settle_payment::settle_payment(app, &context, order_id).await?;
            invoicing::invoice_confirmed_order(app, &context, order_id).await?;
        }
        OrderEvent::OrderCancelled { .. } | OrderEvent::RefundIssued { .. } => {
            let order = app
                .orders
                .load(&order_id.to_string(), &context.principal)
                .await?;
            match order.status() {
                // Lapsed unpaid: the holds expire rather than being released,
                // so that a payment arriving late can still re-hold them.
                OrderStatus::Cancelled if order.cancelled_by_expiry() => {
                    holds::expire(app, &context, &order).await?;
                }
                OrderStatus::Cancelled | OrderStatus::Refunded => {
                    holds::release(app, &context, &order, "order cancelled").await?;
                }
                _ => {}
            }
            // A confirmed order cancelled and refunded: a credit note per
            // vendor part given back. An order is cancelled once, so its id
            // stands for the refund in the vendors' invoice books; a later
            // refund of a stray payment finds them already credited.
            if matches!(parsed, OrderEvent::RefundIssued { .. }) {
                let credits = order.cancellation_credits();
                credit_refund_parts(app, &context, order_id, order_id, &credits).await?;
            }
        }
        OrderEvent::LineReturned {
            line_id,
            vendor_id,
            returned_at,
            damage_withheld,
            ..
        } => {
            let order = app
                .orders
                .load(&order_id.to_string(), &context.principal)
                .await?;
            if let Some(line) = order.line(line_id) {
                let command = InventoryCommand::RecordReturn {
                    hold_id: line.hold_id,
                    returned_at,
                };
                app.inventory
                    .execute(
                        &line.listing_id.to_string(),
                        command,
                        &context,
                        "RecordReturn",
                    )
                    .await?;
            }
            if damage_withheld > rust_decimal::Decimal::ZERO {
                let command = VendorCommand::CreditDamage {
                    order_id,
                    line_id,
                    amount: damage_withheld,
                };
                app.vendors
                    .execute(&vendor_id.to_string(), command, &context, "CreditDamage")
                    .await?;
            }
        }
        // A booking change that made the line cheaper gave money back: a
        // credit note of what it took off the invoiced price (the change's
        // id stands for the refund).
        OrderEvent::AdjustmentConfirmed { adjustment, .. }
            if adjustment.amount_due < rust_decimal::Decimal::ZERO =>
        {
            let part = domain::RefundPart {
                vendor_id: adjustment.vendor_id,
                lines: vec![domain::RefundLine {
                    line_id: adjustment.line_id,
                    subtotal: -adjustment.subtotal,
                    tax: -adjustment.tax,
                }],
                amount: -adjustment.amount_due,
                subtotal: -adjustment.subtotal,
                tax: -adjustment.tax,
                fee_reversed: -adjustment.platform_fee,
                net_reversed: -adjustment.net,
                from_pending: -adjustment.net,
                from_available: rust_decimal::Decimal::ZERO,
            };
            let refund_id = adjustment.adjustment_id;
            credit_refund_parts(app, &context, order_id, refund_id, &[part]).await?;
        }
        OrderEvent::VendorPartFulfilled { vendor_id, net } => {
            earnings::credit_fulfilled_part(app, &context, order_id, vendor_id, net).await?;
        }
        ref money @ (OrderEvent::RefundRecorded { .. }
        | OrderEvent::DisputeOpened { .. }
        | OrderEvent::DisputeClosed { .. }
        | OrderEvent::LateFeePaid { .. }) => {
            refunds::vendor_side(app, &context, order_id, money).await?;
            if let OrderEvent::RefundRecorded {
                refund_id, parts, ..
            } = money
            {
                credit_refund_parts(app, &context, order_id, *refund_id, parts).await?;
            }
        }
        _ => {}
    }
    Ok(())
}
