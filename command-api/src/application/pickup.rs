//! Picking up a rental line (API.md "Rentals", issue 13 item 2). On or
//! after its booked start the Order records the pickup. Before it, the
//! earlier time must be free: the line is first extended back to the
//! pickup time with the adjustment saga (`adjust_line`), so the Inventory
//! holds `[pickup, end)` atomically (409 `unavailable` when another
//! booking has those units) and the Order prices it as an extension,
//! awaiting payment like any other; only then does the Order take the
//! pickup, which it refuses before the start without such an extension.
//!
//! A retried request finds the extension recorded and does not ask again.

use chrono::{DateTime, Utc};
use domain::{AdjustmentKind, DomainError, LineStatus, OrderCommand, OrderStatus, Period};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::adjust_line::{adjust_line, Adjusted};
use super::overdue::record_return_due;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::deadlines::ReturnDue;
use crate::CommandApp;

/// What a pickup recorded.
pub struct PickedUp {
    /// The extension to the pickup time, when the line left early.
    pub early: Option<EarlyPickup>,
    pub position: i64,
}

/// The extension an early pickup made.
pub struct EarlyPickup {
    pub adjustment_id: Uuid,
    /// What the customer pays for the earlier hours.
    pub amount_due: Decimal,
    pub hold_expires_at: Option<DateTime<Utc>>,
}

pub async fn pick_up_line(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    line_id: Uuid,
) -> Result<PickedUp, CommandError> {
    let id = order_id.to_string();
    let now = app.clock.now();
    let order = app.orders.load(&id, &context.principal).await?;
    let line = order
        .line(line_id)
        .cloned()
        .ok_or(DomainError::not_found("line"))?;
    let mut early = None;
    let mut position = 0;
    let before_start = line.start.is_some_and(|start| now < start);
    if before_start
        && order.status() == OrderStatus::Confirmed
        && order.line_status(line_id) == Some(LineStatus::Pending)
        && !order.holds_earlier(line_id, now)
    {
        let end = line
            .end
            .ok_or_else(|| CommandError::internal("a rental line without an end"))?;
        let period = Period { start: now, end };
        let Adjusted {
            adjustment_id,
            amount_due,
            hold_expires_at,
            position: adjusted,
        } = adjust_line(
            app,
            context,
            order_id,
            line_id,
            AdjustmentKind::Extension,
            period,
        )
        .await?;
        position = adjusted;
        early = Some(EarlyPickup {
            adjustment_id,
            amount_due,
            hold_expires_at,
        });
    }
    let committed = app
        .orders
        .execute(
            &id,
            OrderCommand::PickUpLine { line_id, at: now },
            context,
            "PickUpLine",
        )
        .await?;
    // Due back at its end: past it the sweeper marks it overdue.
    if let Some(end) = line.end {
        let due = ReturnDue {
            order_id,
            line_id,
            listing_id: line.listing_id,
            hold_id: line.hold_id,
            due_at: end,
        };
        record_return_due(app, due).await?;
    }
    Ok(PickedUp {
        early,
        position: position.max(committed.position),
    })
}
