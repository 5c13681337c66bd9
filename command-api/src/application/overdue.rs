//! Late returns (API.md "Rentals"): a picked-up rental line not returned by
//! its end becomes overdue, by the sweeper on the app's clock. The Order
//! records `LineOverdue` (status `overdue`) and the Inventory `HoldOverdue`,
//! after which the unit counts as out until it is returned, so no new hold
//! can take it. Both commands are idempotent in their aggregates, so a
//! sweep cut short, or two sweepers, only repeat no-ops.

use domain::{DomainError, InventoryCommand, OrderCommand};

use crate::auth::Principal;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::deadlines::ReturnDue;
use crate::CommandApp;

/// Return deadlines taken per round.
pub const BATCH: usize = 100;

/// Notes when a picked-up line is due back. Called on every pickup
/// request (a retried one too: recording again is a no-op).
pub async fn record_return_due(app: &CommandApp, due: ReturnDue) -> Result<(), CommandError> {
    app.deadlines.record_return(&due).await
}

/// One round: marks overdue up to a batch of lines due back by now.
/// Returns how many it settled.
pub async fn mark_overdue_lines(app: &CommandApp) -> Result<usize, CommandError> {
    let now = app.clock.now();
    let due = app.deadlines.returns_due(now, BATCH).await?;
    let mut settled = 0;
    for line in due {
        match mark_overdue(app, &line).await {
            Ok(()) => {
                app.deadlines.settle_return(line.line_id, now).await?;
                settled += 1;
            }
            Err(err) => {
                tracing::warn!(line_id = %line.line_id, error = %err, "could not mark a line overdue")
            }
        }
    }
    Ok(settled)
}

async fn mark_overdue(app: &CommandApp, due: &ReturnDue) -> Result<(), CommandError> {
    let context = CommandContext::background(
        Principal::system("sweeper"),
        format!("overdue:{}", due.line_id),
    );
    let at = app.clock.now();
    let order = app
        .orders
        .execute(
            &due.order_id.to_string(),
            OrderCommand::MarkLineOverdue {
                line_id: due.line_id,
                at,
            },
            &context,
            "MarkLineOverdue",
        )
        .await;
    match order {
        Ok(_) => {}
        // Returned already, or (a clock behind) not ended: nothing to keep.
        Err(CommandError::Rejected(DomainError::InvalidState(_))) => return Ok(()),
        Err(err) => return Err(err),
    }
    let command = InventoryCommand::MarkOverdue {
        hold_id: due.hold_id,
        now: at,
    };
    match app
        .inventory
        .execute(
            &due.listing_id.to_string(),
            command,
            &context,
            "MarkOverdue",
        )
        .await
    {
        Ok(_) | Err(CommandError::Rejected(DomainError::InvalidState(_))) => Ok(()),
        Err(err) => Err(err),
    }
}
