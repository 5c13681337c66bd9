//! Rebuilding read models from the events table (DESIGN.md: "Rebuilding a
//! read model reads the events table directly ... into fresh tables").
//!
//! [`rebuild_into`] creates a schema holding empty copies of the read-model
//! tables and a checkpoint table of its own, then applies the log to it with
//! the same consumers the runner uses: each batch runs with the schema first
//! on the `search_path`, so the projectors' unqualified table names resolve
//! to the fresh copies while `events` still comes from `public`.

use std::sync::Arc;

use event_log::statements::reads;
use ledger_nats::EventEnvelope;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

use crate::{checkpoints, Consumer, Error};

/// Every table the read models write, in `public` (each consumer's
/// `tables()`; a test holds the two lists equal). A table missing here has
/// no copy in a rebuild's schema, so the rebuild would write the live one.
pub const READ_MODEL_TABLES: [&str; 19] = [
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
    "an_rental_returns",
    "ledger_subscription_invoices",
    "rm_plans",
    "rm_subscriptions",
    "rm_subscription_invoices",
    "ledger_payouts",
    "invoices",
];

/// Columns compared between a live table and its rebuild: all, except
/// surrogate keys that depend on how often a batch was retried.
fn compared_columns(table: &str) -> &'static str {
    match table {
        "ledger_postings" => {
            "position, account, vendor_id, order_id, kind, debit, credit, recorded_at, tenant"
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

/// Creates `schema` with empty copies of every read-model table.
pub async fn create_schema(pool: &PgPool, schema: &str) -> Result<(), Error> {
    create_schema_for(pool, schema, &READ_MODEL_TABLES).await
}

/// Creates `schema` with empty copies of `tables` and a checkpoint table.
///
/// The copies are UNLOGGED: a rebuild rewrites each row many times, and
/// writing every version to the WAL was most of its cost. A crash empties
/// them, and the rebuild starts over anyway. [`make_durable`] logs each
/// table once, as it finally stands, before it may be swapped in.
pub async fn create_schema_for(pool: &PgPool, schema: &str, tables: &[&str]) -> Result<(), Error> {
    let schema = checked_schema(schema)?;
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    for table in tables.iter().chain(["consumer_checkpoints"].iter()) {
        sqlx::query(&format!(
            "CREATE UNLOGGED TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Turns the rebuilt copies of `tables` in `schema` into ordinary, logged
/// tables: written to the WAL once, as they stand, so that a crash after
/// they are swapped in keeps them.
pub async fn make_durable(pool: &PgPool, schema: &str, tables: &[&str]) -> Result<(), Error> {
    let schema = checked_schema(schema)?;
    for table in tables {
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET LOGGED"))
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// Points the transaction at `schema`. A rebuild's batches do not wait for
/// their commits to reach the disk: after a crash the rebuild starts over.
async fn use_schema(conn: &mut PgConnection, schema: &str) -> Result<(), Error> {
    sqlx::query(
        "SELECT set_config('search_path', $1, true), set_config('synchronous_commit', 'off', true)",
    )
    .bind(format!("{schema}, public"))
    .execute(conn)
    .await?;
    Ok(())
}

/// Applies the log up to `until` (inclusive) to the read models in
/// `schema`, from where each consumer stands there. The log is read once,
/// in batches, and every batch is handed to one task per consumer, which
/// applies it with its checkpoint in one transaction on its own connection:
/// the models are built concurrently and decode on every core. `progress`
/// is told the events applied so far (by all) and the position the slowest
/// consumer has reached, after every batch. Returns the events applied.
pub async fn apply_until(
    pool: &PgPool,
    schema: &str,
    consumers: &[Arc<dyn Consumer>],
    until: i64,
    mut progress: impl FnMut(u64, i64),
) -> Result<u64, Error> {
    let schema = checked_schema(schema)?.to_owned();
    let mut reached = Vec::with_capacity(consumers.len());
    for consumer in consumers {
        let mut tx = pool.begin().await?;
        use_schema(&mut tx, &schema).await?;
        reached.push(checkpoints::lock(&mut tx, consumer.name()).await?);
        tx.commit().await?;
    }
    let Some(&start) = reached.iter().min() else {
        return Ok(0);
    };

    let (report_tx, mut reports) = mpsc::unbounded_channel::<Applied>();
    let mut feeds = Vec::with_capacity(consumers.len());
    let mut tasks = Vec::with_capacity(consumers.len());
    for (index, consumer) in consumers.iter().enumerate() {
        // Two batches in flight per consumer: the reader stays ahead, and
        // memory stays bounded.
        let (feed, batches) = mpsc::channel::<Batch>(2);
        feeds.push(feed);
        tasks.push(tokio::spawn(apply_batches(
            pool.clone(),
            schema.clone(),
            consumer.clone(),
            index,
            batches,
            report_tx.clone(),
        )));
    }
    drop(report_tx);

    let mut applied = 0u64;
    let mut on_report = |report: Applied, reached: &mut Vec<i64>| {
        applied += report.events;
        reached[report.index] = report.reached;
        let slowest = reached.iter().copied().min().unwrap_or(report.reached);
        progress(applied, slowest);
    };
    let mut position = start;
    let mut read_error = None;
    'reading: while position < until {
        let events = match reads::between(pool, position, until, Some(BATCH)).await {
            Ok(events) => events,
            Err(err) => {
                read_error = Some(err);
                break;
            }
        };
        // An empty read: only rolled-back positions are left up to `until`.
        let end = events.last().map_or(until, |e| e.position);
        let batch = Batch {
            events: Arc::new(events),
            end,
        };
        for feed in &feeds {
            if feed.send(batch.clone()).await.is_err() {
                // That consumer failed; its task says why below.
                break 'reading;
            }
        }
        while let Ok(report) = reports.try_recv() {
            on_report(report, &mut reached);
        }
        position = end;
    }
    drop(feeds);
    while let Some(report) = reports.recv().await {
        on_report(report, &mut reached);
    }
    for task in tasks {
        task.await
            .map_err(|e| Error::Other(format!("a rebuild task failed: {e}")))??;
    }
    match read_error {
        Some(err) => Err(err.into()),
        None => Ok(applied),
    }
}

/// A batch of the log, shared by every consumer, and the position it
/// reaches (the last event's, or the target when nothing was left).
#[derive(Clone)]
struct Batch {
    events: Arc<Vec<EventEnvelope>>,
    end: i64,
}

/// One consumer's applied batch.
struct Applied {
    index: usize,
    events: u64,
    reached: i64,
}

async fn apply_batches(
    pool: PgPool,
    schema: String,
    consumer: Arc<dyn Consumer>,
    index: usize,
    mut batches: mpsc::Receiver<Batch>,
    reports: mpsc::UnboundedSender<Applied>,
) -> Result<(), Error> {
    while let Some(batch) = batches.recv().await {
        let mut tx = pool.begin().await?;
        use_schema(&mut tx, &schema).await?;
        let from = checkpoints::lock(&mut tx, consumer.name()).await?;
        if batch.end <= from {
            continue;
        }
        // Skip what this consumer had applied before (it may stand further
        // than the others).
        let first = batch.events.partition_point(|e| e.position <= from);
        let events = &batch.events[first..];
        ledger_nats::consumer::apply_guarded(consumer.as_ref(), &mut tx, events).await?;
        checkpoints::store(&mut tx, consumer.name(), batch.end).await?;
        tx.commit().await?;
        let _ = reports.send(Applied {
            index,
            events: events.len() as u64,
            reached: batch.end,
        });
    }
    Ok(())
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
    apply_until(pool, schema, consumers, until, |_, _| {}).await
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

/// How far a rebuild has come.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Events applied so far.
    pub applied: u64,
    /// Position reached.
    pub position: i64,
    /// Position the current pass goes to.
    pub until: i64,
}

/// Rebuilds one read model from the events table and swaps it in while
/// queries keep answering:
///
/// 1. fresh copies of its tables in schema `rebuild_<name>`, filled from the
///    log up to the relay's published position, pass after pass until a
///    pass has little left to do;
/// 2. in one transaction that holds the live consumer's checkpoint (so the
///    live runner waits): apply the last few events, move the live tables
///    out of `public` and the rebuilt ones in, and set the live checkpoint
///    to where the rebuild stands. Readers see the old tables or the new
///    ones, never a mix; the live runner goes on from the new checkpoint.
///
/// Returns the position the swapped-in read model stands at.
pub async fn rebuild_and_swap(
    pool: &PgPool,
    stream: &str,
    consumer: &Arc<dyn Consumer>,
    mut progress: impl FnMut(Progress),
) -> Result<i64, Error> {
    let name = consumer.name();
    let tables = consumer.tables();
    if tables.is_empty() {
        return Err(Error::Other(format!("`{name}` has no tables to rebuild")));
    }
    let schema = format!("rebuild_{name}");
    create_schema_for(pool, &schema, tables).await?;
    let one = [consumer.clone()];
    let mut applied = 0u64;
    loop {
        let until = checkpoints::published(pool, stream).await?;
        let before = applied;
        let pass = apply_until(pool, &schema, &one, until, |done, position| {
            progress(Progress {
                applied: before + done,
                position,
                until,
            })
        })
        .await?;
        applied += pass;
        progress(Progress {
            applied,
            position: until,
            until,
        });
        if pass < 1_000 {
            break;
        }
    }
    make_durable(pool, &schema, tables).await?;
    swap(pool, stream, &schema, consumer).await
}

async fn swap(
    pool: &PgPool,
    stream: &str,
    schema: &str,
    consumer: &Arc<dyn Consumer>,
) -> Result<i64, Error> {
    let name = consumer.name();
    let retired = format!("retired_{name}");
    checked_schema(&retired)?;
    let mut tx = pool.begin().await?;
    // Hold the live checkpoint: the live runner waits until the swap is done.
    sqlx::query(
        "INSERT INTO public.consumer_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?;
    sqlx::query("SELECT position FROM public.consumer_checkpoints WHERE name = $1 FOR UPDATE")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    // The last events, inside the swap.
    let until = checkpoints::published(pool, stream).await?;
    use_schema(&mut tx, schema).await?;
    let from = checkpoints::lock(&mut tx, name).await?;
    let mut reached = from;
    if until > from {
        let events = reads::between(&mut *tx, from, until, None).await?;
        ledger_nats::consumer::apply_guarded(consumer.as_ref(), &mut tx, &events).await?;
        reached = until;
        checkpoints::store(&mut tx, name, reached).await?;
    }
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {retired} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {retired}"))
        .execute(&mut *tx)
        .await?;
    for table in consumer.tables() {
        sqlx::query(&format!("ALTER TABLE public.{table} SET SCHEMA {retired}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "UPDATE public.consumer_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
    )
    .bind(name)
    .bind(reached)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    for dropped in [retired.as_str(), schema] {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {dropped} CASCADE"))
            .execute(pool)
            .await?;
    }
    Ok(reached)
}

#[cfg(test)]
mod read_model_tables {
    use super::READ_MODEL_TABLES;

    #[test]
    fn every_table_a_read_model_writes_is_rebuilt_in_a_copy() {
        let mut written: Vec<&str> = crate::read_models()
            .iter()
            .flat_map(|consumer| consumer.tables().iter().copied())
            .collect();
        written.sort_unstable();
        let mut listed = READ_MODEL_TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(written, listed);
    }
}
