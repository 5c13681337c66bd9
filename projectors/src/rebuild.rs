//! Rebuilding read models from the events table (DESIGN.md: "Rebuilding a
//! read model reads the events table directly ... into fresh tables").
//!
//! [`rebuild_into`] creates a schema holding empty copies of the read-model
//! tables and a checkpoint table of its own, then applies the log to it with
//! the same consumers the runner uses: each batch runs with the schema first
//! on the `search_path`, so the projectors' unqualified table names resolve
//! to the fresh copies while `events` still comes from `public`.

use std::sync::Arc;

use ledger_nats::envelope::ENVELOPE_COLUMNS;
use ledger_nats::EventEnvelope;
use sqlx::{PgConnection, PgPool};

use crate::runner::Consumer;
use crate::{checkpoints, Error};

/// Every table the read models write, in `public`.
pub const READ_MODEL_TABLES: [&str; 12] = [
    "rm_listings",
    "rm_allocations",
    "rm_orders",
    "rm_order_vendors",
    "ledger_postings",
    "ledger_accounts",
    "ledger_orders",
    "ledger_vendor_earnings",
    "an_orders",
    "an_order_lines",
    "an_listings",
    "an_payment_failures",
];

/// Columns compared between a live table and its rebuild: all, except
/// surrogate keys that depend on how often a batch was retried.
fn compared_columns(table: &str) -> &'static str {
    match table {
        "ledger_postings" => {
            "position, account, vendor_id, order_id, kind, debit, credit, recorded_at"
        }
        _ => "*",
    }
}

/// Events read per transaction.
const BATCH: i64 = 5_000;

fn checked_schema(schema: &str) -> Result<&str, Error> {
    let valid = !schema.is_empty()
        && schema.len() <= 48
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema != "public";
    if valid {
        Ok(schema)
    } else {
        Err(Error::Other(format!("invalid schema name `{schema}`")))
    }
}

/// Creates `schema` with empty copies of the read-model tables.
pub async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), Error> {
    let schema = checked_schema(schema)?;
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in READ_MODEL_TABLES
        .iter()
        .chain(["consumer_checkpoints"].iter())
    {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), Error> {
    sqlx::query(&format!("SET LOCAL search_path TO {schema}, public"))
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies the log up to `until` (inclusive) to the read models in
/// `schema`, from where each consumer stands there. `progress` is told the
/// position reached after every batch. Returns the events applied.
pub async fn apply_until(
    pool: &PgPool,
    schema: &str,
    consumers: &[Arc<dyn Consumer>],
    until: i64,
    mut progress: impl FnMut(i64),
) -> Result<u64, Error> {
    let schema = checked_schema(schema)?;
    let mut applied = 0u64;
    for consumer in consumers {
        loop {
            let mut tx = pool.begin().await?;
            use_schema(&mut tx, schema).await?;
            let from = checkpoints::lock(&mut tx, consumer.name()).await?;
            if from >= until {
                break;
            }
            let sql = format!(
                "SELECT {ENVELOPE_COLUMNS} FROM public.events
                  WHERE global_position > $1 AND global_position <= $2
                  ORDER BY global_position LIMIT $3"
            );
            let rows = sqlx::query(&sql)
                .bind(from)
                .bind(until)
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await?;
            let events = rows
                .iter()
                .map(EventEnvelope::from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let reached = events.last().map_or(until, |e| e.position);
            consumer.apply(&mut tx, &events).await?;
            checkpoints::store(&mut tx, consumer.name(), reached).await?;
            tx.commit().await?;
            applied += events.len() as u64;
            progress(reached);
        }
    }
    Ok(applied)
}

/// A fresh rebuild of `consumers` into `schema`, up to the relay's
/// published position (everything at or below it is final).
pub async fn rebuild_into(
    pool: &PgPool,
    stream: &str,
    schema: &str,
    consumers: &[Arc<dyn Consumer>],
) -> Result<u64, Error> {
    create_schema(pool, schema).await?;
    let until = checkpoints::published(pool, stream).await?;
    apply_until(pool, schema, consumers, until, |_| {}).await
}

/// Rows that differ between a read-model table in `public` and its copy in
/// `schema` (both directions). Zero means the two are equal.
pub async fn differences(pool: &PgPool, schema: &str, table: &str) -> Result<i64, Error> {
    let schema = checked_schema(schema)?;
    if !READ_MODEL_TABLES.contains(&table) {
        return Err(Error::Other(format!("`{table}` is not a read-model table")));
    }
    let c = compared_columns(table);
    let count: i64 = sqlx::query_scalar(&format!(
        "SELECT (SELECT count(*) FROM (SELECT {c} FROM public.{table} EXCEPT ALL SELECT {c} FROM {schema}.{table}) a)
              + (SELECT count(*) FROM (SELECT {c} FROM {schema}.{table} EXCEPT ALL SELECT {c} FROM public.{table}) b)"
    ))
    .fetch_one(pool)
    .await?;
    Ok(count)
}
