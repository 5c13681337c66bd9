//! The analysts' export: the log filtered by position range, time range,
//! aggregate type and event type, streamed one event at a time so that it
//! is never held in memory.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::statements::reads::{link_columns, Linked};
use crate::stored::columns;
use crate::Error;

/// Which events to export (`None`: no bound).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only events after this position.
    pub after: Option<i64>,
    /// Only events up to and including this position.
    pub until_position: Option<i64>,
    /// Only events recorded at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only events recorded before this instant.
    pub until: Option<DateTime<Utc>>,
    pub aggregate_type: Option<String>,
    pub event_type: Option<String>,
    /// Only this tenant's events (issue 15: exports are per tenant).
    pub tenant: Option<String>,
}

impl Selection {
    fn query<'a>(&'a self, select: &str) -> QueryBuilder<'a, Postgres> {
        let mut query = QueryBuilder::new(select);
        query.push(" FROM events WHERE TRUE");
        if let Some(after) = self.after {
            query.push(" AND global_position > ").push_bind(after);
        }
        if let Some(until) = self.until_position {
            query.push(" AND global_position <= ").push_bind(until);
        }
        if let Some(since) = self.since {
            query.push(" AND recorded_at >= ").push_bind(since);
        }
        if let Some(until) = self.until {
            query.push(" AND recorded_at < ").push_bind(until);
        }
        if let Some(t) = &self.aggregate_type {
            query.push(" AND aggregate_type = ").push_bind(t);
        }
        if let Some(t) = &self.event_type {
            query.push(" AND event_type = ").push_bind(t);
        }
        if let Some(t) = &self.tenant {
            query.push(" AND tenant = ").push_bind(t);
        }
        query
    }
}

/// How many events `selection` holds.
pub async fn count(pool: &PgPool, selection: &Selection) -> Result<i64, sqlx::Error> {
    selection
        .query("SELECT count(*)")
        .build_query_scalar()
        .fetch_one(pool)
        .await
}

/// Hands each selected event, with its hash and canonical content, in
/// position order, to `visit`; returns how many it was given. Stops at
/// `visit`'s first error.
pub async fn for_each<E: From<Error>>(
    pool: &PgPool,
    selection: &Selection,
    mut visit: impl FnMut(Linked) -> Result<(), E>,
) -> Result<u64, E> {
    let mut query = selection.query(concat!("SELECT ", columns!(), link_columns!()));
    query.push(" ORDER BY global_position");
    let query = query.build();
    let mut rows = query.fetch(pool);
    let mut visited = 0u64;
    while let Some(row) = rows.try_next().await.map_err(Error::from)? {
        visit(Linked::from_row(&row).map_err(Error::from)?)?;
        visited += 1;
    }
    Ok(visited)
}
