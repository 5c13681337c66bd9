//! Expires unpaid holds and cancels their orders (DESIGN.md: "an unpaid
//! hold never blocks a unit after its expiry plus one sweep").
//!
//! The saga writes each order's hold deadline before placing any hold. The
//! sweeper takes due deadlines with `FOR UPDATE SKIP LOCKED`, so replicas
//! share the work without doing it twice, and settles each by asking the
//! aggregates, which decide:
//! - an order still awaiting payment is cancelled and its holds expire;
//! - a paid order's holds are confirmed (repairing a crash mid-payment);
//! - holds whose order was never recorded (the saga died) expire.

use chrono::{DateTime, Utc};
use domain::{DomainError, InventoryCommand, OrderCommand, OrderStatus};
use serde::Deserialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::Principal;
use crate::bus::{CommandError, StoreError};
use crate::context::CommandContext;
use crate::idempotency::IdempotencyStore;
use crate::routes::now;
use crate::{reactions, AppState, CommandApp};

/// Deadlines taken per round.
const BATCH: i64 = 100;

#[derive(Deserialize)]
struct DeadlineHold {
    listing_id: Uuid,
    hold_id: Uuid,
}

/// Runs until `shutdown` turns true.
pub async fn run(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let idempotency = IdempotencyStore::new(app.pool.clone());
    let mut rounds: u64 = 0;
    loop {
        match sweep_once(&app).await {
            Ok(settled) if settled > 0 => tracing::info!(settled, "swept lapsed holds"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "hold sweep failed; will retry"),
        }
        // Forget idempotency keys past their retention about once an hour.
        rounds += 1;
        if rounds.is_multiple_of((3600 / app.config.sweep_interval.as_secs().max(1)).max(1)) {
            if let Err(err) = idempotency.purge_expired().await {
                tracing::warn!(error = %err, "could not purge idempotency keys");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(app.config.sweep_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One round: settles up to a batch of due deadlines. Returns how many.
pub async fn sweep_once(app: &CommandApp) -> Result<usize, CommandError> {
    let mut tx = app.pool.begin().await?;
    let due: Vec<(Uuid, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT order_id, holds, expires_at FROM hold_deadlines
          WHERE settled_at IS NULL AND expires_at <= now()
          ORDER BY expires_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut settled = Vec::with_capacity(due.len());
    for (order_id, holds, _) in &due {
        let holds: Vec<DeadlineHold> = serde_json::from_value(holds.clone())
            .map_err(|e| StoreError::Failed(format!("bad hold deadline: {e}")))?;
        match settle(app, *order_id, &holds).await {
            Ok(()) => settled.push(*order_id),
            Err(err) => tracing::warn!(%order_id, error = %err, "could not settle a lapsed order"),
        }
    }
    if !settled.is_empty() {
        sqlx::query("UPDATE hold_deadlines SET settled_at = now() WHERE order_id = ANY($1)")
            .bind(&settled)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(settled.len())
}

async fn settle(
    app: &CommandApp,
    order_id: Uuid,
    holds: &[DeadlineHold],
) -> Result<(), CommandError> {
    let context =
        CommandContext::background(Principal::system("sweeper"), format!("sweep:{order_id}"));
    let id = order_id.to_string();
    let at = now();
    let mut order = app.orders.load(&id).await?;
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
        order = app.orders.load(&id).await?;
    }
    if order.is_placed() {
        match order.status() {
            OrderStatus::Confirmed | OrderStatus::Completed => {
                reactions::settle_payment(app, &context, order_id).await?;
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
