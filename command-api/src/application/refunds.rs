//! Refunds, disputes and unapplied payments (API.md "Money"): the Order
//! aggregate decides; what a refund or dispute takes back of a fulfilled
//! part's net is then reversed on the Vendor aggregate (which turns what
//! its available balance cannot cover into a receivable), and what a won
//! dispute gives back restored. The policies do the same from the events,
//! so a crash between the two commands is repaired; both are idempotent.
//! A late fee paid (`LateFeePaid`) is made available to its vendors the
//! same way (`LateFeeCollected`).

use domain::{OrderCommand, OrderEvent, RefundPart, RefundRequest, VendorCommand};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::settle_payment::settle_payment;
use crate::bus::{CommandError, Committed};
use crate::context::CommandContext;
use crate::CommandApp;

/// A recorded refund: its event's figures and the last position.
pub struct Refunded {
    pub refund_id: Uuid,
    pub amount: Decimal,
    pub parts: Vec<RefundPart>,
    pub position: i64,
}

/// Records a refund of the order, then takes back from the vendors'
/// available balances what it reverses of fulfilled parts.
pub async fn refund_order(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    request: RefundRequest,
) -> Result<Refunded, CommandError> {
    let refund_id = request.refund_id;
    let committed = app
        .orders
        .execute(
            &order_id.to_string(),
            OrderCommand::Refund(request),
            context,
            "RefundOrder",
        )
        .await?;
    let mut position = committed.position;
    let mut refunded = Refunded {
        refund_id,
        amount: Decimal::ZERO,
        parts: Vec::new(),
        position,
    };
    for event in &committed.events {
        if let OrderEvent::RefundRecorded { amount, parts, .. } = &event.payload {
            position = position.max(reverse_parts(app, context, order_id, refund_id, parts).await?);
            refunded.amount = *amount;
            refunded.parts = parts.clone();
        }
    }
    refunded.position = position;
    Ok(refunded)
}

/// Takes back from each vendor what `parts` reverse of its available
/// balance (fulfilled parts). Idempotent per `reversal_id`.
pub async fn reverse_parts(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    reversal_id: Uuid,
    parts: &[RefundPart],
) -> Result<i64, CommandError> {
    let mut position = 0;
    for part in parts.iter().filter(|p| p.from_available > Decimal::ZERO) {
        let command = VendorCommand::ReverseEarnings {
            reversal_id,
            order_id,
            amount: part.from_available,
        };
        let committed = app
            .vendors
            .execute(
                &part.vendor_id.to_string(),
                command,
                context,
                "ReverseEarnings",
            )
            .await?;
        position = position.max(committed.position);
    }
    Ok(position)
}

/// After an order command: the vendor side of any refund or dispute it
/// recorded (reversals, restorations). Returns the last position.
pub async fn follow_up(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    committed: &Committed<domain::Order>,
) -> Result<i64, CommandError> {
    let mut position = committed.position;
    for event in &committed.events {
        position = position.max(vendor_side(app, context, order_id, &event.payload).await?);
    }
    Ok(position)
}

/// What the Vendor aggregates must do after one order event.
pub async fn vendor_side(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    event: &OrderEvent,
) -> Result<i64, CommandError> {
    match event {
        OrderEvent::RefundRecorded {
            refund_id, parts, ..
        } => reverse_parts(app, context, order_id, *refund_id, parts).await,
        OrderEvent::DisputeOpened {
            dispute_ref, parts, ..
        } => reverse_parts(app, context, order_id, *dispute_ref, parts).await,
        OrderEvent::DisputeClosed {
            won: true,
            dispute_ref,
            releases,
            ..
        } => {
            let mut position = 0;
            for release in releases.iter().filter(|r| r.to_available > Decimal::ZERO) {
                let command = VendorCommand::RestoreEarnings {
                    reversal_id: *dispute_ref,
                    order_id,
                    amount: release.to_available,
                };
                let committed = app
                    .vendors
                    .execute(
                        &release.vendor_id.to_string(),
                        command,
                        context,
                        "RestoreEarnings",
                    )
                    .await?;
                position = position.max(committed.position);
            }
            Ok(position)
        }
        OrderEvent::LateFeePaid {
            payment_id, parts, ..
        } => collect_late_fees(app, context, order_id, payment_id, parts).await,
        _ => Ok(0),
    }
}

/// A late fee paid (API.md "Rentals"): each vendor's pending late fee of
/// the lines it paid is made available. Idempotent per payment and line.
async fn collect_late_fees(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    payment_id: &str,
    parts: &[domain::LateFeePart],
) -> Result<i64, CommandError> {
    let mut position = 0;
    for part in parts.iter().filter(|p| p.amount > Decimal::ZERO) {
        let command = VendorCommand::CollectLateFee {
            order_id,
            line_id: part.line_id,
            payment_id: payment_id.to_owned(),
            amount: part.amount,
        };
        let committed = app
            .vendors
            .execute(
                &part.vendor_id.to_string(),
                command,
                context,
                "CollectLateFee",
            )
            .await?;
        position = position.max(committed.position);
    }
    Ok(position)
}

/// Runs an order command about money (a provider refund, a dispute, an
/// unapplied payment), then its vendor side and, if it confirmed the
/// order, the holds. Returns what it recorded and the last position.
pub async fn order_money_command(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    command: OrderCommand,
    name: &str,
) -> Result<(Committed<domain::Order>, i64), CommandError> {
    let committed = app
        .orders
        .execute(&order_id.to_string(), command, context, name)
        .await?;
    let mut position = follow_up(app, context, order_id, &committed).await?;
    let confirmed = committed
        .events
        .iter()
        .any(|e| matches!(e.payload, OrderEvent::OrderConfirmed { .. }));
    if confirmed {
        position = position.max(settle_payment(app, context, order_id).await?);
    }
    Ok((committed, position))
}
