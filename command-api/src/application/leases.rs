//! Leases (rental lines paid by instalments, issue 15) on the app's clock.
//!
//! The Order aggregate decides (`domain::order::lease`); this module asks
//! it at the right times, as `billing` does for subscriptions, with the
//! same dunning policy (`LEDGER_DUNNING_*`). `lease_schedule` (migration
//! 0032) keeps when each order's lease next needs a look: rewritten after
//! every command that may change it, so a crash leaves it early (the next
//! look finds nothing due and moves it on) or, at worst, as it was. A
//! termination that returns a line not picked up frees its units in the
//! Inventory (`RecordReturn` at the termination) and makes the vendor's
//! part available once it is fulfilled, as a return does.

use chrono::{DateTime, Utc};
use domain::{DomainError, InventoryCommand, Order, OrderCommand, OrderEvent};
use uuid::Uuid;

use super::earnings::credit_fulfilled_part;
use crate::auth::Principal;
use crate::bus::{CommandError, Committed};
use crate::context::CommandContext;
use crate::CommandApp;

/// Orders looked at per round.
pub const BATCH: i64 = 100;

/// Records when the lease of `order_id` next needs a look (`None`: never).
pub async fn schedule(
    app: &CommandApp,
    order_id: Uuid,
    next_due: Option<DateTime<Utc>>,
) -> Result<(), CommandError> {
    sqlx::query(
        "INSERT INTO lease_schedule (order_id, next_due_at, updated_at)
         VALUES ($1, $2, $3)
         ON CONFLICT (order_id)
         DO UPDATE SET next_due_at = EXCLUDED.next_due_at, updated_at = EXCLUDED.updated_at",
    )
    .bind(order_id)
    .bind(next_due)
    .bind(app.clock.now())
    .execute(&app.pool)
    .await?;
    Ok(())
}

/// Brings the schedule of an order's lease up to date (nothing for an
/// order without one).
pub async fn reschedule(app: &CommandApp, order: &Order) -> Result<(), CommandError> {
    let (Some(order_id), Some(_)) = (order.order_id(), order.lease()) else {
        return Ok(());
    };
    schedule(app, order_id, order.lease_next_due(&app.config.dunning)).await
}

/// What a lease command recorded beyond the Order: a line returned by the
/// termination frees its units from then on, and a part it fulfilled is
/// made available to its vendor. Returns the last position recorded.
pub async fn follow_up(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
    committed: &Committed<Order>,
) -> Result<i64, CommandError> {
    let Some(order_id) = order.order_id() else {
        return Ok(committed.position);
    };
    let mut position = committed.position;
    for event in &committed.events {
        match &event.payload {
            OrderEvent::LineReturned {
                line_id,
                returned_at,
                ..
            } => {
                let Some(line) = order.line(*line_id) else {
                    continue;
                };
                let returned = app
                    .inventory
                    .execute(
                        &line.listing_id.to_string(),
                        InventoryCommand::RecordReturn {
                            hold_id: line.hold_id,
                            returned_at: *returned_at,
                        },
                        context,
                        "RecordReturn",
                    )
                    .await?;
                position = position.max(returned.position);
            }
            OrderEvent::VendorPartFulfilled { vendor_id, net } => {
                let credited =
                    credit_fulfilled_part(app, context, order_id, *vendor_id, *net).await?;
                position = position.max(credited);
            }
            _ => {}
        }
    }
    Ok(position)
}

/// The customer or an admin ends the lease of `line_id` now.
pub async fn terminate(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    line_id: Uuid,
) -> Result<(Order, i64), CommandError> {
    let id = order_id.to_string();
    let committed = app
        .orders
        .execute(
            &id,
            OrderCommand::TerminateLease {
                line_id,
                at: app.clock.now(),
            },
            context,
            "TerminateLease",
        )
        .await?;
    let order = app.orders.load(&id).await?;
    let position = follow_up(app, context, &order, &committed).await?;
    reschedule(app, &order).await?;
    Ok((order, position))
}

/// Takes every dunning step due by now on one order's lease. Returns the
/// events recorded.
pub async fn advance(app: &CommandApp, order_id: Uuid) -> Result<usize, CommandError> {
    let context =
        CommandContext::background(Principal::system("leases"), format!("leases:{order_id}"));
    let id = order_id.to_string();
    let committed = app
        .orders
        .execute(
            &id,
            OrderCommand::DunInstalments {
                dunning: app.config.dunning.clone(),
                at: app.clock.now(),
            },
            &context,
            "DunInstalments",
        )
        .await?;
    let order = app.orders.load(&id).await?;
    follow_up(app, &context, &order, &committed).await?;
    reschedule(app, &order).await?;
    Ok(committed.events.len())
}

/// One round: every lease due by the app's clock (up to [`BATCH`])
/// advanced. Returns the events recorded.
pub async fn tick(app: &CommandApp) -> Result<usize, CommandError> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT order_id FROM lease_schedule
         WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT $2",
    )
    .bind(app.clock.now())
    .bind(BATCH)
    .fetch_all(&app.pool)
    .await?;
    let mut recorded = 0;
    for order_id in due {
        match advance(app, order_id).await {
            Ok(n) => recorded += n,
            Err(CommandError::Rejected(DomainError::NotFound { .. })) => {
                schedule(app, order_id, None).await?
            }
            Err(err) if err.is_failure() => return Err(err),
            Err(err) => {
                tracing::warn!(%order_id, error = %err, "could not advance a lease")
            }
        }
    }
    Ok(recorded)
}
