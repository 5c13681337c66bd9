//! Leases (rental lines paid by instalments, issue 15) on the app's clock.
//!
//! The Order aggregate decides (`domain::order::lease`); this module asks
//! it at the right times, as `billing` does for subscriptions, with the
//! same dunning policy (`LEDGER_DUNNING_*`). `lease_schedule` (migration
//! 0032) keeps when each order's lease next needs a look: rewritten after
//! every command that may change it (and set to now before a termination),
//! so a crash leaves it early (the next look finds nothing due and moves it
//! on) or as it was. A termination that returns a line not picked up frees
//! its units in the Inventory (`RecordReturn` at the termination) and makes
//! the vendor's part available once it is fulfilled, as a return does;
//! every look repeats that (idempotent) so a crash in between is repaired.

use chrono::{DateTime, Utc};
use domain::{DomainError, InventoryCommand, Order, OrderCommand, PartStatus};
use uuid::Uuid;

use super::earnings::credit_fulfilled_part;
use crate::auth::Principal;
use crate::bus::CommandError;
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

/// What a terminated lease needs beyond the Order, from the order's state
/// (so a look after a crash repairs what the crash left undone; each step
/// is idempotent): a line the termination returned (never picked up) frees
/// its units in the Inventory from the termination, and a vendor's part it
/// fulfilled is made available. Returns the last position recorded.
pub async fn follow_up(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
) -> Result<i64, CommandError> {
    let (Some(order_id), Some((line_id, lease))) = (order.order_id(), order.lease()) else {
        return Ok(0);
    };
    let (Some((_, ended_at)), Some(line)) = (lease.ended, order.line(line_id)) else {
        return Ok(0);
    };
    let returned_by_termination = order.picked_up_at(line_id).is_none()
        && order
            .line_return(line_id)
            .is_some_and(|r| r.returned_at == ended_at);
    if !returned_by_termination {
        return Ok(0);
    }
    let returned = app
        .inventory
        .execute(
            &line.listing_id.to_string(),
            InventoryCommand::RecordReturn {
                hold_id: line.hold_id,
                returned_at: ended_at,
            },
            context,
            "RecordReturn",
        )
        .await?;
    let mut position = returned.position;
    if order.part_status(line.vendor_id) == Some(PartStatus::Fulfilled) {
        if let Some(net) = order.fulfilled_net(line.vendor_id) {
            let credited =
                credit_fulfilled_part(app, context, order_id, line.vendor_id, net).await?;
            position = position.max(credited);
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
    // First, so that a crash right after the termination gets its units
    // freed by the scheduler's next look.
    schedule(app, order_id, Some(app.clock.now())).await?;
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
    let order = app.orders.load(&id, &context.principal).await?;
    let position = follow_up(app, context, &order).await?;
    reschedule(app, &order).await?;
    Ok((order, committed.position.max(position)))
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
    let order = app.orders.load(&id, &context.principal).await?;
    follow_up(app, &context, &order).await?;
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
