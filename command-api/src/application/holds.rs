//! An order's holds follow its outcome: released when it is cancelled or
//! refunded, expired when it lapsed unpaid (so that a late payment may
//! still re-hold them), confirmed when it is paid, re-held first if they
//! lapsed. Each command is idempotent in the Inventory aggregate, so
//! running one twice (a retried request, the sweeper, a policy) records
//! nothing new.

use domain::{DomainError, InventoryCommand, Order};

use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::CommandApp;

/// Releases every hold of the order. Returns the last position recorded.
pub async fn release(
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
/// by the app's clock, or already settled, is left as it is.
pub async fn expire(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
) -> Result<i64, CommandError> {
    let mut position = 0;
    for (listing_id, hold_id) in order.hold_ids() {
        let command = InventoryCommand::ExpireHold {
            hold_id,
            now: app.clock.now(),
        };
        match app
            .inventory
            .execute(&listing_id.to_string(), command, context, "ExpireHold")
            .await
        {
            Ok(committed) => position = position.max(committed.position),
            // Never placed, settled already or not due by this clock.
            Err(
                CommandError::Rejected(DomainError::NotFound { .. } | DomainError::InvalidState(_))
                | CommandError::Conflict,
            ) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(position)
}

/// How confirming an order's holds came out.
pub enum Confirmed {
    /// Every hold is confirmed; the last position recorded.
    All(i64),
    /// One could not be (its units went elsewhere, or it was released):
    /// the holds confirmed before it stay confirmed.
    Lost(CommandError),
}

/// Confirms every hold of the order; lapsed ones are re-held if the units
/// are still free. Stops at the first that cannot be, for the caller to
/// settle.
pub async fn confirm(
    app: &CommandApp,
    context: &CommandContext,
    order: &Order,
) -> Result<Confirmed, CommandError> {
    let mut position = 0;
    for (listing_id, hold_id) in order.hold_ids() {
        let command = InventoryCommand::ConfirmHold {
            hold_id,
            now: app.clock.now(),
        };
        match app
            .inventory
            .execute(&listing_id.to_string(), command, context, "ConfirmHold")
            .await
        {
            Ok(committed) => position = position.max(committed.position),
            Err(
                lost @ (CommandError::Rejected(
                    DomainError::Unavailable { .. } | DomainError::InvalidState(_),
                )
                | CommandError::Conflict),
            ) => return Ok(Confirmed::Lost(lost)),
            Err(err) => return Err(err),
        }
    }
    Ok(Confirmed::All(position))
}
