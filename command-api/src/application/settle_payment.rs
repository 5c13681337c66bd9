//! A recorded payment brings the order's holds in line (DESIGN.md
//! "Domain": "A payment that arrives after expiry re-holds if it still
//! can; if it cannot, the order is cancelled and a full refund is
//! recorded"). Run by the payment webhook, the payment policy and the
//! sweeper; every step is idempotent, so running it again repairs what a
//! crash half-way left and otherwise records nothing.

use domain::{OrderCommand, OrderStatus};
use uuid::Uuid;

use super::holds::{self, Confirmed};
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// A confirmed order's holds are confirmed (and if its units went
/// elsewhere meanwhile, it is cancelled and refunded); an order that
/// expired before its payment arrived is re-held and re-confirmed if every
/// unit is still free, else refunded in full. Returns the last position.
pub async fn settle_payment(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
) -> Result<i64, CommandError> {
    let id = order_id.to_string();
    let order = app.orders.load(&id, &context.principal).await?;
    match order.status() {
        OrderStatus::Confirmed | OrderStatus::Completed => {
            match holds::confirm(app, context, &order).await? {
                Confirmed::All(position) => Ok(position),
                Confirmed::Lost(conflict) => {
                    // The units went to someone else while the payment was
                    // on its way: the customer gets the money back.
                    tracing::warn!(%order_id, error = %conflict, "paid order lost its units; refunding");
                    let cancel = OrderCommand::Cancel {
                        reason: Some("units no longer available".into()),
                        at: app.clock.now(),
                    };
                    let committed = app
                        .orders
                        .execute(&id, cancel, context, "CancelOrder")
                        .await?;
                    let order = app.orders.load(&id, &context.principal).await?;
                    let released =
                        holds::release(app, context, &order, "units no longer available").await?;
                    Ok(committed.position.max(released))
                }
            }
        }
        OrderStatus::Cancelled
            if order.cancelled_by_expiry() && order.captured_amount() >= order.total() =>
        {
            match holds::confirm(app, context, &order).await? {
                Confirmed::All(position) => {
                    let committed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::Reconfirm {
                                at: app.clock.now(),
                            },
                            context,
                            "ReconfirmOrder",
                        )
                        .await?;
                    Ok(position.max(committed.position))
                }
                Confirmed::Lost(_) => {
                    let released =
                        holds::release(app, context, &order, "units no longer available").await?;
                    let committed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::RefundLapsed {
                                at: app.clock.now(),
                            },
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
