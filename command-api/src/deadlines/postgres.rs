//! The sweeper's deadlines in PostgreSQL: adjustments and returns in their
//! tables, lapsed holds from the availability read model. Sweepers on
//! several replicas may meet on one; the aggregates decide once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;
use uuid::Uuid;

use super::{AdjustmentDue, Deadline, DeadlineHold, HoldDeadlines, ReturnDue};
use crate::bus::CommandError;

#[derive(Clone)]
pub struct PostgresDeadlines {
    pool: PgPool,
    /// Lapsed holds whose orders a sweeper settled, and when (by its clock).
    swept: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>,
}

/// How long a swept hold is not handed out again.
const RECENTLY: chrono::Duration = chrono::Duration::minutes(1);

impl PostgresDeadlines {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            swept: Arc::default(),
        }
    }
}

type AdjustmentRow = (Uuid, Uuid, Uuid, Uuid, Uuid, DateTime<Utc>);

fn adjustment_due(row: AdjustmentRow) -> AdjustmentDue {
    let (adjustment_id, order_id, line_id, listing_id, hold_id, expires_at) = row;
    AdjustmentDue {
        adjustment_id,
        order_id,
        line_id,
        listing_id,
        hold_id,
        expires_at,
    }
}

#[async_trait]
impl HoldDeadlines for PostgresDeadlines {
    async fn record_adjustment(&self, due: &AdjustmentDue) -> Result<(), CommandError> {
        sqlx::query(
            "INSERT INTO adjustment_deadlines
                    (adjustment_id, order_id, line_id, listing_id, hold_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (adjustment_id) DO NOTHING",
        )
        .bind(due.adjustment_id)
        .bind(due.order_id)
        .bind(due.line_id)
        .bind(due.listing_id)
        .bind(due.hold_id)
        .bind(due.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn adjustment(&self, adjustment_id: Uuid) -> Result<Option<AdjustmentDue>, CommandError> {
        let row: Option<AdjustmentRow> = sqlx::query_as(
            "SELECT adjustment_id, order_id, line_id, listing_id, hold_id, expires_at
               FROM adjustment_deadlines WHERE adjustment_id = $1",
        )
        .bind(adjustment_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(adjustment_due))
    }

    async fn adjustments_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AdjustmentDue>, CommandError> {
        let rows: Vec<AdjustmentRow> = sqlx::query_as(
            "SELECT adjustment_id, order_id, line_id, listing_id, hold_id, expires_at
               FROM adjustment_deadlines
              WHERE settled_at IS NULL AND expires_at <= $1
              ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(adjustment_due).collect())
    }

    async fn settle_adjustment(
        &self,
        adjustment_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), CommandError> {
        sqlx::query("UPDATE adjustment_deadlines SET settled_at = $2 WHERE adjustment_id = $1")
            .bind(adjustment_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_return(&self, due: &ReturnDue) -> Result<(), CommandError> {
        sqlx::query(
            "INSERT INTO return_deadlines (line_id, order_id, listing_id, hold_id, due_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (line_id) DO UPDATE
                SET due_at = EXCLUDED.due_at WHERE return_deadlines.settled_at IS NULL",
        )
        .bind(due.line_id)
        .bind(due.order_id)
        .bind(due.listing_id)
        .bind(due.hold_id)
        .bind(due.due_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn returns_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<ReturnDue>, CommandError> {
        let rows: Vec<(Uuid, Uuid, Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT line_id, order_id, listing_id, hold_id, due_at FROM return_deadlines
              WHERE settled_at IS NULL AND due_at <= $1
              ORDER BY due_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(line_id, order_id, listing_id, hold_id, due_at)| ReturnDue {
                    order_id,
                    line_id,
                    listing_id,
                    hold_id,
                    due_at,
                },
            )
            .collect())
    }

    async fn settle_return(&self, line_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError> {
        sqlx::query("UPDATE return_deadlines SET settled_at = $2 WHERE line_id = $1")
            .bind(line_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// From the availability read model: holds still `hold` there past
    /// their expiry. The read model lags the aggregates a little, so a hold
    /// just settled may come back once more; holds swept in the last minute
    /// are left out, so that a lagging (or stopped) projector does not keep
    /// the sweeper on the same holds while others wait. Rows of a booking
    /// change awaiting payment (`hold` too) settle nothing here: their order
    /// is paid, and the adjustments' own deadlines lapse them.
    async fn lapsed_holds(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Deadline>, CommandError> {
        let recent: Vec<Uuid> = {
            let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
            swept.retain(|_, at| now - *at < RECENTLY);
            swept.keys().copied().collect()
        };
        let rows: Vec<(Uuid, Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT order_id, listing_id, allocation_id, expires_at FROM rm_allocations
              WHERE kind = 'hold' AND expires_at <= $1 AND order_id IS NOT NULL
                AND NOT (allocation_id = ANY($3))
              ORDER BY expires_at
              LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(&recent)
        .fetch_all(&self.pool)
        .await?;
        let mut deadlines: Vec<Deadline> = Vec::new();
        for (order_id, listing_id, hold_id, expires_at) in rows {
            let hold = DeadlineHold {
                listing_id,
                hold_id,
            };
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

    fn swept(&self, holds: &[DeadlineHold], at: DateTime<Utc>) {
        let mut swept = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
        swept.extend(holds.iter().map(|h| (h.hold_id, at)));
    }
}
