//! Extensions and reschedules of a rental line (API.md "Rentals", issue 13
//! item 4), a short saga like placing an order:
//!
//! 1. the Order prices the change on its current state (404/409/422 before
//!    anything is held) at the listing's current price;
//! 2. the adjustment's deadline is written, so that a change stranded by a
//!    crash is still lapsed by the sweeper;
//! 3. the Inventory holds the new period atomically (409 `unavailable`, or
//!    the schedule's 422 rules);
//! 4. the Order records the adjustment: awaiting payment, or, with nothing
//!    to pay, confirmed at once (a cheaper reschedule refunded by policy)
//!    and the hold moved.
//!
//! A payment naming the adjustment (`pay_adjustment`) confirms it: the
//! Inventory moves the hold (holding it again if it lapsed), then the Order
//! takes the new period; if the units went elsewhere the payment is
//! refunded. `settle_adjustment` brings the Inventory in line with the
//! Order's word; the payment, the request and the sweeper all run it, and
//! every step is idempotent, so running it again repairs a crash half-way.

use chrono::{DateTime, Utc};
use domain::{
    AdjustmentKind, AdjustmentRequest, AdjustmentStatus, DomainError, InventoryCommand,
    ListingTerms, OrderCommand, OrderEvent, Period,
};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::overdue::record_return_due;
use super::record_payment::{Payment, PaymentRecorded};
use crate::auth::Principal;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::deadlines::{AdjustmentDue, ReturnDue};
use crate::CommandApp;

/// Adjustment deadlines taken per sweep.
pub const BATCH: usize = 100;

/// The recorded adjustment, as the route answers it.
pub struct Adjusted {
    pub adjustment_id: Uuid,
    /// Negative: refunded.
    pub amount_due: Decimal,
    /// When it lapses unpaid; `None` when nothing was due (confirmed).
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub position: i64,
}

pub async fn adjust_line(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    line_id: Uuid,
    kind: AdjustmentKind,
    period: Period,
) -> Result<Adjusted, CommandError> {
    let id = order_id.to_string();
    let order = app.orders.load(&id, &context.principal).await?;
    if !order.is_placed() {
        return Err(DomainError::not_found("order").into());
    }
    let line = order
        .line(line_id)
        .cloned()
        .ok_or(DomainError::not_found("line"))?;
    let listing = app
        .listings
        .load(&line.listing_id.to_string(), &context.principal)
        .await?;
    let price_per_unit = match listing.terms() {
        Some(ListingTerms::Rental { price_per_unit, .. }) => *price_per_unit,
        _ => line.unit_price,
    };
    let now = app.clock.now();
    let hold_expires_at = now
        + chrono::Duration::from_std(app.tenant_terms(&context.principal).await?.hold_ttl)
            .map_err(|_| CommandError::internal("hold TTL out of range"))?;
    let adjustment_id = Uuid::now_v7();
    let request = AdjustmentRequest {
        adjustment_id,
        line_id,
        kind,
        period,
        price_per_unit,
        hold_expires_at,
        now,
    };
    let planned = order.plan_adjustment(&request)?;

    let due = AdjustmentDue {
        adjustment_id,
        order_id,
        line_id,
        listing_id: line.listing_id,
        hold_id: line.hold_id,
        expires_at: hold_expires_at,
    };
    app.deadlines.record_adjustment(&due).await?;
    let listing_key = line.listing_id.to_string();
    let hold = InventoryCommand::PlaceChange {
        hold_id: line.hold_id,
        change_id: adjustment_id,
        period: planned.period(),
        expires_at: hold_expires_at,
        extension: kind == AdjustmentKind::Extension,
        now,
    };
    let held = match app
        .inventory
        .execute(&listing_key, hold, context, "PlaceChange")
        .await
    {
        Ok(held) => held,
        Err(err) => {
            settle_deadline(app, adjustment_id).await;
            return Err(err);
        }
    };
    let recorded = match app
        .orders
        .execute(
            &id,
            OrderCommand::RequestAdjustment { request },
            context,
            "RequestAdjustment",
        )
        .await
    {
        Ok(recorded) => recorded,
        Err(err) => {
            let lapse = InventoryCommand::LapseChange {
                hold_id: line.hold_id,
                change_id: adjustment_id,
            };
            if let Err(e) = app
                .inventory
                .execute(&listing_key, lapse, context, "LapseChange")
                .await
            {
                // It lapses on its own at its expiry.
                tracing::warn!(%adjustment_id, error = %e, "could not lapse a change");
            }
            settle_deadline(app, adjustment_id).await;
            return Err(err);
        }
    };
    let amount_due = recorded
        .events
        .iter()
        .find_map(|e| match &e.payload {
            OrderEvent::AdjustmentRequested { adjustment, .. } => Some(adjustment.amount_due),
            _ => None,
        })
        .unwrap_or(planned.amount_due);
    let mut position = held.position.max(recorded.position);
    if amount_due <= Decimal::ZERO {
        position = position.max(settle_adjustment(app, context, order_id, adjustment_id).await?);
    }
    Ok(Adjusted {
        adjustment_id,
        amount_due,
        hold_expires_at: (amount_due > Decimal::ZERO).then_some(hold_expires_at),
        position,
    })
}

/// A provider's payment naming an adjustment of `order_id`.
pub async fn pay_adjustment(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    adjustment_id: Uuid,
    payment: Payment,
) -> Result<PaymentRecorded, CommandError> {
    let command = OrderCommand::PayAdjustment {
        adjustment_id,
        payment_id: payment.payment_id,
        intent_id: payment.intent_id,
        amount_minor: payment.amount_minor,
        currency: payment.currency,
        outcome: payment.outcome,
    };
    let id = order_id.to_string();
    let committed = app
        .orders
        .execute(&id, command, context, "PayAdjustment")
        .await?;
    let duplicate = committed.events.is_empty();
    // On duplicates too: a redelivery repairs what a crash left.
    let settled = settle_adjustment(app, context, order_id, adjustment_id).await?;
    let order = app.orders.load(&id, &context.principal).await?;
    Ok(PaymentRecorded {
        duplicate,
        status: order.status(),
        position: committed.position.max(settled),
    })
}

/// Brings the Inventory (and the return deadline) in line with where the
/// Order says the adjustment stands; lapses one unpaid past its expiry.
/// Returns the last position recorded (0 if nothing was).
pub async fn settle_adjustment(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    adjustment_id: Uuid,
) -> Result<i64, CommandError> {
    let id = order_id.to_string();
    let order = app.orders.load(&id, &context.principal).await?;
    let Some(state) = order.adjustment(adjustment_id).cloned() else {
        return Ok(0);
    };
    let Some(line) = order.line(state.adjustment.line_id).cloned() else {
        return Ok(0);
    };
    let listing_key = line.listing_id.to_string();
    let now = app.clock.now();
    let mut position = 0;
    let apply = InventoryCommand::ApplyChange {
        hold_id: line.hold_id,
        change_id: adjustment_id,
        now,
    };
    let lapse = InventoryCommand::LapseChange {
        hold_id: line.hold_id,
        change_id: adjustment_id,
    };
    match state.status {
        AdjustmentStatus::AwaitingPayment if state.adjustment.hold_expires_at > now => {
            return Ok(0)
        }
        AdjustmentStatus::AwaitingPayment | AdjustmentStatus::Lapsed => {
            let lapsed = app
                .orders
                .execute(
                    &id,
                    OrderCommand::LapseAdjustment {
                        adjustment_id,
                        at: now,
                    },
                    context,
                    "LapseAdjustment",
                )
                .await?;
            position = position.max(lapsed.position);
            let released = app
                .inventory
                .execute(&listing_key, lapse, context, "LapseChange")
                .await?;
            position = position.max(released.position);
        }
        AdjustmentStatus::Paid => {
            match app
                .inventory
                .execute(&listing_key, apply, context, "ApplyChange")
                .await
            {
                Ok(applied) => {
                    position = position.max(applied.position);
                    let confirmed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::ConfirmAdjustment {
                                adjustment_id,
                                at: now,
                            },
                            context,
                            "ConfirmAdjustment",
                        )
                        .await?;
                    position = position.max(confirmed.position);
                    move_return_due(app, &order, &line, state.adjustment.end).await?;
                }
                // Its units went elsewhere after it lapsed: the payment
                // is refunded and the line keeps its period.
                Err(CommandError::Rejected(
                    err @ (DomainError::Unavailable { .. }
                    | DomainError::NotFound { .. }
                    | DomainError::InvalidState(_)),
                )) => {
                    tracing::warn!(%order_id, %adjustment_id, error = %err, "a paid change could not be applied; refunding");
                    let lapsed = app
                        .orders
                        .execute(
                            &id,
                            OrderCommand::LapseAdjustment {
                                adjustment_id,
                                at: now,
                            },
                            context,
                            "LapseAdjustment",
                        )
                        .await?;
                    position = position.max(lapsed.position);
                }
                Err(err) => return Err(err),
            }
        }
        AdjustmentStatus::Confirmed => {
            match app
                .inventory
                .execute(&listing_key, apply, context, "ApplyChange")
                .await
            {
                Ok(applied) => position = position.max(applied.position),
                Err(CommandError::Rejected(err)) => {
                    tracing::error!(%order_id, %adjustment_id, error = %err, "the Inventory refused a confirmed change");
                }
                Err(err) => return Err(err),
            }
            move_return_due(app, &order, &line, state.adjustment.end).await?;
        }
    }
    settle_deadline(app, adjustment_id).await;
    Ok(position)
}

/// A picked-up line's return deadline follows its new end.
async fn move_return_due(
    app: &CommandApp,
    order: &domain::Order,
    line: &domain::PricedLine,
    end: DateTime<Utc>,
) -> Result<(), CommandError> {
    if order.picked_up_at(line.line_id).is_none() {
        return Ok(());
    }
    let Some(order_id) = order.order_id() else {
        return Ok(());
    };
    record_return_due(
        app,
        ReturnDue {
            order_id,
            line_id: line.line_id,
            listing_id: line.listing_id,
            hold_id: line.hold_id,
            due_at: end,
        },
    )
    .await
}

/// One sweep: lapses adjustments unpaid past their expiry (and repairs
/// paid ones a crash left half-applied). Returns how many it settled.
pub async fn lapse_due_adjustments(app: &CommandApp) -> Result<usize, CommandError> {
    let now = app.clock.now();
    let due = app.deadlines.adjustments_due(now, BATCH).await?;
    let mut settled = 0;
    for adjustment in due {
        let context = CommandContext::background(
            Principal::system("sweeper"),
            format!("adjustment:{}", adjustment.adjustment_id),
        );
        match settle_adjustment(app, &context, adjustment.order_id, adjustment.adjustment_id).await
        {
            Ok(_) => settled += 1,
            Err(err) => {
                tracing::warn!(adjustment_id = %adjustment.adjustment_id, error = %err, "could not settle an adjustment")
            }
        }
    }
    Ok(settled)
}

/// Marks an adjustment's deadline dealt with. Best effort: an unsettled
/// one only makes the sweeper look again, harmlessly.
async fn settle_deadline(app: &CommandApp, adjustment_id: Uuid) {
    if let Err(err) = app
        .deadlines
        .settle_adjustment(adjustment_id, app.clock.now())
        .await
    {
        tracing::warn!(%adjustment_id, error = %err, "could not settle the adjustment deadline");
    }
}
