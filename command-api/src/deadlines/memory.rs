//! Hold deadlines in memory, for tests: the same answers as the table,
//! for one sweeper at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AdjustmentDue, Deadline, DueDeadlines, HoldDeadlines, ReturnDue};
use crate::bus::CommandError;

/// A deadline and when it was settled.
type Entry = (Deadline, Option<DateTime<Utc>>);
/// A return deadline and when it was settled.
type ReturnEntry = (ReturnDue, Option<DateTime<Utc>>);

#[derive(Clone, Default)]
pub struct MemoryDeadlines {
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
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

    /// An order's deadline and when it was settled, if it was recorded.
    pub fn get(&self, order_id: Uuid) -> Option<(Deadline, Option<DateTime<Utc>>)> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&order_id)
            .cloned()
    }

    fn mark_settled(&self, order_ids: &[Uuid], at: DateTime<Utc>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        for order_id in order_ids {
            if let Some((_, settled_at)) = entries.get_mut(order_id) {
                *settled_at = Some(at);
            }
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

    async fn record(&self, deadline: &Deadline) -> Result<(), CommandError> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(deadline.order_id, (deadline.clone(), None));
        Ok(())
    }

    async fn settle(&self, order_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError> {
        self.mark_settled(&[order_id], at);
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Box<dyn DueDeadlines>, CommandError> {
        let mut due: Vec<Deadline> = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|(deadline, settled_at)| settled_at.is_none() && deadline.expires_at <= now)
            .map(|(deadline, _)| deadline.clone())
            .collect();
        due.sort_by_key(|d| d.expires_at);
        due.truncate(limit);
        Ok(Box::new(Claim {
            store: self.clone(),
            deadlines: due,
        }))
    }
}

struct Claim {
    store: MemoryDeadlines,
    deadlines: Vec<Deadline>,
}

#[async_trait]
impl DueDeadlines for Claim {
    fn deadlines(&self) -> &[Deadline] {
        &self.deadlines
    }

    async fn settle(
        self: Box<Self>,
        order_ids: &[Uuid],
        at: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        self.store.mark_settled(order_ids, at);
        Ok(())
    }
}
