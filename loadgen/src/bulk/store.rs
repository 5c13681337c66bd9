//! Writing generated events to the events table.
//!
//! Bulk: one multi-row `INSERT … SELECT FROM UNNEST(…)` per batch, in its
//! own transaction. The rows go in the order given, so global positions
//! follow it and the BEFORE INSERT hash trigger (which stays enabled) finds
//! each event's predecessor: a row-level trigger sees the rows its own
//! statement inserted before, and earlier batches are committed.
//!
//! Live: one transaction per command, one INSERT per event, as postgres-es
//! does, with the table's defaults for `event_id` and `recorded_at`.

use event_log::statements::append;
use ledger_nats::CommitNotifier;
use sqlx::{PgConnection, PgPool};

use super::sim::{EventRow, SnapshotRow};
use crate::BenchError;

/// Inserts `rows` in one statement, in their order.
pub async fn insert_bulk(conn: &mut PgConnection, rows: &[EventRow]) -> Result<(), BenchError> {
    Ok(append::insert_whole(conn, rows).await?)
}

/// Commits one command's events in one transaction, an INSERT per event,
/// then tells `notifier`, which wakes the relay.
pub async fn commit_live(
    pool: &PgPool,
    notifier: &CommitNotifier,
    rows: &[EventRow],
) -> Result<(), BenchError> {
    let mut tx = pool.begin().await?;
    for row in rows {
        append::insert_one(&mut *tx, row).await?;
    }
    tx.commit().await?;
    // As the command API does: the relay is woken after the commit (a
    // NOTIFY inside the transaction would serialise commits), by the
    // notifier's task, without waiting here.
    notifier.committed();
    Ok(())
}

/// Stores the snapshots the bus would hold.
pub async fn insert_snapshots(pool: &PgPool, snapshots: &[SnapshotRow]) -> Result<(), BenchError> {
    for chunk in snapshots.chunks(1_000) {
        let types: Vec<&str> = chunk.iter().map(|s| s.aggregate_type).collect();
        let ids: Vec<&str> = chunk.iter().map(|s| s.aggregate_id.as_str()).collect();
        let last: Vec<i64> = chunk.iter().map(|s| s.last_sequence).collect();
        let current: Vec<i64> = chunk.iter().map(|s| s.current_snapshot).collect();
        let payloads: Vec<&str> = chunk.iter().map(|s| s.payload.as_str()).collect();
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
             SELECT t, i, l, c, p::json
               FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[]) AS u(t, i, l, c, p)",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&last)
        .bind(&current)
        .bind(&payloads)
        .execute(pool)
        .await?;
    }
    Ok(())
}
