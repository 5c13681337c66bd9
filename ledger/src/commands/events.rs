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
    /// `ndjson` (one JSON event a line) or `csv`.
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
    /// Only events of this aggregate type (`Vendor`, `Listing`, `Inventory`, `Order`).
    #[arg(long)]
    pub aggregate_type: Option<String>,
    /// Only events of this type (`OrderPlaced`, `PaymentCaptured`, …).
    #[arg(long)]
    pub event_type: Option<String>,
    /// Only this tenant's events (its slug; the default tenant is
    /// `default`). Without it, every tenant's.
    #[arg(long)]
    pub tenant: Option<String>,
    /// CSV columns, comma-separated, in order: the event's own fields
    /// (`position`, `aggregate_type`, `aggregate_id`, `sequence`,
    /// `event_type`, `event_version`, `event_id`, `recorded_at`, `payload`,
    /// `metadata`) or a field inside the payload or metadata, dotted
    /// (`payload.total`, `payload.lines.0.line_id`,
    /// `metadata.correlation_id`): a string as itself, a missing field empty.
    /// Default: the ten event fields, payload and metadata as JSON.
    #[arg(long, value_delimiter = ',', value_parser = Column::parse)]
    pub columns: Vec<Column>,
    /// The key-encryption key of the data subjects' keys, as `ledger
    /// serve` has it (docs/PRIVACY.md): personal fields are exported
    /// opened, or `"[erased]"`.
    #[arg(long, env = "LEDGER_PERSONAL_DATA_KEK", hide_env_values = true)]
    pub personal_data_kek: Option<String>,
}

/// A CSV column of the export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    /// One of the event's own fields.
    Field(&'static str),
    /// A dotted path inside `payload` or `metadata` (the first segment).
    Path(Vec<String>),
}

const FIELDS: [&str; 12] = [
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
];

impl Column {
    pub fn parse(text: &str) -> Result<Column, String> {
        let text = text.trim();
        if let Some(field) = FIELDS.iter().find(|f| **f == text) {
            return Ok(Column::Field(field));
        }
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        let inside = matches!(segments[0].as_str(), "payload" | "metadata");
        if inside && segments.len() > 1 && segments.iter().all(|s| !s.is_empty()) {
            return Ok(Column::Path(segments));
        }
        Err(format!(
            "`{text}`: a column is one of {} or payload.<field>[.<field>…] / metadata.<field>…",
            FIELDS.join(", ")
        ))
    }

    fn name(&self) -> String {
        match self {
            Column::Field(field) => (*field).to_owned(),
            Column::Path(segments) => segments.join("."),
        }
    }

    /// The cell of one event: `hash` is its link in the chain and
    /// `canonical` the hashed bytes (hex), as the NDJSON export has them.
    fn cell(
        &self,
        event: &StoredEvent,
        hash: &Option<String>,
        canonical: &Option<String>,
    ) -> String {
        match self {
            Column::Field("position") => event.position.to_string(),
            Column::Field("aggregate_type") => event.aggregate_type.clone(),
            Column::Field("aggregate_id") => event.aggregate_id.clone(),
            Column::Field("sequence") => event.sequence.to_string(),
            Column::Field("event_type") => event.event_type.clone(),
            Column::Field("event_version") => event.event_version.clone(),
            Column::Field("event_id") => event.event_id.to_string(),
            Column::Field("recorded_at") => event.recorded_at.to_rfc3339(),
            Column::Field("payload") => event.payload.to_string(),
            Column::Field("metadata") => event.metadata.to_string(),
            Column::Field("hash") => hash.clone().unwrap_or_default(),
            Column::Field("canonical") => canonical.clone().unwrap_or_default(),
            Column::Field(_) => String::new(),
            Column::Path(segments) => {
                let root = if segments[0] == "payload" {
                    &event.payload
                } else {
                    &event.metadata
                };
                let found = segments[1..]
                    .iter()
                    .try_fold(root, |value, key| match value {
                        serde_json::Value::Array(items) => {
                            key.parse::<usize>().ok().and_then(|i| items.get(i))
                        }
                        other => other.get(key),
                    });
                match found {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                }
            }
        }
    }
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
            tenant: self.tenant.clone(),
        }
    }
}

/// Where exported events go, one at a time.
enum Output<W: Write> {
    Ndjson(W),
    Csv(Box<csv::Writer<W>>, Vec<Column>),
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

/// Opens the personal fields of an exported event (`hash` and `canonical`
/// keep the stored, sealed text that was hashed).
pub(crate) fn reveal(opener: &privacy::Opener, linked: &mut Linked) {
    opener.reveal(&mut linked.event.payload);
    opener.reveal(&mut linked.event.metadata);
}

/// The keys an export opens personal fields with: every live key, read
/// once when it starts.
pub(crate) async fn opener(
    pool: &PgPool,
    kek: Option<&str>,
) -> Result<privacy::Opener, LedgerError> {
    let kek = crate::settings::personal_data_kek(kek).map_err(LedgerError::Config)?;
    privacy::Keyring::new(pool.clone())
        .with_kek(kek)
        .opener_for_all()
        .await
        .map_err(|err| match err {
            privacy::Error::Database(err) => LedgerError::Database(err),
            other => LedgerError::Config(other.to_string()),
        })
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
            Output::Csv(writer, columns) => {
                writer.write_record(columns.iter().map(|c| c.cell(&event, &hash, &canonical)))?
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), LedgerError> {
        match self {
            Output::Ndjson(mut sink) => sink.flush()?,
            Output::Csv(mut writer, _) => writer.flush()?,
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
    if !args.columns.is_empty() && !matches!(args.format, Format::Csv) {
        return Err(LedgerError::Config(
            "--columns applies to --format csv".into(),
        ));
    }
    let selection = args.selection();
    let total = export::count(pool, &selection).await?;
    let opener = opener(pool, args.personal_data_kek.as_deref()).await?;
    if let Format::Parquet = args.format {
        let path = args.output.as_ref().ok_or_else(|| {
            LedgerError::Config("--format parquet writes a file: give --output".into())
        })?;
        let bar = super::progress_bar(total.max(0) as u64, "export");
        let written = super::parquet::export(pool, &selection, path, &bar, &opener).await?;
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
            let columns = if args.columns.is_empty() {
                FIELDS.iter().map(|f| Column::Field(f)).collect()
            } else {
                args.columns.clone()
            };
            writer.write_record(columns.iter().map(Column::name))?;
            Output::Csv(Box::new(writer), columns)
        }
    };
    let bar = super::progress_bar(total.max(0) as u64, "export");
    let mut written = 0u64;
    export::for_each(pool, &selection, |mut event| {
        reveal(&opener, &mut event);
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

#[cfg(test)]
mod tests {
    use super::Column;
    use serde_json::json;

    #[test]
    fn columns_flatten_fields_of_the_payload_and_metadata() {
        let event = event_log::StoredEvent {
            position: 7,
            event_id: uuid::Uuid::nil(),
            aggregate_type: "Order".into(),
            aggregate_id: "o-1".into(),
            sequence: 2,
            event_type: "OrderPlaced".into(),
            event_version: "1".into(),
            payload: json!({"total": "470.00", "lines": [{"quantity": 2}], "note": null}),
            metadata: json!({"correlation_id": "req-1"}),
            recorded_at: chrono::DateTime::UNIX_EPOCH,
            tenant: event_log::DEFAULT_TENANT.into(),
        };
        let cell = |text: &str| Column::parse(text).expect(text).cell(&event, &None, &None);
        assert_eq!(cell("position"), "7");
        assert_eq!(cell("payload.total"), "470.00");
        assert_eq!(cell("payload.lines.0.quantity"), "2");
        assert_eq!(cell("payload.lines"), r#"[{"quantity":2}]"#);
        assert_eq!(cell("payload.note"), "");
        assert_eq!(cell("payload.missing"), "");
        assert_eq!(cell("metadata.correlation_id"), "req-1");
        for bad in ["total", "payload.", "other.x", "payload..x"] {
            assert!(Column::parse(bad).is_err(), "{bad}");
        }
    }
}
