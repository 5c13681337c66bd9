//! Lapsed holds settled (DESIGN.md: "an unpaid hold never blocks a unit
//! after its expiry plus one sweep"). The sweeper takes the holds that
//! lapsed unconfirmed by the app's clock (`crate::deadlines`) and settles
//! each one's order by asking the aggregates, which decide:
//! - an order still awaiting payment is cancelled and its holds expire;
//! - a paid order's holds are confirmed (repairing a crash mid-payment);
//! - holds whose order was never recorded (a saga of an earlier version,
//!   which recorded them apart, died) expire.

use domain::{DomainError, InventoryCommand, OrderCommand, OrderStatus};
use uuid::Uuid;

use super::settle_payment::settle_payment;
use crate::auth::Principal;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::deadlines::DeadlineHold;
use crate::CommandApp;

/// Deadlines taken per round.
pub const BATCH: usize = 100;

/// One round: settles the orders of up to a batch of lapsed holds. Returns
/// how many orders, return deadlines and adjustments it settled.
pub async fn sweep_once(app: &CommandApp) -> Result<usize, CommandError> {
    let lapsed = app.deadlines.lapsed_holds(app.clock.now(), BATCH).await?;
    let mut count = 0;
    for deadline in &lapsed {
        match settle_lapsed(app, deadline.order_id, &deadline.holds).await {
            Ok(()) => {
                app.deadlines.swept(&deadline.holds, app.clock.now());
                count += 1
            }
            Err(err) => {
                tracing::warn!(order_id = %deadline.order_id, error = %err, "could not settle a lapsed order")
            }
        }
    }
    // Rental lines past their end and not returned.
    let overdue = super::overdue::mark_overdue_lines(app).await?;
    // Extensions and reschedules unpaid past their expiry.
    let adjustments = super::adjust_line::lapse_due_adjustments(app).await?;
    Ok(count + overdue + adjustments)
}

/// Settles one lapsed order and its holds.
async fn settle_lapsed(
    app: &CommandApp,
    order_id: Uuid,
    holds: &[DeadlineHold],
) -> Result<(), CommandError> {
    let context =
        CommandContext::background(Principal::system("sweeper"), format!("sweep:{order_id}"));
    let id = order_id.to_string();
    let at = app.clock.now();
    let mut order = app.orders.load(&id, &context.principal).await?;
    if order.is_placed() && order.status() == OrderStatus::Placed {
        app.orders
            .execute(
                &id,
                OrderCommand::ExpireUnpaid { at },
                &context,
                "ExpireUnpaidOrder",
            )
            .await?;
        // Read again: a payment may have won the race for the order.
        order = app.orders.load(&id, &context.principal).await?;
    }
    if order.is_placed() {
        match order.status() {
            OrderStatus::Confirmed | OrderStatus::Completed => {
                settle_payment(app, &context, order_id).await?;
                return Ok(());
            }
            OrderStatus::Placed => {
                return Err(CommandError::internal(
                    "order still awaiting payment after expiry",
                ))
            }
            OrderStatus::Cancelled | OrderStatus::Refunded => {}
        }
    }
    for hold in holds {
        let command = InventoryCommand::ExpireHold {
            hold_id: hold.hold_id,
            now: at,
        };
        match app
            .inventory
            .execute(
                &hold.listing_id.to_string(),
                command,
                &context,
                "ExpireHold",
            )
            .await
        {
            // A hold that was never placed, or is not due by this clock.
            Ok(_)
            | Err(
                CommandError::Rejected(DomainError::NotFound { .. } | DomainError::InvalidState(_))
                | CommandError::Conflict,
            ) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
