//! Hold deadlines: the saga records each order's deadline (its holds and
//! when they lapse) before it places any hold, so that holds a crash
//! strands are still found; the sweeper claims the due ones and settles
//! them (DESIGN.md: "an unpaid hold never blocks a unit after its expiry
//! plus one sweep").
//!
//! `postgres` keeps them in the `hold_deadlines` table, `memory` in a map
//! for tests. The same stores keep when picked-up rental lines are due
//! back (`ReturnDue`), which the sweeper marks overdue.

pub mod memory;
pub mod postgres;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bus::CommandError;

pub use memory::MemoryDeadlines;
pub use postgres::PostgresDeadlines;

/// One hold an order placed (or was about to place).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineHold {
    pub listing_id: Uuid,
    pub hold_id: Uuid,
}

/// An order's holds and when they lapse unpaid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub order_id: Uuid,
    pub holds: Vec<DeadlineHold>,
    pub expires_at: DateTime<Utc>,
}

/// When a picked-up rental line is due back: past it, the sweeper marks
/// the line overdue (it keeps its units until it is returned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReturnDue {
    pub order_id: Uuid,
    pub line_id: Uuid,
    pub listing_id: Uuid,
    pub hold_id: Uuid,
    pub due_at: DateTime<Utc>,
}

/// An extension or reschedule awaiting payment: its order (a payment may
/// name only the adjustment) and when it lapses unpaid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdjustmentDue {
    pub adjustment_id: Uuid,
    pub order_id: Uuid,
    pub line_id: Uuid,
    pub listing_id: Uuid,
    pub hold_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// What a store that keeps no adjustments answers.
fn no_adjustments() -> CommandError {
    CommandError::internal("this deadline store keeps no adjustments")
}

#[async_trait]
pub trait HoldDeadlines: Send + Sync {
    /// Records an adjustment's deadline (again: no-op).
    async fn record_adjustment(&self, _due: &AdjustmentDue) -> Result<(), CommandError> {
        Err(no_adjustments())
    }

    /// The adjustment's deadline, if it was recorded.
    async fn adjustment(
        &self,
        _adjustment_id: Uuid,
    ) -> Result<Option<AdjustmentDue>, CommandError> {
        Err(no_adjustments())
    }

    /// Up to `limit` unsettled adjustment deadlines due by `now`, oldest
    /// first. Not claimed: settling one twice records nothing new.
    async fn adjustments_due(
        &self,
        _now: DateTime<Utc>,
        _limit: usize,
    ) -> Result<Vec<AdjustmentDue>, CommandError> {
        Ok(Vec::new())
    }

    /// Marks an adjustment's deadline dealt with.
    async fn settle_adjustment(
        &self,
        _adjustment_id: Uuid,
        _at: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        Ok(())
    }

    /// Records when a picked-up rental line is due back (again: the new
    /// time, if not settled yet; an extension moves it).
    async fn record_return(&self, due: &ReturnDue) -> Result<(), CommandError>;

    /// Up to `limit` unsettled return deadlines due by `now`, oldest first.
    /// Not claimed: marking a line overdue twice records nothing new.
    async fn returns_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReturnDue>, CommandError>;

    /// Marks a line's return deadline dealt with (marked overdue).
    async fn settle_return(&self, line_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError>;

    /// Records an order's deadline; the saga does so before any hold.
    async fn record(&self, deadline: &Deadline) -> Result<(), CommandError>;

    /// Marks an order's deadline as dealt with (at `at`).
    async fn settle(&self, order_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError>;

    /// Claims up to `limit` unsettled deadlines due by `now`, oldest first,
    /// that no other sweeper holds. They stay claimed until the claim is
    /// settled or dropped.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Box<dyn DueDeadlines>, CommandError>;
}

/// Deadlines a sweeper claimed.
#[async_trait]
pub trait DueDeadlines: Send {
    fn deadlines(&self) -> &[Deadline];

    /// Marks these orders' deadlines settled at `at` and lets the claim go;
    /// the others of the claim stay due.
    async fn settle(
        self: Box<Self>,
        order_ids: &[Uuid],
        at: DateTime<Utc>,
    ) -> Result<(), CommandError>;
}
