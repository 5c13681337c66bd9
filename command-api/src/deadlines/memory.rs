//! The sweeper's deadlines in memory, for tests: the same answers as
//! PostgreSQL, for one sweeper at a time (lapsed holds from the memory
//! Inventory aggregates).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use domain::{HoldStatus, Inventory};

use super::{AdjustmentDue, Deadline, DeadlineHold, HoldDeadlines, ReturnDue};
use crate::bus::{CommandError, EventStorage, MemoryStorage};

/// A return deadline and when it was settled.
type ReturnEntry = (ReturnDue, Option<DateTime<Utc>>);

#[derive(Clone, Default)]
pub struct MemoryDeadlines {
    /// Where lapsed holds are found (none: nowhere).
    inventory: Option<Arc<MemoryStorage<Inventory>>>,
    /// Return deadlines by line, and when each was settled.
    returns: Arc<Mutex<HashMap<Uuid, ReturnEntry>>>,
    /// Adjustment deadlines by id, and when each was settled.
    adjustments: Arc<Mutex<HashMap<Uuid, AdjustmentEntry>>>,
}

/// An adjustment deadline and when it was settled.
type AdjustmentEntry = (AdjustmentDue, Option<DateTime<Utc>>);

impl MemoryDeadlines {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deadlines that find lapsed holds in `inventory`'s aggregates.
    pub fn watching(inventory: Arc<MemoryStorage<Inventory>>) -> Self {
        Self {
            inventory: Some(inventory),
            ..Self::default()
        }
    }
}

#[async_trait]
impl HoldDeadlines for MemoryDeadlines {
    async fn record_adjustment(&self, due: &AdjustmentDue) -> Result<(), CommandError> {
        self.adjustments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(due.adjustment_id)
            .or_insert((*due, None));
        Ok(())
    }

    async fn adjustment(&self, adjustment_id: Uuid) -> Result<Option<AdjustmentDue>, CommandError> {
        Ok(self
            .adjustments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&adjustment_id)
            .map(|(due, _)| *due))
    }

    async fn adjustments_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AdjustmentDue>, CommandError> {
        let mut due: Vec<AdjustmentDue> = self
            .adjustments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(due, settled_at)| settled_at.is_none() && due.expires_at <= now)
            .map(|(due, _)| *due)
            .collect();
        due.sort_by_key(|d| d.expires_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn settle_adjustment(
        &self,
        adjustment_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        if let Some((_, settled_at)) = self
            .adjustments
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&adjustment_id)
        {
            *settled_at = Some(at);
        }
        Ok(())
    }

    async fn record_return(&self, due: &ReturnDue) -> Result<(), CommandError> {
        let mut returns = self.returns.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = returns.entry(due.line_id).or_insert((*due, None));
        if entry.1.is_none() {
            entry.0.due_at = due.due_at;
        }
        Ok(())
    }

    async fn returns_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReturnDue>, CommandError> {
        let mut due: Vec<ReturnDue> = self
            .returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(due, settled_at)| settled_at.is_none() && due.due_at <= now)
            .map(|(due, _)| *due)
            .collect();
        due.sort_by_key(|d| d.due_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn settle_return(&self, line_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError> {
        if let Some((_, settled_at)) = self
            .returns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&line_id)
        {
            *settled_at = Some(at);
        }
        Ok(())
    }

    /// From the Inventory aggregates: their active holds past expiry.
    async fn lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Deadline>, CommandError> {
        let Some(inventory) = &self.inventory else {
            return Ok(Vec::new());
        };
        let mut lapsed: Vec<(DateTime<Utc>, Uuid, DeadlineHold)> = Vec::new();
        for id in inventory.ids() {
            let Ok(listing_id) = id.parse::<Uuid>() else {
                continue;
            };
            let stored = inventory.load(&id).await?;
            for hold in stored.aggregate.holds() {
                if hold.status == HoldStatus::Active && hold.expires_at <= now {
                    lapsed.push((
                        hold.expires_at,
                        hold.order_id,
                        DeadlineHold {
                            listing_id,
                            hold_id: hold.hold_id,
                        },
                    ));
                }
            }
        }
        lapsed.sort_by_key(|(expires_at, _, hold)| (*expires_at, hold.hold_id));
        lapsed.truncate(limit);
        let mut deadlines: Vec<Deadline> = Vec::new();
        for (expires_at, order_id, hold) in lapsed {
            match deadlines.iter_mut().find(|d| d.order_id == order_id) {
                Some(deadline) => deadline.holds.push(hold),
                None => deadlines.push(Deadline {
                    order_id,
                    holds: vec![hold],
                    expires_at,
                }),
            }
        }
        Ok(deadlines)
    }
}
