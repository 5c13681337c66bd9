//! `ledger events export`: the event log as NDJSON or CSV, filtered by
//! position range, time range, aggregate type and event type. Rows stream
//! from PostgreSQL to the output one at a time, so the log is never held in
//! memory; a progress bar shows on a terminal.
//!
//! Each event carries its `hash` and `canonical` content (both hex: the
//! bytes that were hashed, docs/AUDIT.md), so that an export can be checked
//! against the hash chain and the seals later.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use event_log::statements::export::{self, Selection};
use event_log::statements::reads::Linked;
use event_log::StoredEvent;
use serde::Serialize;
use sqlx::PgPool;

use crate::LedgerError;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Ndjson,
    Csv,
    /// One Parquet file (needs `--output`), with the covering seals in its
    /// key-value metadata.
    Parquet,
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

impl ExportArgs {
    fn selection(&self) -> Selection {
        Selection {
            after: self.after,
            until_position: self.until_position,
            since: self.since,
            until: self.until,
            aggregate_type: self.aggregate_type.clone(),
            event_type: self.event_type.clone(),
        }
    }
}

/// Where exported events go, one at a time.
enum Output<W: Write> {
    Ndjson(W),
    Csv(Box<csv::Writer<W>>),
}

/// One line of an NDJSON export: the stored event, its hash and what was
/// hashed.
#[derive(Serialize)]
struct ExportedEvent<'a> {
    #[serde(flatten)]
    event: &'a StoredEvent,
    hash: &'a Option<String>,
    canonical: &'a Option<String>,
}

impl<W: Write> Output<W> {
    fn write(&mut self, linked: Linked) -> Result<(), LedgerError> {
        let Linked {
            event,
            hash,
            canonical,
        } = linked;
        match self {
            Output::Ndjson(sink) => {
                let line = ExportedEvent {
                    event: &event,
                    hash: &hash,
                    canonical: &canonical,
                };
                serde_json::to_writer(&mut *sink, &line)
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
                hash.unwrap_or_default(),
                canonical.unwrap_or_default(),
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
    let selection = args.selection();
    let total = export::count(pool, &selection).await?;
    if let Format::Parquet = args.format {
        let path = args.output.as_ref().ok_or_else(|| {
            LedgerError::Config("--format parquet writes a file: give --output".into())
        })?;
        let bar = super::progress_bar(total.max(0) as u64, "export");
        let written = super::parquet::export(pool, &selection, path, &bar).await?;
        bar.finish_and_clear();
        return Ok(written);
    }
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path)?),
        None => Box::new(io::stdout().lock()),
    };
    let sink = BufWriter::with_capacity(1 << 16, sink);
    let mut output = match args.format {
        Format::Ndjson | Format::Parquet => Output::Ndjson(sink),
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
                "hash",
                "canonical",
            ])?;
            Output::Csv(Box::new(writer))
        }
    };
    let bar = super::progress_bar(total.max(0) as u64, "export");
    let mut written = 0u64;
    export::for_each(pool, &selection, |event| {
        output.write(event)?;
        written += 1;
        if written.is_multiple_of(1_000) {
            bar.set_position(written);
        }
        Ok::<(), LedgerError>(())
    })
    .await?;
    output.finish()?;
    bar.finish_and_clear();
    Ok(written)
}
