//! `ledger earnings export`: a vendor's earnings entries (its postings in
//! the ledger read model) as CSV, the columns and cells of
//! `GET /v1/vendors/{id}/earnings/entries` with `Accept: text/csv`, every
//! page at once. Rows stream from PostgreSQL; a progress bar shows on a
//! terminal.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use futures::TryStreamExt;
use ledger_http::money::money;
use read_api::money::{posting_csv_row, POSTINGS_CSV_HEADER};
use rust_decimal::Decimal;
use sqlx::PgPool;
use uuid::Uuid;

use crate::LedgerError;

#[derive(Args, Clone, Debug)]
pub struct EarningsExportArgs {
    /// The vendor whose entries are written.
    #[arg(long)]
    pub vendor_id: Uuid,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

type PostingRow = (
    i64,
    i64,
    String,
    String,
    Option<Uuid>,
    Decimal,
    Decimal,
    DateTime<Utc>,
);

/// Writes the vendor's entries; the number written. An unknown vendor is
/// an error, as the route's 404 is.
pub async fn export(pool: &PgPool, args: &EarningsExportArgs) -> Result<u64, LedgerError> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM ledger_vendor_earnings WHERE vendor_id = $1)",
    )
    .bind(args.vendor_id)
    .fetch_one(pool)
    .await?;
    if !known {
        return Err(LedgerError::Config(format!(
            "no vendor {} in the ledger read model",
            args.vendor_id
        )));
    }
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ledger_postings WHERE vendor_id = $1")
            .bind(args.vendor_id)
            .fetch_one(pool)
            .await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(File::create(path)?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let bar = super::progress_bar(total.max(0) as u64, "export");
    out.write_all(POSTINGS_CSV_HEADER.as_bytes())?;
    let mut rows = sqlx::query_as::<_, PostingRow>(
        "SELECT posting_id, position, account, kind, order_id, debit, credit, recorded_at
           FROM ledger_postings WHERE vendor_id = $1 ORDER BY posting_id",
    )
    .bind(args.vendor_id)
    .fetch(pool);
    let mut written = 0;
    while let Some((posting_id, position, account, kind, order_id, debit, credit, at)) =
        rows.try_next().await?
    {
        let row = posting_csv_row(
            posting_id,
            position,
            &account,
            &kind,
            order_id,
            &money(debit),
            &money(credit),
            at,
        );
        out.write_all(row.as_bytes())?;
        written += 1;
        bar.inc(1);
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(written)
}
