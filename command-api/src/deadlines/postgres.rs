//! Hold deadlines in PostgreSQL's `hold_deadlines` table. Sweepers on
//! several replicas share the due ones with `FOR UPDATE SKIP LOCKED`: a
//! claim is a transaction that holds their rows until it is settled.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::{AdjustmentDue, Deadline, DeadlineHold, DueDeadlines, HoldDeadlines, ReturnDue};
use crate::bus::{CommandError, StoreError};

#[derive(Clone)]
pub struct PostgresDeadlines {
    pool: PgPool,
}

impl PostgresDeadlines {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
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

    async fn record(&self, deadline: &Deadline) -> Result<(), CommandError> {
        let holds = serde_json::to_value(&deadline.holds).map_err(StoreError::failed)?;
        // Committed without waiting for the disk: the hold appended next waits
        // for its own commit record, which lies after this one in the WAL, so
        // no crash can keep a hold and lose its deadline. Saves a flush per order.
        sqlx::query(
            "WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
             INSERT INTO hold_deadlines (order_id, holds, expires_at)
             SELECT $1, $2, $3 FROM async",
        )
        .bind(deadline.order_id)
        .bind(holds)
        .bind(deadline.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn settle(&self, order_id: Uuid, at: DateTime<Utc>) -> Result<(), CommandError> {
        sqlx::query("UPDATE hold_deadlines SET settled_at = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Box<dyn DueDeadlines>, CommandError> {
        let mut tx = self.pool.begin().await?;
        let rows: Vec<(Uuid, serde_json::Value, DateTime<Utc>)> = sqlx::query_as(
            "SELECT order_id, holds, expires_at FROM hold_deadlines
              WHERE settled_at IS NULL AND expires_at <= $2
              ORDER BY expires_at
              LIMIT $1
              FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut deadlines = Vec::with_capacity(rows.len());
        for (order_id, holds, expires_at) in rows {
            let holds: Vec<DeadlineHold> = serde_json::from_value(holds)
                .map_err(|e| StoreError::Failed(format!("bad hold deadline: {e}")))?;
            deadlines.push(Deadline {
                order_id,
                holds,
                expires_at,
            });
        }
        Ok(Box::new(Claim { tx, deadlines }))
    }
}

/// Due deadlines, their rows locked by `tx` until it ends.
struct Claim {
    tx: Transaction<'static, Postgres>,
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
        let Claim { mut tx, .. } = *self;
        if !order_ids.is_empty() {
            sqlx::query("UPDATE hold_deadlines SET settled_at = $2 WHERE order_id = ANY($1)")
                .bind(order_ids)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
