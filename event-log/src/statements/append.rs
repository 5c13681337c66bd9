//! Writing the log: the command bus's append (one statement per command,
//! its events' positions back, a distinct conflict when the aggregate moved
//! on), an aggregate's latest event, and the snapshot upsert.

use serde_json::Value;
use sqlx::PgExecutor;

use crate::Error;

/// Events to append to one aggregate, in sequence order, encoded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewEvents {
    pub event_types: Vec<String>,
    pub event_versions: Vec<String>,
    pub payloads: Vec<Value>,
    pub metadata: Vec<Value>,
}

impl NewEvents {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            event_types: Vec::with_capacity(n),
            event_versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
        }
    }

    pub fn push(
        &mut self,
        event_type: String,
        event_version: String,
        payload: Value,
        metadata: Value,
    ) {
        self.event_types.push(event_type);
        self.event_versions.push(event_version);
        self.payloads.push(payload);
        self.metadata.push(metadata);
    }

    pub fn len(&self) -> usize {
        self.event_types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.event_types.is_empty()
    }
}

/// Appends `events` to the aggregate at sequences `first_sequence`,
/// `first_sequence + 1`, … in one statement, and returns their global
/// positions in sequence order. [`Error::Conflict`] when an event is
/// already stored at one of those sequences (the aggregate moved on since
/// it was loaded: reload and decide again).
pub async fn append<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    first_sequence: i64,
    events: &NewEvents,
) -> Result<Vec<i64>, Error> {
    let sequences: Vec<i64> = (first_sequence..).take(events.len()).collect();
    let mut positions: Vec<i64> = sqlx::query_scalar(
        "WITH appended AS (
             INSERT INTO events
                 (aggregate_type, aggregate_id, sequence, event_type, event_version,
                  payload, metadata)
             SELECT $1, $2, e.sequence, e.event_type, e.event_version, e.payload, e.metadata
               FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
                    AS e(sequence, event_type, event_version, payload, metadata)
             RETURNING global_position
         )
         SELECT global_position FROM appended",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(&sequences)
    .bind(&events.event_types)
    .bind(&events.event_versions)
    .bind(&events.payloads)
    .bind(&events.metadata)
    .fetch_all(executor)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict,
        _ => Error::Database(err),
    })?;
    if positions.len() != events.len() {
        return Err(Error::Incomplete {
            appended: positions.len(),
            expected: events.len(),
        });
    }
    // Positions are handed out in insertion order, which is sequence
    // order; RETURNING does not promise an order.
    positions.sort_unstable();
    Ok(positions)
}

/// One aggregate's part of a joint append: its events at sequences
/// `first_sequence`, `first_sequence + 1`, ….
#[derive(Clone, Copy, Debug)]
pub struct AppendPart<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub first_sequence: i64,
    pub events: &'a NewEvents,
}

/// What a joint append was checked against: no event of `event_type` (any
/// type: `None`) stored for that aggregate after `after_sequence`. The
/// terms an order was priced with (its listing's, its vendor's fee rate,
/// its inventory's time zone) may come from a cached state; a guard makes a
/// stale one refuse the append, never charge a wrong price.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guard {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub after_sequence: i64,
    pub event_type: Option<String>,
}

/// What [`append_joint`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JointAppend {
    /// Each part's global positions, in sequence order.
    Recorded(Vec<Vec<i64>>),
    /// These guards (by their place) saw a newer event: nothing recorded.
    Stale(Vec<usize>),
}

/// Appends the events of several aggregates in one statement, so in one
/// transaction (a placed order and the holds it took commit together or not
/// at all), unless a guard sees a newer event. Parts are inserted in their
/// order, so positions grow along them. [`Error::Conflict`] when any
/// part's aggregate moved on since it was loaded: then nothing is recorded.
pub async fn append_joint<'e>(
    executor: impl PgExecutor<'e>,
    parts: &[AppendPart<'_>],
    guards: &[Guard],
) -> Result<JointAppend, Error> {
    let total: usize = parts.iter().map(|p| p.events.len()).sum();
    let mut types = Vec::with_capacity(total);
    let mut ids = Vec::with_capacity(total);
    let mut sequences = Vec::with_capacity(total);
    let mut event_types = Vec::with_capacity(total);
    let mut versions = Vec::with_capacity(total);
    let mut payloads = Vec::with_capacity(total);
    let mut metadata = Vec::with_capacity(total);
    for part in parts {
        for (i, sequence) in (part.first_sequence..).take(part.events.len()).enumerate() {
            types.push(part.aggregate_type);
            ids.push(part.aggregate_id);
            sequences.push(sequence);
            event_types.push(part.events.event_types[i].as_str());
            versions.push(part.events.event_versions[i].as_str());
            payloads.push(&part.events.payloads[i]);
            metadata.push(&part.events.metadata[i]);
        }
    }
    let guard_types: Vec<&str> = guards.iter().map(|g| g.aggregate_type.as_str()).collect();
    let guard_ids: Vec<&str> = guards.iter().map(|g| g.aggregate_id.as_str()).collect();
    let guard_after: Vec<i64> = guards.iter().map(|g| g.after_sequence).collect();
    let guard_events: Vec<Option<&str>> = guards.iter().map(|g| g.event_type.as_deref()).collect();
    // WITH ORDINALITY keeps the rows in the order given: positions (and the
    // hash chain's predecessors) follow it. A row of `stale` names a guard
    // that failed (its place, from 1); then nothing is inserted.
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "WITH stale AS (
             SELECT g.n FROM UNNEST($8::text[], $9::text[], $10::bigint[], $11::text[])
                    WITH ORDINALITY AS g(aggregate_type, aggregate_id, after_sequence,
                                         event_type, n)
              WHERE EXISTS (
                    SELECT 1 FROM events s
                     WHERE s.aggregate_type = g.aggregate_type
                       AND s.aggregate_id = g.aggregate_id
                       AND s.sequence > g.after_sequence
                       AND (g.event_type IS NULL OR s.event_type = g.event_type))
         ), appended AS (
             INSERT INTO events
                 (aggregate_type, aggregate_id, sequence, event_type, event_version,
                  payload, metadata)
             SELECT e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
                    e.event_version, e.payload, e.metadata
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                           $6::jsonb[], $7::jsonb[])
                    WITH ORDINALITY
                    AS e(aggregate_type, aggregate_id, sequence, event_type, event_version,
                         payload, metadata, n)
              WHERE NOT EXISTS (SELECT 1 FROM stale)
              ORDER BY e.n
             RETURNING global_position
         )
         SELECT global_position, NULL::bigint FROM appended
         UNION ALL
         SELECT NULL::bigint, n FROM stale",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&sequences)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&guard_types)
    .bind(&guard_ids)
    .bind(&guard_after)
    .bind(&guard_events)
    .fetch_all(executor)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict,
        _ => Error::Database(err),
    })?;
    let stale: Vec<usize> = rows
        .iter()
        .filter_map(|(_, n)| n.and_then(|n| usize::try_from(n - 1).ok()))
        .collect();
    if !stale.is_empty() {
        return Ok(JointAppend::Stale(stale));
    }
    let mut positions: Vec<i64> = rows.into_iter().filter_map(|(p, _)| p).collect();
    if positions.len() != total {
        return Err(Error::Incomplete {
            appended: positions.len(),
            expected: total,
        });
    }
    positions.sort_unstable();
    let mut rest = positions.into_iter();
    Ok(JointAppend::Recorded(
        parts
            .iter()
            .map(|part| rest.by_ref().take(part.events.len()).collect())
            .collect(),
    ))
}

/// The sequence and global position of an aggregate's last stored event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latest {
    /// 0: no event yet.
    pub sequence: i64,
    /// 0: no event yet.
    pub position: i64,
}

/// The aggregate's last stored event ([`Latest::default`]: none).
pub async fn latest<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Latest, sqlx::Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT sequence, global_position FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(executor)
    .await?;
    Ok(
        row.map_or_else(Latest::default, |(sequence, position)| Latest {
            sequence,
            position,
        }),
    )
}

/// Stores `payload` (the aggregate's state as JSON text, after event
/// `last_sequence`) as the aggregate's snapshot number `current_snapshot`,
/// unless a snapshot at or after `last_sequence` is already stored.
/// Returns whether it was written.
pub async fn upsert_snapshot<'e>(
    executor: impl PgExecutor<'e>,
    aggregate_type: &str,
    aggregate_id: &str,
    last_sequence: i64,
    current_snapshot: i64,
    payload: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO snapshots
             (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
         VALUES ($1, $2, $3, $4, $5::jsonb)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
            SET last_sequence = EXCLUDED.last_sequence,
                current_snapshot = EXCLUDED.current_snapshot,
                payload = EXCLUDED.payload
          WHERE snapshots.last_sequence < EXCLUDED.last_sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(last_sequence)
    .bind(current_snapshot)
    // Text, never a `Value` tree: for an inventory with thousands of
    // bookings that would cost tens of MB, briefly.
    .bind(payload)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// An event written whole, as the load generator seeds and drives the log:
/// postgres-es's columns with the JSON as text, plus the event id and the
/// time it was recorded (used by [`insert_whole`]; [`insert_one`] leaves
/// both to the table's defaults, as a live writer does).
#[derive(Clone, Debug)]
pub struct WholeEvent {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
    pub event_id: uuid::Uuid,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// Inserts `rows` in one statement, in their order: positions follow it,
/// and the hash trigger (a row-level trigger sees the rows its own
/// statement inserted before) finds each event's predecessor.
pub async fn insert_whole<'e>(
    executor: impl PgExecutor<'e>,
    rows: &[WholeEvent],
) -> Result<(), sqlx::Error> {
    let n = rows.len();
    let mut types = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut seqs = Vec::with_capacity(n);
    let mut event_types = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut payloads = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut event_ids = Vec::with_capacity(n);
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
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, event_id, recorded_at)
         SELECT t, i, s, et, ev, p::json, m::json, eid, r
           FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
                       $6::text[], $7::text[], $8::uuid[], $9::timestamptz[])
                AS u(t, i, s, et, ev, p, m, eid, r)",
    )
    .bind(&types)
    .bind(&ids)
    .bind(&seqs)
    .bind(&event_types)
    .bind(&versions)
    .bind(&payloads)
    .bind(&metadata)
    .bind(&event_ids)
    .bind(&recorded)
    .execute(executor)
    .await?;
    Ok(())
}

/// Inserts one event as postgres-es does (the table's defaults for
/// `event_id` and `recorded_at`).
pub async fn insert_one<'e>(
    executor: impl PgExecutor<'e>,
    row: &WholeEvent,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ($1, $2, $3, $4, $5, $6::json, $7::json)",
    )
    .bind(row.aggregate_type)
    .bind(&row.aggregate_id)
    .bind(row.sequence)
    .bind(&row.event_type)
    .bind(&row.event_version)
    .bind(&row.payload)
    .bind(&row.metadata)
    .execute(executor)
    .await?;
    Ok(())
}
