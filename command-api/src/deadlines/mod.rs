//! What the sweeper acts on when its time comes:
//! - holds that lapsed unconfirmed (`lapsed_holds`): an order and its holds
//!   are recorded in one transaction (issue 18), so no crash strands a hold,
//!   and no deadline row is written per order any more. The holds are found
//!   where they are already recorded: the availability read model
//!   (`rm_allocations`) in PostgreSQL, the Inventory aggregates in memory.
//!   The aggregates decide (DESIGN.md: "an unpaid hold never blocks a unit
//!   after its expiry plus one sweep": the Inventory never counts a lapsed
//!   hold, whatever the sweeper does);
//! - extensions and reschedules awaiting payment (`AdjustmentDue`);
//! - picked-up rental lines due back (`ReturnDue`), marked overdue past it.
//!
//! `postgres` keeps the last two in tables, `memory` in maps for tests.

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

    /// Up to `limit` orders whose holds lapsed unconfirmed by `now`
    /// (earliest expiry first), each with those holds. Not claimed:
    /// settling an order twice records nothing new.
    async fn lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Deadline>, CommandError>;

    /// Notes that these lapsed holds' orders were settled at `at`: where
    /// the holds are found in a read model that lags, they are not handed
    /// out again for a while.
    fn swept(&self, _holds: &[DeadlineHold], _at: DateTime<Utc>) {}
}
