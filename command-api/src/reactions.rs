//! Follow-up commands that an order's outcome needs in other aggregates:
//! confirming or releasing its holds, re-holding after a late payment,
//! crediting vendors. Each is idempotent in the domain, so running one
//! twice (a retried request, the sweeper, a policy) changes nothing.

use domain::{DomainError, InventoryCommand, Order, OrderCommand, OrderStatus, VendorCommand};
use uuid::Uuid;

use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::routes::now;
use crate::CommandApp;

/// Releases every hold of the order. Returns the last position recorded.
pub async fn release_holds(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
    reason: &str,
) -> Result<i64, CommandError> {
    let mut position = 0;
    for (listing_id, hold_id) in order.hold_ids() {
        let command = InventoryCommand::ReleaseHold {
            hold_id,
            reason: reason.to_owned(),
        };
        let committed = app
            .inventory
            .execute(&listing_id.to_string(), command, context, "ReleaseHold")
            .await?;
        position = position.max(committed.position);
    }
    Ok(position)
}

/// Expires every hold of an order that lapsed unpaid. A hold not yet due
/// by this clock, or already settled, is left as it is.
pub async fn expire_holds(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
) -> Result<i64, CommandError> {
    let mut position = 0;
    for (listing_id, hold_id) in order.hold_ids() {
        let command = InventoryCommand::ExpireHold {
            hold_id,
            now: now(),
        };
        match app
            .inventory
            .execute(&listing_id.to_string(), command, context, "ExpireHold")
            .await
        {
            // Never placed, settled already or not due by this clock.
            Ok(committed) => position = position.max(committed.position),
            Err(
                CommandError::Rejected(DomainError::NotFound { .. } | DomainError::InvalidState(_))
                | CommandError::Conflict,
            ) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(position)
}

/// Confirms every hold of the order; lapsed ones are re-held if the units
/// are still free. On the first that cannot be, the holds confirmed so far
/// stay confirmed and the conflict is returned for the caller to settle.
async fn confirm_holds(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
) -> Result<Result<i64, CommandError>, CommandError> {
    let mut position = 0;
    for (listing_id, hold_id) in order.hold_ids() {
        let command = InventoryCommand::ConfirmHold {
            hold_id,
            now: now(),
        };
        match app
            .inventory
            .execute(&listing_id.to_string(), command, context, "ConfirmHold")
            .await
        {
            Ok(committed) => position = position.max(committed.position),
            // The units went elsewhere, or the hold was released.
            Err(
                err @ (CommandError::Rejected(
                    DomainError::Unavailable { .. } | DomainError::InvalidState(_),
                )
                | CommandError::Conflict),
            ) => return Ok(Err(err)),
            Err(err) => return Err(err),
        }
    }
    Ok(Ok(position))
}

/// Brings the holds in line with a payment the order just recorded:
/// a confirmed order's holds are confirmed; an order that expired before
/// its payment arrived is re-held and re-confirmed if every unit is still
/// free, else cancelled with a full refund. Returns the last position.
pub async fn settle_payment(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
) -> Result<i64, CommandError> {
    let id = order_id.to_string();
    let order = app.orders.load(&id).await?;
    match order.status() {
        OrderStatus::Confirmed | OrderStatus::Completed => {
            match confirm_holds(app, context, &order).await? {
                Ok(position) => Ok(position),
                Err(conflict) => {
                    // The units went to someone else while the payment was
                    // on its way: the customer gets the money back.
                    tracing::warn!(%order_id, error = %conflict, "paid order lost its units; refunding");
                    let cancel = OrderCommand::Cancel {
                        reason: Some("units no longer available".to_owned()),
                        at: now(),
                    };
                    let committed = app
                        .orders
                        .execute(&id, cancel, context, "CancelOrder")
                        .await?;
                    let order = app.orders.load(&id).await?;
                    let released =
                        release_holds(app, context, &order, "units no longer available").await?;
                    Ok(committed.position.max(released))
                }
            }
        }
        OrderStatus::Cancelled
            if order.cancelled_by_expiry() && order.captured_amount() >= order.total() =>
        {
            match confirm_holds(app, context, &order).await? {
                Ok(position) => {
                    let committed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::Reconfirm { at: now() },
                            context,
                            "ReconfirmOrder",
                        )
                        .await?;
                    Ok(position.max(committed.position))
                }
                Err(_) => {
                    let released =
                        release_holds(app, context, &order, "units no longer available").await?;
                    let committed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::RefundLapsed { at: now() },
                            context,
                            "RefundLapsedOrder",
                        )
                        .await?;
                    Ok(released.max(committed.position))
                }
            }
        }
        _ => Ok(0),
    }
}

/// Makes a vendor's net for a fulfilled order part available for payout.
pub async fn credit_fulfilled_part(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    vendor_id: Uuid,
    net: rust_decimal::Decimal,
) -> Result<i64, CommandError> {
    let command = VendorCommand::MakeEarningsAvailable {
        order_id,
        amount: net,
    };
    let committed = app
        .vendors
        .execute(
            &vendor_id.to_string(),
            command,
            context,
            "MakeEarningsAvailable",
        )
        .await?;
    Ok(committed.position)
}
