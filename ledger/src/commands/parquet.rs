//! `ledger events export --format parquet`: the selected events as one
//! Parquet file for the warehouse, with the hash chain's columns (`hash`,
//! `canonical`) and, in the file's key-value metadata, the seals that cover
//! its rows, so that an analyst's copy can be checked against the seals
//! later (docs/AUDIT.md):
//!
//! - `ledger.seals`: JSON list of `{seal_id, from, to, event_count, digest,
//!   merkle_root}` of every seal whose range meets the exported positions;
//! - `ledger.sealed_through`: the last sealed position (rows above it are
//!   not sealed yet);
//! - `ledger.format`: `docs/AUDIT.md`.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use event_log::statements::export::{self, Selection};
use event_log::statements::reads::Linked;
use indicatif::ProgressBar;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use sqlx::PgPool;

use crate::LedgerError;

/// Rows per record batch (and so at least per row group).
const BATCH: usize = 8192;

fn schema() -> Arc<Schema> {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("position", DataType::Int64, false),
        text("event_id"),
        text("aggregate_type"),
        text("aggregate_id"),
        Field::new("sequence", DataType::Int64, false),
        text("event_type"),
        text("event_version"),
        text("payload"),
        text("metadata"),
        Field::new(
            "recorded_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("hash"),
        text("canonical"),
    ]))
}

/// Rows gathered for the next batch.
#[derive(Default)]
struct Columns {
    position: Vec<i64>,
    event_id: Vec<String>,
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<String>,
    payload: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<i64>,
    hash: Vec<String>,
    canonical: Vec<String>,
}

impl Columns {
    fn push(&mut self, linked: Linked) {
        let event = linked.event;
        self.position.push(event.position);
        self.event_id.push(event.event_id.to_string());
        self.aggregate_type.push(event.aggregate_type);
        self.aggregate_id.push(event.aggregate_id);
        self.sequence.push(event.sequence);
        self.event_type.push(event.event_type);
        self.event_version.push(event.event_version);
        self.payload.push(event.payload.to_string());
        self.metadata.push(event.metadata.to_string());
        self.recorded_at.push(event.recorded_at.timestamp_micros());
        self.hash.push(linked.hash.unwrap_or_default());
        self.canonical.push(linked.canonical.unwrap_or_default());
    }

    fn take(&mut self, schema: &Arc<Schema>) -> Result<RecordBatch, LedgerError> {
        let c = std::mem::take(self);
        let text = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(c.position)),
                text(c.event_id),
                text(c.aggregate_type),
                text(c.aggregate_id),
                Arc::new(Int64Array::from(c.sequence)),
                text(c.event_type),
                text(c.event_version),
                text(c.payload),
                text(c.metadata),
                Arc::new(TimestampMicrosecondArray::from(c.recorded_at).with_timezone("UTC")),
                text(c.hash),
                text(c.canonical),
            ],
        )
        .map_err(|e| LedgerError::Config(format!("parquet: {e}")))
    }
}

fn parquet_error(err: impl std::fmt::Display) -> LedgerError {
    LedgerError::Config(format!("parquet: {err}"))
}

/// Writes the selected events to `path`; returns how many.
pub async fn export(
    pool: &PgPool,
    selection: &Selection,
    path: &Path,
    bar: &ProgressBar,
    opener: &privacy::Opener,
) -> Result<u64, LedgerError> {
    let schema = schema();
    let mut writer =
        ArrowWriter::try_new(File::create(path)?, schema.clone(), None).map_err(parquet_error)?;
    let mut columns = Columns::default();
    let (mut first, mut last) = (None, 0i64);
    let written = export::for_each(pool, selection, |mut linked| {
        super::events::reveal(opener, &mut linked);
        first.get_or_insert(linked.event.position);
        last = linked.event.position;
        columns.push(linked);
        if columns.position.len() >= BATCH {
            let batch = columns.take(&schema)?;
            writer.write(&batch).map_err(parquet_error)?;
            bar.inc(BATCH as u64);
        }
        Ok::<(), LedgerError>(())
    })
    .await?;
    if !columns.position.is_empty() {
        writer
            .write(&columns.take(&schema)?)
            .map_err(parquet_error)?;
    }
    let seals = match first {
        Some(first) => audit::seal::covering(pool, first, last).await?,
        None => Vec::new(),
    };
    let listed: Vec<serde_json::Value> = seals
        .iter()
        .map(|seal| {
            serde_json::json!({
                "seal_id": seal.seal_id,
                "from": seal.from_position,
                "to": seal.to_position,
                "event_count": seal.event_count,
                "digest": hex::encode(&seal.digest),
                "merkle_root": seal.merkle_root.as_ref().map(hex::encode),
            })
        })
        .collect();
    let sealed_through = audit::seal::newest(pool)
        .await?
        .map_or(0, |seal| seal.to_position);
    for (key, value) in [
        ("ledger.seals", serde_json::Value::from(listed).to_string()),
        ("ledger.sealed_through", sealed_through.to_string()),
        ("ledger.format", "docs/AUDIT.md".to_owned()),
    ] {
        writer.append_key_value_metadata(KeyValue::new(key.to_owned(), value));
    }
    writer.close().map_err(parquet_error)?;
    Ok(written)
}
