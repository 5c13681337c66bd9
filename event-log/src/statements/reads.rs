//! Events read whole: by position range, by position, after a position
//! (verbatim, for the relay), by aggregate, and the event API's pages.

use futures::stream::BoxStream;
use futures::StreamExt;
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};

use crate::stored::{columns, raw_columns};
use crate::{Error, RawEvent, StoredEvent};

/// The events after position `after` up to `until` (inclusive), in position
/// order, at most `limit` of them (`None`: all): the log as a consumer's
/// catch-up, a rebuild and a swap read it.
pub async fn between<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
    until: i64,
    limit: Option<i64>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM public.events
          WHERE global_position > $1 AND global_position <= $2
          ORDER BY global_position LIMIT $3"
    ))
    .bind(after)
    .bind(until)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// The events at `positions` (in no promised order): what a consumer's
/// batch lacked.
pub async fn at_positions<'e>(
    executor: impl PgExecutor<'e>,
    positions: &[i64],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM events WHERE global_position = ANY($1)"
    ))
    .bind(positions)
    .fetch_all(executor)
    .await?;
    rows.iter().map(StoredEvent::from_row).collect()
}

/// Up to `limit` events after `position`, in position order, verbatim: what
/// the relay publishes next. Only the relay's gap handling makes this safe
/// to go on from (see the module above).
pub async fn after_verbatim<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
    limit: i64,
) -> Result<Vec<RawEvent>, Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        raw_columns!(),
        " FROM events WHERE global_position > $1 ORDER BY global_position LIMIT $2"
    ))
    .bind(position)
    .bind(limit)
    .fetch_all(executor)
    .await?;
    rows.iter().map(RawEvent::from_text_row).collect()
}

/// An event with its link in its aggregate's hash chain (hex) and the
/// exact bytes that were hashed (hex), as the event API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Linked {
    pub event: StoredEvent,
    pub hash: Option<String>,
    pub canonical: Option<String>,
}

impl Linked {
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            event: StoredEvent::from_row(row)?,
            hash: row.try_get("hash")?,
            canonical: row.try_get("canonical")?,
        })
    }
}

/// The `SELECT` list's tail of a [`Linked`]: the hash and the canonical
/// content (migration `0006_audit.sql`'s `events_canonical_content`, the
/// JSON columns as the text they are stored as), both hex.
macro_rules! link_columns {
    () => {
        ", encode(hash, 'hex') AS hash,
           encode(events_canonical_content(aggregate_type, aggregate_id, sequence,
                  event_type, event_version, payload::text, metadata::text, event_id,
                  recorded_at, global_position), 'hex') AS canonical"
    };
}
pub(crate) use link_columns;

/// Which events a reader of the event API wants (`None`: any).
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub aggregate_type: Option<String>,
    pub aggregate_id: Option<String>,
    pub event_type: Option<String>,
}

/// Up to `limit` events in `(after, upto]` that pass `filter`, by position.
pub async fn page<'e>(
    executor: impl PgExecutor<'e>,
    after: i64,
    upto: i64,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Linked>, sqlx::Error> {
    page_in(executor, None, after, upto, filter, limit).await
}

/// [`page`], of one tenant's events only (`None`: every tenant's): the
/// event API shows a principal its own tenant's log (issue 15), read
/// through the index on `(tenant, global_position)`.
pub async fn page_in<'e>(
    executor: impl PgExecutor<'e>,
    tenant: Option<&str>,
    after: i64,
    upto: i64,
    filter: &Filter,
    limit: i64,
) -> Result<Vec<Linked>, sqlx::Error> {
    if upto <= after {
        return Ok(Vec::new());
    }
    // Unnamed: planned for these filters, not for the first ones seen.
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        link_columns!(),
        " FROM events
          WHERE global_position > $1 AND global_position <= $2
            AND ($3::text IS NULL OR aggregate_type = $3)
            AND ($4::text IS NULL OR aggregate_id = $4)
            AND ($5::text IS NULL OR event_type = $5)
            AND ($7::text IS NULL OR tenant = $7)
          ORDER BY global_position
          LIMIT $6"
    ))
    .persistent(false)
    .bind(after)
    .bind(upto)
    .bind(&filter.aggregate_type)
    .bind(&filter.aggregate_id)
    .bind(&filter.event_type)
    .bind(limit)
    .bind(tenant)
    .fetch_all(executor)
    .await?;
    rows.iter().map(Linked::from_row).collect()
}

/// Every event of one aggregate, by sequence.
pub async fn of_aggregate<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<Linked>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        link_columns!(),
        " FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(executor)
    .await?;
    rows.iter().map(Linked::from_row).collect()
}

/// One aggregate's events with sequence ≤ `upto`, by sequence, one row at
/// a time (a history may be long).
pub fn of_aggregate_upto<'e>(
    executor: impl PgExecutor<'e> + 'e,
    aggregate_type: &'e str,
    aggregate_id: &'e str,
    upto: i64,
) -> BoxStream<'e, Result<StoredEvent, sqlx::Error>> {
    sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3
          ORDER BY sequence"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(upto)
    .fetch(executor)
    .map(|row| row.and_then(|row| StoredEvent::from_row(&row)))
    .boxed()
}

/// The sequence of one aggregate's last event recorded at or before
/// `as_of` (`None`: its last event); `None` when there is none.
pub async fn last_sequence_as_of<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(sequence) FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
            AND ($3::timestamptz IS NULL OR recorded_at <= $3)",
    )
    .persistent(false)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(as_of)
    .fetch_one(executor)
    .await
}

/// The vendor (aggregate id) whose `PayoutRecorded` event names
/// `payout_id`: how the payment webhook finds the Vendor aggregate of a
/// provider's `payout.*` event, which names only the payout. The log is
/// the command side's own record (no read model decides a command);
/// `events_payout_id` (migration 0018) keeps it one index probe.
pub async fn vendor_of_payout<'e>(
    executor: impl PgExecutor<'e>,
    payout_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT aggregate_id FROM public.events
          WHERE event_type = 'PayoutRecorded'
            AND (payload -> 'PayoutRecorded' ->> 'payout_id') = $1
            AND aggregate_type = 'Vendor'
          LIMIT 1",
    )
    .bind(payout_id)
    .fetch_optional(executor)
    .await
}

/// Whether aggregate `aggregate_type`/`aggregate_id` has any event: one
/// primary-key probe (a tenant exists once its `TenantCreated` is stored).
pub async fn aggregate_exists<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events
                         WHERE aggregate_type = $1 AND aggregate_id = $2)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(executor)
    .await
}

/// The tenant of aggregate `aggregate_type`/`aggregate_id` (that of its
/// first event), `None` when it has no events: how the command bus and the
/// read API keep every tenant to its own aggregates.
pub async fn tenant_of<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT tenant FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(executor)
    .await
}
