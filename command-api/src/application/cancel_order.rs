//! A customer or an admin cancels an order (DESIGN.md "Domain": `cancelled`
//! before payment, `refunded` after payment and before fulfilment): the
//! Order aggregate decides, then the order's holds are released and its
//! deadline settled. Who may cancel is the route's to check.

use domain::{OrderCommand, OrderStatus, PersonalText};
use uuid::Uuid;

use super::earnings::credit_fulfilled_part;
use super::holds;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// Cancels the order and releases its holds. Answers its status and the
/// last position recorded.
pub async fn cancel_order(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    reason: Option<PersonalText>,
) -> Result<(OrderStatus, i64), CommandError> {
    let command = OrderCommand::Cancel {
        reason,
        at: app.clock.now(),
    };
    let id = order_id.to_string();
    let committed = app
        .orders
        .execute(&id, command, context, "CancelOrder")
        .await?;
    let order = app.orders.load(&id, &context.principal).await?;
    let released = holds::release(app, context, &order, "order cancelled").await?;
    // What a cancellation policy kept is the vendor's at once (less the
    // platform fee): the order will not be fulfilled. On a retry too, so a
    // crash before the credit is repaired (the Vendor credits once).
    let mut position = committed.position.max(released);
    if let Some(kept) = order.cancellation_kept() {
        for split in kept {
            let credited =
                credit_fulfilled_part(app, context, order_id, split.vendor_id, split.net).await?;
            position = position.max(credited);
        }
    }
    Ok((order.status(), position))
}
