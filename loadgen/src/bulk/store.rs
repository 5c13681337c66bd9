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

use ledger_nats::CommitNotifier;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::sim::{EventRow, SnapshotRow};
use crate::BenchError;

const BULK_INSERT: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                    payload, metadata, event_id, recorded_at)
SELECT t, i, s, et, ev, p::json, m::json, eid, r
  FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
              $6::text[], $7::text[], $8::uuid[], $9::timestamptz[])
       AS u(t, i, s, et, ev, p, m, eid, r)";

const LIVE_INSERT: &str = "
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ($1, $2, $3, $4, $5, $6::json, $7::json)";

/// Inserts `rows` in one statement, in their order.
pub async fn insert_bulk(conn: &mut PgConnection, rows: &[EventRow]) -> Result<(), BenchError> {
    let n = rows.len();
    let mut types = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut event_ids: Vec<Uuid> = Vec::with_capacity(n);
    let mut recorded = Vec::with_capacity(n);
    for row in rows {
        types.push(row.aggregate_type);
        ids.push(row.aggregate_id.as_str());
        seqs.push(row.sequence);
        event_types.push(row.event_type.as_str());
        versions.push(row.event_version.as_str());
        payloads.push(row.payload.as_str());
        metadata.push(row.metadata.as_str());
        event_ids.push(row.event_id);
        recorded.push(row.recorded_at);
    }
    sqlx::query(BULK_INSERT)
        .bind(&types)
        .bind(&ids)
        .bind(&seqs)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&metadata)
        .bind(&event_ids)
        .bind(&recorded)
        .execute(conn)
        .await?;
    Ok(())
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
        sqlx::query(LIVE_INSERT)
            .bind(row.aggregate_type)
            .bind(&row.aggregate_id)
            .bind(row.sequence)
            .bind(&row.event_type)
            .bind(&row.event_version)
            .bind(&row.payload)
            .bind(&row.metadata)
            .execute(&mut *tx)
            .await?;
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
