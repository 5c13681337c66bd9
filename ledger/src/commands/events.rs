//! `ledger events export`: the event log as NDJSON or CSV, filtered by
//! position range, time range, aggregate type and event type. Rows stream
//! from PostgreSQL to the output one at a time, so the log is never held in
//! memory; a progress bar shows on a terminal.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use crate::LedgerError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
}

#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Only events after this position.
    #[arg(long)]
    pub after: Option<i64>,
    /// Only events up to and including this position.
    #[arg(long)]
    pub until_position: Option<i64>,
    /// Only events recorded at or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only events recorded before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    #[arg(long)]
    pub aggregate_type: Option<String>,
    #[arg(long)]
    pub event_type: Option<String>,
}

/// One exported event; the same fields as `GET /v1/events`.
#[derive(Serialize)]
struct ExportedEvent {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    event_id: uuid::Uuid,
    recorded_at: DateTime<Utc>,
    payload: serde_json::Value,
    metadata: serde_json::Value,
}

fn filtered<'a>(args: &'a ExportArgs, select: &str) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::new(select);
    query.push(" FROM events WHERE TRUE");
    if let Some(after) = args.after {
        query.push(" AND global_position > ").push_bind(after);
    }
    if let Some(until) = args.until_position {
        query.push(" AND global_position <= ").push_bind(until);
    }
    if let Some(since) = args.since {
        query.push(" AND recorded_at >= ").push_bind(since);
    }
    if let Some(until) = args.until {
        query.push(" AND recorded_at < ").push_bind(until);
    }
    if let Some(t) = &args.aggregate_type {
        query.push(" AND aggregate_type = ").push_bind(t);
    }
    if let Some(t) = &args.event_type {
        query.push(" AND event_type = ").push_bind(t);
    }
    query
}

/// Where exported events go, one at a time.
enum Output<W: Write> {
    Ndjson(W),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Output<W> {
    fn write(&mut self, event: ExportedEvent) -> Result<(), LedgerError> {
        match self {
            Output::Ndjson(sink) => {
                serde_json::to_writer(&mut *sink, &event)
                    .map_err(|e| LedgerError::Config(e.to_string()))?;
                sink.write_all(b"\n")?;
            }
            Output::Csv(writer) => writer.write_record([
                event.position.to_string(),
                event.aggregate_type,
                event.aggregate_id,
                event.sequence.to_string(),
                event.event_type,
                event.event_version,
                event.event_id.to_string(),
                event.recorded_at.to_rfc3339(),
                event.payload.to_string(),
                event.metadata.to_string(),
            ])?,
        }
        Ok(())
    }

    fn finish(self) -> Result<(), LedgerError> {
        match self {
            Output::Ndjson(mut sink) => sink.flush()?,
            Output::Csv(mut writer) => writer.flush()?,
        }
        Ok(())
    }
}

impl From<csv::Error> for LedgerError {
    fn from(err: csv::Error) -> Self {
        LedgerError::Config(format!("csv: {err}"))
    }
}

/// Writes the selected events; returns how many.
pub async fn export(pool: &PgPool, args: &ExportArgs) -> Result<u64, LedgerError> {
    let total: i64 = filtered(args, "SELECT count(*)")
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path)?),
        None => Box::new(io::stdout().lock()),
    };
    let sink = BufWriter::with_capacity(1 << 16, sink);
    let mut output = match args.format {
        Format::Ndjson => Output::Ndjson(sink),
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(sink);
            writer.write_record([
                "position",
                "aggregate_type",
                "aggregate_id",
                "sequence",
                "event_type",
                "event_version",
                "event_id",
                "recorded_at",
                "payload",
                "metadata",
            ])?;
            Output::Csv(Box::new(writer))
        }
    };
    let bar = super::progress_bar(total.max(0) as u64, "export");
    let mut query = filtered(
        args,
        "SELECT global_position, aggregate_type, aggregate_id, sequence, event_type, \
         event_version, event_id, recorded_at, payload, metadata",
    );
    query.push(" ORDER BY global_position");
    let query = query.build();
    let mut rows = query.fetch(pool);
    let mut written = 0u64;
    while let Some(row) = rows.try_next().await? {
        let event = ExportedEvent {
            position: row.try_get("global_position")?,
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            event_id: row.try_get("event_id")?,
            recorded_at: row.try_get("recorded_at")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
        };
        output.write(event)?;
        written += 1;
        if written.is_multiple_of(1_000) {
            bar.set_position(written);
        }
    }
    output.finish()?;
    bar.finish_and_clear();
    Ok(written)
}
